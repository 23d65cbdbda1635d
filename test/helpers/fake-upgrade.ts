/**
 * A simulated cluster for the upgrade runbook's synthesized definition: the
 * real node-command and upgrade logic run over mocked AWS clients
 * (aws-sdk-client-mock) and a fake Patroni, and every node document changes
 * the simulated nodes the way the upgrade document changes real ones.
 */
import { DescribeInstancesCommand, EC2Client } from '@aws-sdk/client-ec2';
import {
  DeregisterTargetsCommand,
  DescribeTargetHealthCommand,
  ElasticLoadBalancingV2Client,
  RegisterTargetsCommand,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import { GetCommandInvocationCommand, SendCommandCommand, SSMClient } from '@aws-sdk/client-ssm';
import { StateMachine } from 'aws-local-stepfunctions';
import { mockClient } from 'aws-sdk-client-mock';
import { pollNodeCommand, startNodeCommand } from '../../functions/node-command/command';
import { runUpgradeAction, UpgradeEvent } from '../../functions/upgrade/actions';
import { upstreamVersion } from '../../functions/upgrade/plan';
import { allStates } from '../../rig/lambdas';
import { createHash } from 'node:crypto';
import { stateMachineDefinition } from '../../rig/template';
import { pseudo, resources, RunbookDefinition } from './fake-runbook';
import { fakeLock } from './fake-lock';
import type { LockHolder } from '../../functions/runbook-lock/lock';
import { ReplayLag, simulatedPatroni } from './fake-patroni';
import { synthStack } from './synth';

/** The upgrade runbook from the synthesized template, instances given EC2-shaped ids. */
export function upgradeDefinition(): RunbookDefinition {
  const template = synthStack().template.toJSON() as {
    Resources: Record<string, { Type: string }>;
  };
  const ids = {
    ...resources,
    ref: (logicalId: string) =>
      template.Resources[logicalId]?.Type === 'AWS::EC2::Instance'
        ? `i-${createHash('sha256').update(logicalId).digest('hex').slice(0, 17)}`
        : resources.ref(logicalId),
  };
  return stateMachineDefinition(template as never, 'UpgradeStateMachineArn', ids, pseudo);
}

export const OLD = '15.18-0+deb12u1';
export const NEW = '15.20-0+deb12u1';
const WRITE = 'tg-write';
const READ = 'tg-read';
const WEB = 'tg-web';

interface SimNode {
  readonly name: string;
  readonly instanceId: string;
  readonly address: string;
  installed: string;
  running: string;
  stale: boolean;
  drained: boolean;
}

/** A web host in the ALB's target group: in service, failing its checks, draining (one more look), or out. */
type WebRegistration = 'healthy' | 'unhealthy' | 'draining' | 'out';

export interface FakeUpgradeOptions {
  /** One document step fails on one node: the stderr tail says so. */
  readonly failOn?: { readonly node: string; readonly action: string };
  /** Invocations stay invisible to GetCommandInvocation this many polls (or for ever). */
  readonly invisiblePolls?: number;
  /** This member never catches up after its restart. */
  readonly laggingAfterRestart?: string;
  /** Patroni answers the switchover with "instead of" and another member leads. */
  readonly switchoverInsteadOf?: string;
  /** A running runbook holds the cluster's runbook lock. */
  readonly lockHeldBy?: LockHolder;
  /** Backends already at the new version. */
  readonly upgraded?: readonly string[];
  /** Replicas whose replay lags (or is paused) from the start; `world.setReplayLag` changes it later. */
  readonly replayLag?: Readonly<Record<string, ReplayLag>>;
  /** Backends that start with the drain tags set (left by an earlier, halted run). */
  readonly drained?: readonly string[];
  /** Web hosts out of the ALB's target group from the start (left by a halted pem run). */
  readonly webOut?: readonly string[];
  /** Web hosts registered but failing the ALB's health check. */
  readonly webUnhealthy?: readonly string[];
}

/** What happened, in order: `backend-2 install`, `switchover backend-1 -> backend-2`, ... */
export function fakeUpgradeWorld(definition: RunbookDefinition, options: FakeUpgradeOptions = {}) {
  // The backends as the synthesized inventory names them.
  const inventory = (
    definition.States.Inventory as {
      Result: Record<string, { name: string; instanceId: string; address: string }[]>;
    }
  ).Result;
  const events: string[] = [];
  const simNode = ({ name, instanceId, address }: (typeof inventory.backend)[number]): SimNode => {
    const version = options.upgraded?.includes(name) ? NEW : OLD;
    return {
      name,
      instanceId,
      address,
      installed: version,
      running: upstreamVersion(version),
      stale: false,
      drained: false,
    };
  };
  const webHosts = new Map((inventory.web ?? []).map((n) => [n.name, simNode(n)]));
  const webRegistration = new Map<string, WebRegistration>(
    [...webHosts.values()].map((n) => [
      n.instanceId,
      options.webOut?.includes(n.name)
        ? 'out'
        : options.webUnhealthy?.includes(n.name)
          ? 'unhealthy'
          : 'healthy',
    ]),
  );
  const nodes = new Map<string, SimNode>(
    inventory.backend.map((n) => [
      n.name,
      { ...simNode(n), drained: options.drained?.includes(n.name) ?? false },
    ]),
  );
  let leader = 'backend-1';
  let timeline = 1;
  let clock = 1_000_000;
  const restarted = new Set<string>();
  const replayLag = new Map(Object.entries(options.replayLag ?? {}));
  const node = (name: string) => nodes.get(name) ?? webHosts.get(name);

  const patroniGet = simulatedPatroni({
    members: () => [...nodes.values()],
    leader: () => leader,
    timeline: () => timeline,
    receiveLag: (name) => {
      const lagging = options.laggingAfterRestart === name && restarted.has(name);
      return name !== leader && lagging ? 10 ** 9 : 0;
    },
    replayLag: (name) => replayLag.get(name),
    now: () => clock,
  });

  // Node documents: what upgrade.sh does to a node, by action.
  const runDocument = (nodeName: string, p: Record<string, string>): string => {
    const sim = node(nodeName);
    if (options.failOn?.node === nodeName && options.failOn.action === p.Action) {
      throw new Error(
        `pem-ha: ${p.Action} failed on ${nodeName}: dpkg: error processing package postgresql-15`,
      );
    }
    events.push(`${nodeName} ${p.Action}`);
    if (!sim) return 'at_target=true';
    switch (p.Action) {
      case 'configure':
        // PEM's document after the packages: its configuration step for the installed version.
        sim.running = upstreamVersion(sim.installed);
        sim.stale = false;
        return '';
      case 'check':
        if (webHosts.has(nodeName))
          return [
            `target=${p.Version === 'latest' ? NEW : p.Version}`,
            `installed=${sim.installed}`,
            `running=${sim.running}`,
            `running_stale=${sim.stale}`,
          ].join('\n');
        return [
          `target=${p.Version === 'latest' ? NEW : p.Version}`,
          `installed=${sim.installed}`,
          `role=${sim.name === leader ? 'leader' : 'replica'}`,
          `drained=${sim.drained}`,
          ...(sim.name === leader ? ['oldest_transaction_seconds=3'] : []),
          `running=${sim.running}`,
          `running_stale=${sim.stale}`,
        ].join('\n');
      case 'drain':
      case 'undrain':
      case 'clear-drain':
        sim.drained = p.Action === 'drain';
        return '';
      case 'install':
        if (sim.installed !== p.Version) sim.stale = true;
        sim.installed = p.Version;
        return '';
      case 'restart':
        if (sim.name === leader && sim.stale) throw new Error(`pem-ha: ${nodeName} is the leader`);
        if (sim.stale) restarted.add(sim.name);
        sim.running = upstreamVersion(sim.installed);
        sim.stale = false;
        return '';
      case 'verify':
        if (sim.stale) throw new Error(`pem-ha: ${nodeName} still runs a replaced executable`);
        return 'at_target=true';
      default:
        throw new Error(`unknown action ${p.Action}`);
    }
  };

  // SSM: commands finish on their second visible poll.
  const ssm = mockClient(SSMClient);
  const commands = new Map<
    string,
    { node: string; parameters: Record<string, string>; polls: number }
  >();
  const instanceNames = new Map(
    [...nodes.values(), ...webHosts.values()].map((n) => [n.instanceId, n.name]),
  );
  ssm.on(SendCommandCommand).callsFake(async (input) => {
    const id = `cmd-${commands.size + 1}`;
    const nodeName =
      instanceNames.get(input.InstanceIds[0]) ??
      input.InstanceIds[0].replace(/^ref:/, '').toLowerCase();
    const parameters = Object.fromEntries(
      Object.entries(input.Parameters ?? {}).map(([k, v]) => [k, (v as string[])[0]]),
    );
    // PEM's documents have no Action: each run is its configuration step.
    if (/Pem(Backend|Web)/.test(input.DocumentName ?? '')) parameters.Action = 'configure';
    commands.set(id, { node: nodeName, parameters, polls: 0 });
    return { Command: { CommandId: id } };
  });
  ssm.on(GetCommandInvocationCommand).callsFake(async (input) => {
    const command = commands.get(input.CommandId)!;
    command.polls += 1;
    if (command.polls <= (options.invisiblePolls ?? 0)) {
      throw Object.assign(new Error('invocation does not exist'), {
        name: 'InvocationDoesNotExist',
      });
    }
    if (command.polls < (options.invisiblePolls ?? 0) + 2)
      return { Status: 'InProgress', ResponseCode: -1 };
    try {
      const stdout = runDocument(command.node, command.parameters);
      return { Status: 'Success', ResponseCode: 0, StandardOutputContent: stdout };
    } catch (error) {
      return { Status: 'Failed', ResponseCode: 1, StandardErrorContent: (error as Error).message };
    }
  });

  const ec2 = mockClient(EC2Client);
  ec2.on(DescribeInstancesCommand).callsFake(async () => ({ Reservations: [] }));
  const elb = mockClient(ElasticLoadBalancingV2Client);
  elb.on(DescribeTargetHealthCommand).callsFake(async (input) => ({
    TargetHealthDescriptions: [...nodes.values()].map((n) => ({
      Target: { Id: n.instanceId },
      TargetHealth: {
        State: (
          input.TargetGroupArn === WRITE ? n.name === leader : n.name !== leader && !n.drained
        )
          ? 'healthy'
          : 'unhealthy',
      },
    })),
  }));
  // After the catch-all above: a mock's later, more specific behaviour wins.
  elb.on(DescribeTargetHealthCommand, { TargetGroupArn: WEB }).callsFake(async () => {
    const described = [...webRegistration.entries()].filter(([, state]) => state !== 'out');
    for (const [id, state] of described) if (state === 'draining') webRegistration.set(id, 'out');
    return {
      TargetHealthDescriptions: described.map(([id, state]) => ({
        Target: { Id: id },
        TargetHealth: { State: state },
      })),
    };
  });
  const registration = (registered: boolean) => async (input: { Targets?: { Id?: string }[] }) => {
    for (const { Id } of input.Targets ?? []) {
      const current = webRegistration.get(Id!);
      if (registered ? current === 'healthy' : current !== 'healthy') continue;
      webRegistration.set(Id!, registered ? 'healthy' : 'draining');
      events.push(`${instanceNames.get(Id!)} ${registered ? 'registered' : 'deregistered'}`);
    }
    return {};
  };
  elb.on(DeregisterTargetsCommand, { TargetGroupArn: WEB }).callsFake(registration(false));
  elb.on(RegisterTargetsCommand, { TargetGroupArn: WEB }).callsFake(registration(true));
  const acquireLock = fakeLock(options.lockHeldBy);

  const upgradeDeps = {
    defaults: { maxLagBytes: 1048576, maxTransactionSeconds: 300, pem: true },
    clients: async () => ({
      ec2: new EC2Client({ region: 'local-1' }),
      elb: new ElasticLoadBalancingV2Client({ region: 'local-1' }),
      patroniGet,
      patroniSend: async (_address: string, method: string, path: string, body?: unknown) => {
        events.push(`${method} ${path}`);
        if (method === 'POST' && path === '/switchover') {
          const { candidate } = body as { candidate: string };
          const winner = options.switchoverInsteadOf ?? candidate;
          events.push(`switchover ${leader} -> ${winner}`);
          leader = winner;
          timeline += 1;
          return options.switchoverInsteadOf
            ? { status: 200, body: `Switched over to "${winner}" instead of "${candidate}"` }
            : { status: 200, body: `Successfully switched over to "${winner}"` };
        }
        return { status: 200, body: 'ok' };
      },
      targetGroups: { write: WRITE, read: READ, web: WEB },
      clusterName: 'pem-ha',
      // Each look moves the clock a minute on, so bounded waits end quickly.
      now: () => (clock += 60_000),
    }),
  };

  const ssmClient = new SSMClient({ region: 'local-1' });
  const ec2Client = new EC2Client({ region: 'local-1' });
  const bind = (definition: RunbookDefinition) => {
    const handlers: Record<string, (input: never) => Promise<never>> = {};
    for (const [name, state] of allStates(definition.States)) {
      if (state.Type !== 'Task') continue;
      const fn = String((state.Parameters as { FunctionName?: string }).FunctionName);
      handlers[name] = (async (input: { Payload: Record<string, unknown> }) => {
        const payload = input.Payload;
        if (fn.includes('RunbooksLock')) return { Payload: await acquireLock(payload as never) };
        if (fn.includes('UpgradeSteps')) {
          if (payload.action === 'preflight') {
            // The EC2 view: the stack's own instances, all running.
            const inventory = payload.inventory as Record<
              string,
              { instanceId: string; name: string }[]
            >;
            ec2.on(DescribeInstancesCommand).callsFake(async () => ({
              Reservations: [
                {
                  Instances: Object.values(inventory)
                    .flat()
                    .map((n) => ({
                      InstanceId: n.instanceId,
                      State: { Name: 'running' },
                      Tags: [{ Key: 'pem-ha:node', Value: n.name }],
                    })),
                },
              ],
            }));
          }
          return { Payload: await runUpgradeAction(payload as UpgradeEvent, upgradeDeps) };
        }
        return {
          Payload:
            payload.action === 'start'
              ? await startNodeCommand(ssmClient, payload as never, () => clock)
              : await pollNodeCommand(
                  ssmClient,
                  ec2Client,
                  payload as never,
                  () => (clock += 10_000),
                ),
        };
      }) as never;
    }
    return handlers;
  };

  const restore = () => [ssm, ec2, elb].forEach((mock) => mock.restore());
  return {
    events,
    nodes,
    webHosts,
    /** Web host name -> its state in the ALB's target group. */
    webRegistration: () =>
      Object.fromEntries(
        [...webHosts.values()].map((n) => [n.name, webRegistration.get(n.instanceId)]),
      ),
    bind,
    restore,
    leader: () => leader,
    advance: (ms: number) => (clock += ms),
    /** Makes a replica's replay lag (or pause) from now on; undefined catches it up. */
    setReplayLag: (name: string, lag: ReplayLag | undefined) =>
      lag ? replayLag.set(name, lag) : replayLag.delete(name),
  };
}

export type FakeUpgradeWorld = ReturnType<typeof fakeUpgradeWorld>;

/** Runs the definition to its end in the world; resolves to the output, rejects with the error. */
export async function runUpgrade(
  definition: RunbookDefinition,
  world: FakeUpgradeWorld,
  input: unknown,
) {
  const zeroed = (type: string) =>
    Object.fromEntries(
      allStates(definition.States)
        .filter(([, s]) => s.Type === type || (type === 'Retry' && s.Retry))
        .map(([n]) => [n, 0]),
    );
  const machine = new StateMachine(definition as never);
  return machine.run(input as never, {
    overrides: {
      taskResourceLocalHandlers: world.bind(definition) as never,
      waitTimeOverrides: zeroed('Wait'),
      retryIntervalOverrides: zeroed('Retry'),
    },
    context: {
      Execution: { Id: 'self' },
      StateMachine: {
        Id: 'arn:aws:states:local-1:000000000000:stateMachine:pem-ha-rolling-upgrade',
      },
    } as never,
  }).result;
}
