/**
 * What the benchmarks share: probers that write every 100 ms on a new
 * connection and measure the gaps between successful writes, the leader as
 * Patroni reports it, a planned switchover through Patroni's REST API.
 */
import { APPLICATION_ROLE } from '../rig/application-role';
import { Client } from 'pg';
import { RigCluster } from '../rig/cluster';
import { describeMembers, patroniMembers } from '../rig/patroni';

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Writes every 100 ms, each on a new connection, recording the successes. */
export class Prober {
  private readonly successes: { startedAt: number }[] = [];
  private running = true;
  private readonly loop: Promise<void>;

  /** `write` makes one write on a new connection; it rejects when the write failed. */
  constructor(private readonly write: () => Promise<void>) {
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    for (let i = 0; this.running && i < 20_000; i++) {
      const startedAt = Date.now();
      try {
        await this.write();
        this.successes.push({ startedAt });
      } catch {
        // unavailable: the gap is what we measure
      }
      await sleep(100);
    }
  }

  /**
   * Write unavailability around an event that began at `since` and finished
   * at `eventDone`: the longest gap between the starts of consecutive
   * successful writes, from the last one before `since` to the first one begun
   * after `eventDone` (a switchover request returns only once it is done, and
   * writes keep landing on the old primary until it demotes). Bounded wait.
   */
  async unavailability(since: number, eventDone: number, timeoutMs = 180_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const last = this.successes.findIndex((s) => s.startedAt > eventDone);
      if (last >= 0) {
        let first = this.successes.findIndex((s) => s.startedAt > since);
        first = Math.max(first - 1, 0);
        let gap = 0;
        for (let i = first; i < last; i++) {
          gap = Math.max(gap, this.successes[i + 1].startedAt - this.successes[i].startedAt);
        }
        return gap / 1000;
      }
      await sleep(100);
    }
    throw new Error(`writes did not come back within ${timeoutMs / 1000} s`);
  }

  /**
   * Gaps between consecutive successful writes from the last one before
   * `from` to the first one after `to`, in seconds; a prober that never
   * succeeded there measured nothing, which is an error, not a zero.
   */
  gaps(from: number, to: number): number[] {
    const starts = this.successes.map((s) => s.startedAt);
    const first = Math.max(0, starts.findIndex((t) => t >= from) - 1);
    const after = starts.findIndex((t) => t > to);
    const window = starts.slice(first, after < 0 ? undefined : after + 1);
    if (window.length < 2 || window[0] > from || window.at(-1)! < to) {
      throw new Error(
        `the prober has no successful writes around ${new Date(from).toISOString()}..${new Date(to).toISOString()}`,
      );
    }
    return window.slice(1).map((t, i) => (t - window[i]) / 1000);
  }

  /** When each successful write started (epoch ms), oldest first. */
  successTimes(): readonly number[] {
    return this.successes.map((s) => s.startedAt);
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }
}

/** One write through the write endpoint (the NLB stand-in), node-postgres on a new connection. */
export function endpointWriter(rig: RigCluster): () => Promise<void> {
  return async () => {
    const client = new Client({
      ...rig.applicationConnection(),
      connectionTimeoutMillis: 1000,
      query_timeout: 2000,
    });
    // A server killed mid-session emits 'error' on the idle client: expected here.
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.query('INSERT INTO bench_probe DEFAULT VALUES');
    } finally {
      await client.end().catch(() => undefined);
    }
  };
}

/**
 * One write through the stack's multi-host connection string (libpq's
 * target_session_attrs=read-write, which node-postgres lacks: psql does it),
 * from the NLB stand-in's node: a client inside the cluster's subnets, as
 * pg_hba admits (the rig's host address is not in them).
 */
export function multiHostWriter(rig: RigCluster): () => Promise<void> {
  const hosts = rig.plan.nodes.filter((n) => n.tier === 'backend').map((n) => n.address);
  const conninfo = `host=${hosts.join(',')} port=5432 user=${APPLICATION_ROLE} dbname=postgres sslmode=require target_session_attrs=read-write connect_timeout=2`;
  // The rig's pgpass file (mode 0600): the password is on no command line.
  const pgpass = `PGPASSFILE=${RigCluster.stateDir(rig.name)}/pgpass`;
  return async () => {
    const result = await rig.host.exec('nlb', {
      argv: [
        'env',
        pgpass,
        'psql',
        conninfo,
        '-XAtq',
        '-v',
        'ON_ERROR_STOP=1',
        '-c',
        'INSERT INTO bench_probe DEFAULT VALUES',
      ],
      timeoutMs: 5000,
    });
    if (result.exitCode !== 0) throw new Error(result.stderr.trim());
  };
}

/** The leader as Patroni reports it. */
export async function leader(rig: RigCluster): Promise<string> {
  const members = await patroniMembers(rig);
  const found = members?.find((m) => m.role === 'leader');
  if (!found) throw new Error(`no backend reports a leader: ${describeMembers(members)}`);
  return found.name;
}

/** A planned switchover to the synchronous standby, through Patroni's REST API on the leader. */
export async function switchover(rig: RigCluster, current: string): Promise<void> {
  const password = JSON.parse(rig.aws.secretValue('pem-ha/patroniRestApi')!).password;
  const address = rig.plan.nodes.find((n) => n.name === current)!.address;
  // In synchronous mode only the synchronous standby may take over.
  const members = (await patroniMembers(rig)) ?? [];
  const candidate =
    members.find((m) => m.role === 'sync_standby') ?? members.find((m) => m.role === 'replica');
  if (!candidate) throw new Error(`no standby to switch over to: ${describeMembers(members)}`);
  // curl reads its options on stdin, so the password is on no command line.
  const config = [
    `url = "https://${address}:8008/switchover"`,
    `user = "patroni_api:${password}"`,
    'cacert = "/etc/pem-ha/tls/current/ca.crt"',
    'request = "POST"',
    `data = "{\\"leader\\": \\"${current}\\", \\"candidate\\": \\"${candidate.name}\\"}"`,
    'fail',
  ].join('\n');
  await rig.execOk(current, ['curl', '-sS', '-K', '-'], config);
}

export const median = (values: number[]) =>
  [...values].sort((a, b) => a - b)[Math.floor((values.length - 1) / 2)];

/** Medians, minima and maxima of every measure, as a Markdown table. */
export function printTable(results: ReadonlyMap<string, readonly number[]>, title = ''): void {
  console.log(
    `${title}\n| measure | median s | min | max | runs |\n| --- | ---: | ---: | ---: | ---: |`,
  );
  for (const [key, samples] of results) {
    console.log(
      `| ${key} | ${median([...samples]).toFixed(1)} | ${Math.min(...samples).toFixed(1)} | ${Math.max(...samples).toFixed(1)} | ${samples.length} |`,
    );
  }
}

/** The `--runs` option of a benchmark: a whole number from 1 to 10. */
export function runsOption(value: string | undefined): number {
  const runs = Number(value);
  if (!Number.isInteger(runs) || runs < 1 || runs > 10)
    throw new Error(`--runs must be an integer from 1 to 10; got ${value}`);
  return runs;
}

/** `argv` run as the postgres user. */
export const asPostgres = (...argv: string[]) => ['runuser', '-u', 'postgres', '--', ...argv];

/** pgbench on `node` over its local socket, as patroni_super. */
export function pgbench(rig: RigCluster, node: string, args: string[], timeoutMs: number) {
  const argv = ['/usr/lib/postgresql/17/bin/pgbench', '-h', '/var/run/postgresql'];
  return rig.execOk(
    node,
    asPostgres(...argv, '-U', 'patroni_super', ...args, 'postgres'),
    undefined,
    timeoutMs,
  );
}
