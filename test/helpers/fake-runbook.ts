/**
 * Runs a synthesized runbook definition with aws-local-stepfunctions and fake
 * task handlers standing in for the Lambdas (the cluster-status logic is the
 * real one, over a fake Patroni), recording every document sent.
 */
import { StateMachine } from 'aws-local-stepfunctions';
import {
  checkSnapshot,
  chooseBackupSource,
  confirmLeaderUnchanged,
  LeaderSnapshot,
  locateLeader,
  planRotation,
} from '../../functions/cluster-status/status';
import type { ClusterInventory, NodeAddress } from '../../functions/lib/inventory';
import type { PatroniGet } from '../../functions/lib/patroni';
import { healthGate } from '../../functions/lib/replication';
import {
  planReplacement,
  RootReplacementFailedError,
} from '../../functions/replace-node/replacement';
import type { ClusterInventory as FullInventory } from '../../functions/lib/inventory';
import { parseRestoreRequest, type RestoreRequest } from '../../functions/restore/request';
import { checkRunbookInput } from '../../functions/lib/runbook-inputs';
import { planRestore, type RepositoryBackup } from '../../functions/restore/target';
import { allStates } from '../../rig/lambdas';
import { stateMachineDefinition } from '../../rig/template';
import { synthStack } from './synth';
import { fakeLock } from './fake-lock';
import type { LockHolder } from '../../functions/runbook-lock/lock';

/** Instance ids and volume ids become recognisable names; function ARNs keep their logical id. */
export const resources = {
  ref: (logicalId: string) => `ref:${logicalId}`,
  getAtt: (logicalId: string, attribute: string) =>
    attribute === 'Arn'
      ? `arn:aws:lambda:local-1:000000000000:function:${logicalId}`
      : `${logicalId}.${attribute}`,
};
export const pseudo = { region: 'local-1', accountId: '000000000000' };

/** A runbook's definition from the synthesized template (an output names its state machine). */
export function definitionOf(output: string, settings: Record<string, unknown> = {}) {
  return definitionIn(synthStack(settings).template, output);
}

/** A runbook's definition from a template the test synthesized already. */
export function definitionIn(template: { toJSON(): unknown }, output: string) {
  return stateMachineDefinition(template.toJSON() as never, output, resources, pseudo);
}

export type RunbookDefinition = ReturnType<typeof definitionOf>;

type LocalHandlers = NonNullable<
  NonNullable<
    NonNullable<Parameters<StateMachine['run']>[1]>['overrides']
  >['taskResourceLocalHandlers']
>;

export class NamedError extends Error {
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
}

export interface Sent {
  readonly document: string;
  readonly node: string;
  readonly parameters: Record<string, string>;
}

/** A full backup that ended on 2026-12-01 at 00:00 UTC. */
export const FULL_BACKUP: RepositoryBackup = {
  label: '20261130-230000F',
  type: 'full',
  start: Date.parse('2026-11-30T23:00:00Z') / 1000,
  stop: Date.parse('2026-12-01T00:00:00Z') / 1000,
  lsnStart: '0/2000028',
  lsnStop: '0/3000050',
};

export const documentOf = (sent: Sent) =>
  sent.document.replace(/^ref:NodeDocuments/, '').replace(/[0-9A-F]{8}$/, '');

/**
 * Fake task handlers standing in for the Lambdas: commands finish on their
 * second poll; `failOn` makes one document fail on one node.
 */
export function fakeCluster(
  options: {
    failOn?: { document: string; action?: string; node: string };
    signCount?: number;
    notManagedOnce?: string;
    /** Patroni's view: the leader when the run starts, and when it ends. @default backend-1 */
    leader?: string;
    leaderAfter?: string;
    /** Members Patroni reports as stopped. */
    stopped?: readonly string[];
    /** The member /cluster calls sync_standby. */
    syncStandby?: string;
    /** Replicas whose replay stands this many bytes behind what they received. */
    replayBehind?: Readonly<Record<string, number>>;
    /** What the restore document's info action lists. @default one full backup */
    backups?: readonly RepositoryBackup[];
    /** A running runbook holds the cluster's runbook lock. @default free */
    lockHeldBy?: LockHolder;
    /** How EC2's root volume replacement ends. @default succeeded (after one look in progress) */
    rootReplacement?: 'succeeded' | 'failed';
    /** What a command prints. @default nothing */
    stdoutOf?: (sent: Sent) => string;
  } = {},
) {
  const sent: Sent[] = [];
  const running = new Map<string, Sent & { polls: number }>();
  let nextId = 0;
  let notManaged = options.notManagedOnce;
  interface Payload {
    action: 'start' | 'poll';
    node: { name: string; instanceId: string };
    document: string;
    parameters: Record<string, string>;
    command: { commandId: string };
  }
  const nodeCommand = async (payload: Payload) => {
    if (payload.action === 'start') {
      if (notManaged === payload.node.name) {
        notManaged = undefined;
        throw new NamedError('NodeNotManagedError', `${payload.node.name}: not managed yet`);
      }
      const record = {
        document: payload.document,
        node: payload.node.name,
        parameters: payload.parameters,
      };
      sent.push(record);
      const commandId = `cmd-${++nextId}`;
      running.set(commandId, { ...record, polls: 0 });
      return {
        commandId,
        instanceId: payload.node.instanceId,
        nodeName: payload.node.name,
        deadline: 0,
      };
    }
    const command = running.get(payload.command.commandId)!;
    command.polls += 1;
    if (command.polls < 2) return { state: 'running', status: 'InProgress' };
    const { failOn } = options;
    if (
      failOn &&
      documentOf(command) === failOn.document &&
      command.node === failOn.node &&
      (failOn.action === undefined || command.parameters.Action === failOn.action)
    ) {
      throw new NamedError(
        'CommandFailedError',
        `${command.node} (i-0): failed; status Failed, exit code 1; stderr tail:\npatroni would not start`,
      );
    }
    return { state: 'succeeded', stdoutTail: options.stdoutOf?.(command) ?? '' };
  };
  // The real cluster-status logic over a fake Patroni: the state the options
  // describe, the leader after the first cluster-status call as `leaderAfter` says.
  const MAX_LAG_BYTES = 1048576;
  const LOCATION = 50_000_000;
  let statusCalls = 0;
  const patroniFor = (inventory: ClusterInventory<NodeAddress>): PatroniGet => {
    const after = statusCalls++ > 0 && options.leaderAfter !== undefined;
    const leader = after ? options.leaderAfter! : (options.leader ?? 'backend-1');
    const timeline = after ? 2 : 1;
    const state = (name: string) => (options.stopped?.includes(name) ? 'stopped' : 'running');
    return async (address, path) => {
      if (path === '/cluster') {
        return {
          members: inventory.backend.map(({ name }) => ({
            name,
            role:
              name === leader
                ? 'leader'
                : name === options.syncStandby
                  ? 'sync_standby'
                  : 'replica',
            state: state(name),
            timeline,
          })),
        };
      }
      const name = inventory.backend.find((n) => n.address === address)?.name;
      if (path !== '/patroni' || !name) throw new Error(`${address}:8008${path} answered 404`);
      if (state(name) === 'stopped') return { state: 'stopped', role: 'replica' };
      if (name === leader) {
        return { state: 'running', role: 'primary', timeline, xlog: { location: LOCATION } };
      }
      const replayed = LOCATION - (options.replayBehind?.[name] ?? 0);
      return {
        state: 'running',
        role: 'replica',
        timeline,
        xlog: {
          received_location: LOCATION,
          replayed_location: replayed,
          replayed_timestamp: new Date(Date.now() - 30_000).toISOString(),
          paused: false,
        },
      };
    };
  };
  const clusterStatus = (event: {
    action: string;
    inventory: ClusterInventory<NodeAddress>;
    before: LeaderSnapshot;
  }) => {
    const patroni = patroniFor(event.inventory);
    switch (event.action) {
      case 'plan':
        return planRotation(patroni, event.inventory, { maxLagBytes: MAX_LAG_BYTES });
      case 'locate':
        return locateLeader(patroni, event.inventory);
      case 'backupSource':
        return chooseBackupSource(patroni, event.inventory, { maxLagBytes: MAX_LAG_BYTES });
      case 'healthy':
        return healthGate(patroni, event.inventory, { maxLagBytes: MAX_LAG_BYTES });
      case 'gate':
        return healthGate(patroni, event.inventory, {
          maxLagBytes: MAX_LAG_BYTES,
          before: checkSnapshot(event.before),
        });
      default:
        return confirmLeaderUnchanged(patroni, event.inventory, event.before);
    }
  };
  const acquireLock = fakeLock(options.lockHeldBy);
  const caSteps: string[] = [];
  /** Instances whose root volume the replacement runbook asked EC2 to replace. */
  const rootsReplaced: string[] = [];
  let rootLooks = 0;
  const replaceNode = (event: {
    action: string;
    input: unknown;
    inventory: FullInventory;
    leader: string;
    node: { name: string };
  }) => {
    switch (event.action) {
      case 'plan':
        return planReplacement(event.input, event.inventory, event.leader);
      case 'replace-root':
        rootsReplaced.push(event.node.name);
        return { taskId: 'replacevol-1' };
      default:
        if (rootLooks++ === 0) return { ready: false, deadline: 1, detail: 'in-progress' };
        if (options.rootReplacement === 'failed') {
          throw new RootReplacementFailedError(
            `${event.node.name}'s root volume replacement failed`,
          );
        }
        return { ready: true, deadline: 1, detail: 'succeeded' };
    }
  };
  const handlers: LocalHandlers = {};
  const definitionStates = (definition: { States: Record<string, Record<string, unknown>> }) =>
    allStates(definition.States).filter(([, state]) => state.Type === 'Task');
  const bind = (definition: { States: Record<string, Record<string, unknown>> }) => {
    for (const [name, state] of definitionStates(definition)) {
      const fn = String((state.Parameters as { FunctionName?: unknown } | undefined)?.FunctionName);
      handlers[name] = (async (input: unknown) => {
        const { Payload } = input as { Payload: Payload };
        if (fn.includes('RunbooksLock')) return { Payload: await acquireLock(Payload as never) };
        if (fn.includes('CheckInput')) {
          const { runbook, input: given } = Payload as unknown as {
            runbook: string;
            input: unknown;
          };
          checkRunbookInput(runbook, given);
          return { Payload: {} };
        }
        if (name === 'Ensure cluster CA') return { Payload: { created: true } };
        if (name === 'Record backup health') {
          const { nodeName } = (Payload as unknown as { command: { nodeName: string } }).command;
          return { Payload: { node: nodeName, archiveAgeSeconds: 0, hoursSinceLastBackup: 20 } };
        }
        if (name.startsWith('Record')) return { Payload: { minDaysToExpiry: 89.9 } };
        if (name === 'New root and issuing CA' || name === 'Retire the old root') {
          caSteps.push(name);
          return {
            Payload: { bundle: name === 'New root and issuing CA' ? 'Ym90aA==' : 'bmV3', roots: 1 },
          };
        }
        if (fn.includes('RestoreSteps')) {
          const event = Payload as unknown as { action: string; input: unknown };
          if (event.action === 'request') {
            return { Payload: parseRestoreRequest(event.input, 'pem-ha') };
          }
          const request = (Payload as unknown as { request: RestoreRequest }).request;
          return { Payload: planRestore(request, options.backups ?? [FULL_BACKUP]) };
        }
        if (fn.includes('ReplaceNode')) {
          return { Payload: replaceNode(Payload as never) };
        }
        if (fn.includes('ClusterStatus')) {
          return { Payload: await clusterStatus(Payload as never) };
        }
        if (name === 'Sign certificates') {
          const count = options.signCount ?? 1;
          return { Payload: { count, identities: [], bundle: count ? 'YnVuZGxl' : '-' } };
        }
        return { Payload: await nodeCommand(Payload) };
      }) as unknown as LocalHandlers[string];
    }
    return handlers;
  };
  return { sent, bind, caSteps, rootsReplaced };
}

/** The error an execution ended with (its cause: the failed state's error and message). */
export const failureOf = (run: Promise<unknown>) =>
  run.then(
    () => {
      throw new Error('the run succeeded');
    },
    (e: unknown) => (e as { cause: Error }).cause,
  );

export async function execute(
  definition: RunbookDefinition,
  cluster: ReturnType<typeof fakeCluster>,
  input: Record<string, unknown> = {},
) {
  const waits = Object.fromEntries(
    allStates(definition.States)
      .filter(([, s]) => s.Type === 'Wait')
      .map(([n]) => [n, 0]),
  );
  const retries = Object.fromEntries(
    allStates(definition.States)
      .filter(([, s]) => s.Retry)
      .map(([n]) => [n, 0]),
  );
  const machine = new StateMachine(definition as never);
  return machine.run(input as never, {
    overrides: {
      taskResourceLocalHandlers: cluster.bind(definition),
      waitTimeOverrides: waits,
      retryIntervalOverrides: retries,
    },
    // As Step Functions fills them, for the runbooks that look for other executions.
    context: {
      Execution: { Id: 'arn:aws:states:local-1:000000000000:execution:runbook:self', Name: 'self' },
      StateMachine: { Id: 'arn:aws:states:local-1:000000000000:stateMachine:runbook' },
    } as never,
  }).result;
}
