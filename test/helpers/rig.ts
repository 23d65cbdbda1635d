/** Ways into a running rig the integration tests share: SQL through endpoints and inside nodes. */
import { request as httpsRequest } from 'node:https';
import { Client } from 'pg';
import { RigCluster } from '../../rig/cluster';
import { localPsqlArgv } from '../../rig/application-role';
import { waitForHealthyReplication } from '../../rig/patroni';
import type { RigFamilyName } from '../../rig/family';
import type { RunbookRun } from '../../rig/runbook';

/**
 * The cluster the integration suites run on: Debian 13 nodes, PEM on with the
 * configure-pem-server.sh test double, short Wait states, the fast Patroni
 * profile unless asked otherwise (a suite with no use for the web tier
 * leaves PEM off and runs without it). Each suite names its own rig and network.
 */
export async function upTestRig(
  name: string,
  vpcCidr: string,
  {
    fastPatroni = true,
    family = 'debian-13',
    pem = true,
    extra,
  }: {
    fastPatroni?: boolean;
    family?: RigFamilyName;
    pem?: boolean;
    /** Further settings, as `-c key=value` gives them. */
    extra?: Readonly<Record<string, string>>;
  } = {},
): Promise<RigCluster> {
  await RigCluster.downByName(name);
  return RigCluster.up({
    name,
    vpcCidr,
    fastPatroni,
    family,
    pem,
    extra,
    pollMs: 500,
  });
}

/** The threshold of the synthesized alarm on `metricName`. */
export function alarmThreshold(rig: RigCluster, metricName: string): number {
  const alarm = Object.values(rig.template.Resources).find(
    (r) => r.Type === 'AWS::CloudWatch::Alarm' && r.Properties?.MetricName === metricName,
  );
  if (!alarm) throw new Error(`no alarm on ${metricName} in the template`);
  return Number(alarm.Properties?.Threshold);
}

/** A run that records, in `sent`, the state of every node command it sends. */
export function recordingRun(sent: string[]): RunbookRun {
  return {
    wrapTask: (state, handler) =>
      !state.endsWith(': send')
        ? handler
        : ((async (input: never) => {
            sent.push(state);
            return handler(input);
          }) as never),
  };
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One query on a new connection through the NLB stand-in (5432 write, 5433 read). */
export async function endpointQueryOn(
  rig: RigCluster,
  port: number,
  text: string,
  values: unknown[] = [],
) {
  const client = new Client({
    ...rig.applicationConnection({ host: rig.plan.nlbAddress, port }),
    connectionTimeoutMillis: 3000,
    query_timeout: 5000,
  });
  // A connection the server ends later must not surface as an unhandled error.
  client.on('error', () => undefined);
  await client.connect();
  try {
    return (await client.query(text, values)).rows;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** psql inside a node over its local socket (the documents' own way in). */
export function nodePsqlOn(rig: RigCluster, node: string, text: string) {
  return rig.host.exec(node, { argv: localPsqlArgv('-c', text), timeoutMs: 10_000 });
}

export async function nodeQueryOn(rig: RigCluster, node: string, text: string): Promise<string> {
  const result = await nodePsqlOn(rig, node, text);
  if (result.exitCode !== 0) throw new Error(`${node}: ${result.stderr.trim()}`);
  return result.stdout.trim();
}

/** Retries `attempt` until it succeeds or `timeoutMs` passes (bounded). */
export async function eventually<T>(
  what: string,
  timeoutMs: number,
  attempt: () => Promise<T>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (let i = 0; Date.now() < deadline && i < timeoutMs / 250; i++) {
    try {
      return await attempt();
    } catch (error) {
      last = error;
      await sleep(500);
    }
  }
  throw new Error(
    `${what} did not happen within ${timeoutMs / 1000} s: ${(last as Error)?.message}`,
  );
}

/** A writer that inserts increasing ids through the write endpoint until stopped. */
export interface EndpointWriter {
  /** Ids whose INSERT returned success to the client. */
  readonly acknowledged: number[];
  /** When the first write that began after `since` succeeded (0 until then). */
  resumedAfter(since: number): number;
  /** The longest time from `since` on (until now) with no write acknowledged, in ms. */
  longestGapAfter(since: number): number;
  /** Stops the writer (bounded: it also stops by itself after `maxWrites`). */
  stop(): Promise<void>;
}

/**
 * Inserts 1, 2, 3, ... into `table` (one new connection each, as a client
 * reconnecting through the NLB would), pausing 200 ms after a failure.
 */
export function startEndpointWriter(
  rig: RigCluster,
  table: string,
  maxWrites = 3000,
): EndpointWriter {
  const acknowledged: number[] = [];
  const successes: { startedAt: number; endedAt: number }[] = [];
  let stopped = false;
  const loop = (async () => {
    for (let next = 1; !stopped && next <= maxWrites; next++) {
      const startedAt = Date.now();
      try {
        await endpointQueryOn(rig, 5432, `INSERT INTO ${table} VALUES ($1)`, [next]);
        acknowledged.push(next);
        successes.push({ startedAt, endedAt: Date.now() });
      } catch {
        await sleep(200);
      }
    }
  })();
  return {
    acknowledged,
    resumedAfter: (since) => successes.find((s) => s.startedAt > since)?.endedAt ?? 0,
    longestGapAfter: (since) => {
      const ends = [since, ...successes.map((s) => s.endedAt).filter((t) => t > since), Date.now()];
      return Math.max(...ends.slice(1).map((t, i) => t - ends[i]));
    },
    stop: async () => {
      stopped = true;
      await loop;
    },
  };
}

/**
 * The acknowledged ids missing from `table`, read through the write endpoint
 * (retried while a failover settles).
 */
export async function lostWrites(
  rig: RigCluster,
  table: string,
  acknowledged: readonly number[],
): Promise<number[]> {
  const rows = await eventually(`reading ${table} through the write endpoint`, 60_000, () =>
    endpointQueryOn(rig, 5432, `SELECT id FROM ${table}`),
  );
  const present = new Set(rows.map((r) => r.id as number));
  return acknowledged.filter((id) => !present.has(id));
}

/**
 * Empties a replica as a lost volume would and lets Patroni rebuild it;
 * returns Patroni's log from the wipe on (it names the method that made it).
 */
export async function wipeAndRebuild(
  rig: RigCluster,
  node: string,
  timeoutMs = 300_000,
): Promise<string> {
  const log = '/var/log/rig-units/patroni.service.log';
  await rig.execOk(node, ['systemctl', 'stop', 'patroni'], undefined, 120_000);
  await rig.execOk(node, [
    'sh',
    '-c',
    `rm -rf /var/lib/postgresql/17/${rig.plan.clusterName} /var/lib/pem-ha/patroni-member && : >${log}`,
  ]);
  await rig.execOk(node, ['systemctl', 'start', 'patroni']);
  await waitForHealthyReplication(rig, timeoutMs);
  return rig.execOk(node, ['cat', log]);
}

/** A node's certificate for one identity: its serial, or its subject (RFC 2253, e.g. `subject=CN=agent2`). */
export async function certificateOn(
  rig: RigCluster,
  node: string,
  identity: string,
  field: 'serial' | 'subject',
): Promise<string> {
  const argv = ['openssl', 'x509', '-in', `/etc/pem-ha/tls/current/${identity}.crt`, '-noout'];
  const options = field === 'serial' ? ['-serial'] : ['-subject', '-nameopt', 'RFC2253'];
  return (await rig.execOk(node, [...argv, ...options])).trim();
}

/** etcd's members as etcd-1 lists them, `<status> <name>` each (`started etcd-2`), sorted. */
export async function etcdMembers(rig: RigCluster): Promise<string[]> {
  const tls = '/etc/pem-ha/tls/current';
  const list = await rig.execOk('etcd-1', [
    'sh',
    '-c',
    `ETCDCTL_API=3 etcdctl --endpoints=https://127.0.0.1:2379 --cacert=${tls}/ca.crt --cert=${tls}/etcd-peer.crt --key=${tls}/etcd-peer.key member list`,
  ]);
  return list
    .trim()
    .split('\n')
    .map((line) => line.split(', ').slice(1, 3).join(' '))
    .sort();
}

/**
 * Runs `step`; if it throws, prints what each backend's Patroni logged about
 * its role and the DCS (demotions, failsafe, lost DCS requests) before
 * rethrowing, so a failure in CI explains itself without the rig's files.
 */
export async function withPatroniLogOnFailure<T>(
  rig: RigCluster,
  step: () => Promise<T>,
): Promise<T> {
  try {
    return await step();
  } catch (error) {
    const pattern =
      'demot|promot|failsafe|DCS|lock|etcd server|Request to server|Got response|Request failed';
    for (const node of rig.plan.nodes.filter((n) => n.tier === 'backend')) {
      const lines = await rig
        .execOk(node.name, [
          'sh',
          '-c',
          `grep -E '${pattern}' /var/log/rig-units/patroni.service.log | grep -v 'no action' | tail -n 40`,
        ])
        .catch((e: Error) => `(log not read: ${e.message})`);
      console.log(`${node.name} Patroni log (role and DCS lines, last 40):\n${lines}`);
    }
    throw error;
  }
}

/** A GET through the rig's ALB stand-in from the host (a browser in webClientCidrs), one connection each. */
export function albGetOn(
  rig: RigCluster,
  path: string,
  cookie?: string,
): Promise<{ status: number; body: string; cookie?: string }> {
  return new Promise((resolve, reject) => {
    const request = httpsRequest(
      {
        host: rig.plan.albAddress,
        port: 443,
        path,
        // The rig's ALB serves a self-signed certificate in place of ACM's.
        rejectUnauthorized: false,
        agent: false,
        timeout: 5000,
        headers: cookie ? { cookie } : {},
      },
      (response) => {
        let body = '';
        response.on('data', (chunk: Buffer) => (body += chunk.toString()));
        response.on('end', () =>
          resolve({
            status: response.statusCode ?? 0,
            body,
            cookie: response.headers['set-cookie']?.[0]?.split(';')[0],
          }),
        );
      },
    );
    request.on('timeout', () => request.destroy(new Error('timed out')));
    request.on('error', reject);
    request.end();
  });
}
