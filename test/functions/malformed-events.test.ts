import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { handler as checkInput } from '../../functions/check-input/handler';
import { handler as clusterCa } from '../../functions/cluster-ca/handler';
import { nodeFactsAt } from '../../functions/lib/event-shape';
import { checkRunbookInput } from '../../functions/lib/runbook-inputs';
import { handler as recordExpiry } from '../../functions/record-expiry/handler';
import { handler as signCertificates } from '../../functions/sign-certificates/handler';

const ssm = mockClient(SSMClient);
const secrets = mockClient(SecretsManagerClient);
const COMMAND = { commandId: 'cmd-1', instanceId: 'i-0123456789abcdef0', nodeName: 'backend-2' };
const NODE = { name: 'backend-2', tier: 'backend', address: '10.0.4.20', agentId: '2' };
/** The shape of a CSR: what the input rule checks (the signer checks the request itself). */
const CSR = '-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n';

beforeEach(() => {
  ssm.reset();
  secrets.reset();
});
afterEach(() => {
  // Then no AWS call was made
  expect(ssm.calls()).toEqual([]);
  expect(secrets.calls()).toEqual([]);
});

describe('task functions given a malformed event: InvalidRequestError naming the field, before any AWS call', () => {
  test.each([
    [null, 'the event must be an object; got null'],
    [{ command: COMMAND }, 'node must be an object; got nothing'],
    [
      { node: { ...NODE, tier: 'db' }, command: COMMAND },
      'node.tier must be one of etcd, backend, web; got "db"',
    ],
    [
      { node: { ...NODE, agentId: 'two' }, command: COMMAND },
      `node.agentId must be a whole number ('0' for none) when given; got "two"`,
    ],
    [
      { node: NODE, command: { ...COMMAND, commandId: '' } },
      'command.commandId must be a non-empty string; got ""',
    ],
    [{ outsideAgent: 'agent_x' }, 'outsideAgent must be an object; got "agent_x"'],
  ])('sign-certificates, given %j', async (event, message) => {
    await expect(signCertificates(event)).rejects.toMatchObject({
      name: 'InvalidRequestError',
      message,
    });
  });

  test.each([
    [null, 'the event must be an object; got null'],
    [
      { action: 'rotate' },
      'action must be ensure, begin-root-rollover, finish-root-rollover; got "rotate"',
    ],
    [
      { action: 'ensure', renewBeforeDay: 3650 },
      'the event may hold action and nodes; got also renewBeforeDay',
    ],
    [{ nodes: 'etcd-1' }, 'nodes must be a list; got "etcd-1"'],
    [
      { nodes: [{ node: 'etcd-1' }] },
      "nodes[0].output must be the node's output text; got nothing",
    ],
    [{ nodes: [{ output: '' }] }, 'nodes[0].node must be a non-empty string; got nothing'],
  ])('cluster-ca, given %j', async (event, message) => {
    await expect(clusterCa(event)).rejects.toMatchObject({
      name: 'InvalidRequestError',
      message,
    });
  });

  test.each([
    [null, 'the event must be an object; got null'],
    [{ source: 'node' }, 'command must be an object; got nothing'],
    [
      { source: 'node', command: { commandId: 'cmd-1' } },
      'command.instanceId must be a non-empty string; got nothing',
    ],
    [{ source: 'disk' }, 'source must be node or ca; got "disk"'],
  ])('record-expiry, given %j', async (event, message) => {
    await expect(recordExpiry(event)).rejects.toMatchObject({
      name: 'InvalidRequestError',
      message,
    });
  });

  test.each([
    [
      { input: {} },
      /^the event must be \{"runbook": <name>, "input": <execution input>\}; got \{"input":\{\}\}$/,
    ],
    [
      { runbook: 'backups', input: {} },
      /^runbook must be one of bootstrap, rotation, root-rollover, backup, backup-health, agent-certificate; got "backups"$/,
    ],
  ])('check-input, given %j', async (event, message) => {
    await expect(checkInput(event as never)).rejects.toMatchObject({
      message: expect.stringMatching(message),
    });
  });
});

describe("a node's PEM agent number, as the inventory carries it", () => {
  test("Given '0', then the node is entitled to no agent certificate; given '3', to agent3's", () => {
    expect(nodeFactsAt({ ...NODE, agentId: '0' }, 'node')).toEqual({
      name: 'backend-2',
      tier: 'backend',
      address: '10.0.4.20',
    });
    expect(nodeFactsAt({ ...NODE, agentId: '3' }, 'node')).toEqual({
      name: 'backend-2',
      tier: 'backend',
      address: '10.0.4.20',
      agentId: 3,
    });
  });
});

describe('runbook input rules', () => {
  test.each([
    ['bootstrap', {}],
    ['rotation', {}],
    ['rotation', { renewBeforeDays: 1 }],
    ['rotation', { renewBeforeDays: 3650 }],
    ['root-rollover', {}],
    ['backup', { type: 'full' }],
    ['backup', { type: 'diff' }],
    ['backup-health', {}],
    ['agent-certificate', { agentUser: 'agent_orders_db', csr: CSR }],
  ])('Given %s with %j, then it is accepted', (runbook, input) => {
    expect(() => checkRunbookInput(runbook, input)).not.toThrow();
  });

  test.each([
    [
      'bootstrap',
      { force: true },
      'unknown field "force": the bootstrap runbook takes no field, as in {}',
    ],
    [
      'root-rollover',
      [],
      "the root-rollover runbook's input must be a JSON object such as {}; got []",
    ],
    [
      'rotation',
      { renewBeforeDays: 30, dryRun: true, x: 1 },
      'unknown field "dryRun", "x": the rotation runbook takes only renewBeforeDays, as in {"renewBeforeDays": 30}',
    ],
    [
      'rotation',
      { renewBeforeDays: '30' },
      'renewBeforeDays must be a whole number of days from 1 to 3650; got "30"',
    ],
    ['backup', { type: 'incr' }, 'type must be full or diff; got "incr"'],
    [
      'backup',
      {},
      'type is required: the backup runbook\'s input must name it, as in {"type": "full"}; got {}',
    ],
    [
      'agent-certificate',
      { agentUser: 'agent3', csr: CSR },
      expect.stringMatching(
        /^agentUser must be a PostgreSQL role name .* that is not agent<N>.*; got "agent3"$/,
      ),
    ],
    [
      'agent-certificate',
      { agentUser: 'orders-db', csr: CSR },
      expect.stringMatching(/^agentUser must be .*; got "orders-db"$/),
    ],
    [
      'agent-certificate',
      { agentUser: 'agent_orders_db', csr: 'MIIB...' },
      'csr must be a PEM certificate request (-----BEGIN CERTIFICATE REQUEST-----) of at most 16384 characters; got "MIIB..."',
    ],
    [
      'agent-certificate',
      { csr: CSR },
      expect.stringMatching(
        /^agentUser is required: the agent-certificate runbook's input must name it/,
      ),
    ],
    [
      'backup-health',
      'now',
      'the backup-health runbook\'s input must be a JSON object such as {}; got "now"',
    ],
  ])('Given %s with %j, then InvalidInputError: %s', (runbook, input, message) => {
    expect(() => checkRunbookInput(runbook, input)).toThrow(
      expect.objectContaining({ name: 'InvalidInputError', message }),
    );
  });
});
