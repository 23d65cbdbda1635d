/**
 * Patroni's own view of the rig's cluster (GET /cluster), asked inside a
 * backend node the way an operator would, over HTTPS with the cluster CA.
 */
import type { RigCluster } from './cluster';

export interface PatroniMember {
  readonly name: string;
  readonly role: string;
  readonly state: string;
  readonly timeline?: number;
  readonly lag?: number | string;
}

/**
 * GET a Patroni REST path on the first backend that answers (asking none of
 * `skip`, say one whose Patroni is frozen); undefined when none answers.
 */
export async function patroniGet(
  rig: RigCluster,
  path: string,
  skip: readonly string[] = [],
): Promise<unknown> {
  for (const node of rig.plan.nodes.filter((n) => n.tier === 'backend')) {
    if (!rig.host.isRunning(node.name) || skip.includes(node.name)) continue;
    const result = await rig.host.exec(node.name, {
      argv: [
        'curl',
        '-fsS',
        '--max-time',
        '5',
        '--cacert',
        '/etc/pem-ha/tls/current/ca.crt',
        `https://${node.address}:8008${path}`,
      ],
      timeoutMs: 10_000,
    });
    if (result.exitCode === 0) return JSON.parse(result.stdout);
  }
  return undefined;
}

/** The members as the first answering backend (not one of `skip`) reports them. */
export async function patroniMembers(
  rig: RigCluster,
  skip: readonly string[] = [],
): Promise<PatroniMember[] | undefined> {
  return ((await patroniGet(rig, '/cluster', skip)) as { members: PatroniMember[] } | undefined)
    ?.members;
}

export const describeMembers = (members: readonly PatroniMember[] | undefined): string =>
  members
    ? members
        .map((m) => `${m.name}=${m.role}/${m.state}/tl${m.timeline ?? '?'}/lag ${m.lag ?? '-'}`)
        .join(', ')
    : 'no backend answers';

/**
 * How far behind a replica may read and still count as caught up while a
 * writer runs: it reports a lag of 0 only between writes. A node rewound
 * after a failover is not consistent until the new primary writes past
 * where the rewind left it, so rejoins are judged with the writer running.
 */
export const LAG_UNDER_WRITES = 16 * 1024 * 1024;

/**
 * Waits (bounded) until every backend is a running member on the leader's
 * timeline with no lag (at most `maxLagBytes`) and, in synchronous mode, one
 * is the synchronous standby. Until then a failure of the leader cannot fail
 * over (synchronous mode promotes only the recorded standby), so a fair
 * experiment starts here.
 */
export async function waitForHealthyReplication(
  rig: RigCluster,
  timeoutMs = 180_000,
  /** LAG_UNDER_WRITES while a writer runs. */
  maxLagBytes = 0,
): Promise<PatroniMember[]> {
  const backends = rig.plan.nodes.filter((n) => n.tier === 'backend').length;
  const deadline = Date.now() + timeoutMs;
  let members: PatroniMember[] | undefined;
  while (Date.now() < deadline) {
    members = await patroniMembers(rig);
    const config = (await patroniGet(rig, '/config')) as { synchronous_mode?: boolean } | undefined;
    const synchronous = config?.synchronous_mode === true;
    const leaders = members?.filter((m) => m.role === 'leader') ?? [];
    const healthy =
      members !== undefined &&
      members.length === backends &&
      leaders.length === 1 &&
      members.every(
        (m) =>
          // Patroni 3.0 reports a replica as "running", later releases as "streaming".
          ['running', 'streaming'].includes(m.state) &&
          m.timeline === leaders[0].timeline &&
          typeof m.lag !== 'string' &&
          (m.lag ?? 0) <= maxLagBytes,
      ) &&
      (!synchronous || members.some((m) => m.role === 'sync_standby'));
    if (healthy) return members!;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  const lagging = members?.filter((m) => m.role !== 'leader' && m.state !== 'streaming') ?? [];
  const logs = await Promise.all(lagging.map((m) => postgresLogTail(rig, m.name)));
  throw new Error(
    `replication did not become healthy in ${timeoutMs / 1000} s: ${describeMembers(members)}` +
      lagging.map((m, i) => `\n${m.name}'s last PostgreSQL log lines:\n${logs[i]}`).join(''),
  );
}

/** The last lines PostgreSQL wrote on `node` (through Patroni's unit log), for a failure message. */
async function postgresLogTail(rig: RigCluster, node: string, lines = 12): Promise<string> {
  if (!rig.host.isRunning(node)) return '(node not running)';
  const result = await rig.host.exec(node, {
    argv: [
      'sh',
      '-c',
      `grep -E ' UTC \\[[0-9]+\\] ' /var/log/rig-units/patroni.service.log | tail -n ${lines}`,
    ],
    timeoutMs: 10_000,
  });
  return result.stdout.trim() || `(none; exit code ${result.exitCode})`;
}

/**
 * Ends a network partition of `node`. Current Patroni needs nothing but the
 * link back: a returning leader reads the DCS and follows the new one. Before
 * 3.0.3 (Debian 12 ships 3.0.2, run only by the rig's upgrade suite) a
 * returning leader can overwrite the new leader's key (patroni/patroni#2689,
 * #2693) and demote the new primary, so there Patroni is stopped while still
 * cut off and started once the link is back.
 */
export async function healPartition(rig: RigCluster, node: string): Promise<void> {
  if (!rig.family.patroniLeaderKeyBug) {
    await rig.host.setLink(node, true);
    return;
  }
  await rig.execOk(node, ['systemctl', 'stop', 'patroni'], undefined, 120_000);
  await rig.host.setLink(node, true);
  await rig.execOk(node, ['systemctl', 'start', '--no-block', 'patroni']);
}
