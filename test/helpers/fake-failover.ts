/**
 * The failover runbook's task function over a fake cluster: the real request
 * check, inspection parsing, plan, hand-over and check, with Patroni's
 * members and each backend's inspect output given by the test.
 */
import { checkNewPrimary, handOver } from '../../functions/failover/handover';
import { parseFailoverRequest, parseInspection, planFailover } from '../../functions/failover/plan';
import type { PatroniAnswer, PatroniCluster, PatroniMember } from '../../functions/lib/patroni';
import { allStates } from '../../rig/lambdas';
import { documentOf, fakeCluster, type Sent } from './fake-runbook';

/** One backend as the failover document's inspect action reports it. */
export interface BackendState {
  readonly postgres: 'primary' | 'replica' | 'down';
  readonly lsn?: string;
  /** @default 50000 (of 102400 MiB) */
  readonly freeMib?: number;
  /** @default 2048 */
  readonly reserveMib?: number;
  readonly mounted?: boolean;
}

/** The inspect action's lines, as infra/node/failover.sh prints them. */
export function inspectOutput(state: BackendState): string {
  const lines = [`failover-inspect=mounted=${state.mounted === false ? 0 : 1}`];
  if (state.mounted !== false) {
    lines.push(
      'failover-inspect=volume-size-mib=102400',
      `failover-inspect=volume-free-mib=${state.freeMib ?? 50_000}`,
      `failover-inspect=reserve-mib=${state.reserveMib ?? 2048}`,
      'failover-inspect=full-below-mib=2048',
    );
  }
  lines.push(
    `failover-inspect=postgres=${state.postgres}`,
    `failover-inspect=lsn=${state.lsn ?? ''}`,
  );
  return `[pem-ha 03:00:00] inspecting\n${lines.join('\n')}\n`;
}

export function fakeFailover(options: {
  readonly members: readonly PatroniMember[];
  readonly backends: Readonly<Record<string, BackendState>>;
  /** Patroni's answer to POST /failover. @default 200, the candidate leads afterwards */
  readonly answer?: PatroniAnswer;
}) {
  const cluster = fakeCluster({
    stdoutOf: (sent: Sent) =>
      documentOf(sent) === 'Failover' && sent.parameters.Action === 'inspect'
        ? inspectOutput(options.backends[sent.node])
        : '',
  });
  /** Every POST /failover: the address asked and the body. */
  const posts: { address: string; body: unknown }[] = [];
  let leader = options.members.find((m) => m.role === 'leader')?.name;
  const clients = {
    patroniGet: async (): Promise<PatroniCluster> => ({
      members: options.members.map((m) => ({
        ...m,
        role: m.name === leader ? 'leader' : m.role === 'leader' ? 'replica' : m.role,
      })),
    }),
    patroniSend: async (address: string, _method: string, _path: string, body?: unknown) => {
      posts.push({ address, body });
      const candidate = (body as { candidate: string }).candidate;
      const answer = options.answer ?? {
        status: 200,
        body: `Successfully failed over to "${candidate}"`,
      };
      if (answer.status === 200) leader = candidate;
      return answer;
    },
  };
  const run = async (event: Record<string, never>) => {
    switch (event.action as string) {
      case 'read':
        return {
          request: parseFailoverRequest(event.input, event.inventory),
          cluster: await clients.patroniGet(),
        };
      case 'plan':
        return planFailover(
          event.request,
          event.inventory,
          event.cluster,
          (event.inspections as { node: string; stdout: string }[]).map((i) =>
            parseInspection(i.node, i.stdout),
          ),
        );
      case 'hand-over':
        return handOver(clients, event.plan, event.inventory);
      default:
        return checkNewPrimary(clients, event.plan, event.inventory);
    }
  };
  const bind = (definition: { States: Record<string, Record<string, unknown>> }) => {
    const handlers = cluster.bind(definition);
    for (const [name, state] of allStates(definition.States)) {
      const fn = String((state.Parameters as { FunctionName?: unknown } | undefined)?.FunctionName);
      if (state.Type !== 'Task' || !fn.includes('FailoverSteps')) continue;
      handlers[name] = (async (input: { Payload: Record<string, never> }) => ({
        Payload: await run(input.Payload),
      })) as never;
    }
    return handlers;
  };
  return { ...cluster, bind, posts };
}
