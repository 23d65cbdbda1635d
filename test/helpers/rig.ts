/** Ways into a running rig the integration tests share: SQL through endpoints and inside nodes. */
import { Client } from 'pg';
import { join } from 'node:path';
import { RigCluster } from '../../rig/cluster';

/**
 * The cluster the integration suites run on: PEM on with the
 * configure-pem-server.sh test double, short Wait states, fast Patroni timing
 * unless asked otherwise. Each suite names its own rig and network.
 */
export async function upTestRig(
  name: string,
  vpcCidr: string,
  { fastPatroni = true } = {},
): Promise<RigCluster> {
  await RigCluster.downByName(name);
  return RigCluster.up({
    name,
    vpcCidr,
    fastPatroni,
    pem: true,
    pemDouble: join(__dirname, '..', 'rig', 'doubles', 'configure-pem-server.sh'),
    pollMs: 500,
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One query on a new connection through the NLB stand-in (5432 write, 5433 read). */
export async function endpointQueryOn(
  rig: RigCluster,
  port: number,
  text: string,
  values: unknown[] = [],
) {
  const client = new Client({
    ...rig.superuserConnection({ host: rig.plan.nlbAddress, port }),
    connectionTimeoutMillis: 3000,
    query_timeout: 5000,
  });
  await client.connect();
  try {
    return (await client.query(text, values)).rows;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** psql inside a node over its local socket (the documents' own way in). */
export function nodePsqlOn(rig: RigCluster, node: string, text: string) {
  return rig.host.exec(node, {
    argv: [
      'runuser',
      '-u',
      'postgres',
      '--',
      'psql',
      '-h',
      '/var/run/postgresql',
      '-U',
      'patroni_super',
      '-XAtq',
      '-d',
      'postgres',
      '-c',
      text,
    ],
    timeoutMs: 10_000,
  });
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
