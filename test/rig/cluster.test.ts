/**
 * The whole cluster on this machine from the synthesized artifacts: real
 * etcd, Patroni, PostgreSQL and HAProxy in network namespaces, documents run
 * by the bootstrap runbook through the shipped Lambda bundles.
 */
import { RigCluster } from '../../rig/cluster';
import { healPartition, patroniMembers } from '../../rig/patroni';
import { endpointQueryOn, eventually, nodePsqlOn, nodeQueryOn, upTestRig } from '../helpers/rig';

const asRoot = process.getuid?.() === 0;
const suite = asRoot ? describe : describe.skip;
if (!asRoot) console.warn('test/rig/cluster.test.ts needs root (network namespaces): skipped');

let rig: RigCluster;
const BACKENDS = ['backend-1', 'backend-2', 'backend-3'];
const address = (node: string) => rig.plan.nodes.find((n) => n.name === node)!.address;
const nodeAt = (ip: string) => rig.plan.nodes.find((n) => n.address === ip)?.name;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const endpointQuery = (port: number, text: string, values: unknown[] = []) =>
  endpointQueryOn(rig, port, text, values);
const nodePsql = (node: string, text: string) => nodePsqlOn(rig, node, text);
const nodeQuery = (node: string, text: string) => nodeQueryOn(rig, node, text);

async function writeNode(): Promise<string> {
  const [row] = await endpointQuery(5432, 'SELECT host(inet_server_addr()) AS ip');
  return nodeAt(row.ip)!;
}

/** What a second run must leave alone: Patroni's process, its config and the live certificates. */
async function fingerprint(nodes: readonly string[]): Promise<Record<string, string>> {
  const entries = await Promise.all(
    nodes.map(async (node) => {
      const result = await rig.host.exec(node, {
        argv: [
          'sh',
          '-c',
          'readlink /etc/pem-ha/tls/current; systemctl show -p MainPID --value patroni 2>/dev/null; md5sum /etc/patroni/patroni.yml 2>/dev/null; true',
        ],
        timeoutMs: 10_000,
      });
      return [node, result.stdout.trim()] as const;
    }),
  );
  return Object.fromEntries(entries);
}

suite('local cluster from the synthesized artifacts', () => {
  beforeAll(async () => {
    rig = await upTestRig('itest', '10.43.0.0/16');
  }, 900_000);

  afterAll(async () => {
    await rig?.down();
  }, 300_000);

  test('the cluster forms: one leader, every replica streaming', async () => {
    const leader = await writeNode();
    const members = (await patroniMembers(rig)) ?? [];
    expect(members.filter((m) => m.role === 'leader').map((m) => m.name)).toEqual([leader]);
    expect(
      await nodeQuery(leader, "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"),
    ).toBe('2');
    expect(
      await nodeQuery(leader, "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'"),
    ).toBe('1');
  });

  test('writes through the write endpoint land on the leader; reads through 5433 on replicas', async () => {
    await endpointQuery(5432, 'CREATE TABLE IF NOT EXISTS rows_kept (id int PRIMARY KEY)');
    await endpointQuery(
      5432,
      'INSERT INTO rows_kept SELECT generate_series(1, 100) ON CONFLICT DO NOTHING',
    );
    const [written] = await endpointQuery(
      5432,
      'SELECT host(inet_server_addr()) AS ip, pg_is_in_recovery() AS standby',
    );
    expect(written.standby).toBe(false);
    for (let i = 0; i < 4; i++) {
      const [read] = await endpointQuery(
        5433,
        'SELECT host(inet_server_addr()) AS ip, pg_is_in_recovery() AS standby',
      );
      expect(read.standby).toBe(true);
      expect(read.ip).not.toBe(written.ip);
    }
  });

  test('PEM is configured as seed 001 asks, with the password never on a command line', async () => {
    const calls = async (node: string) =>
      rig.execOk(node, ['cat', '/var/lib/pem-ha/configure-pem-server.calls']);
    const [b1, b2, w1] = await Promise.all([
      calls('backend-1'),
      calls('backend-2'),
      calls('web-1'),
    ]);
    expect(b1).toContain(
      `-t 3 -ho 127.0.0.1,${address('backend-2')},${address('backend-3')} -p 5432 -su pemsuper --asb-host-name 127.0.0.1 --replication-solution patroni --replication-role primary --db-unitfile patroni`,
    );
    expect(b1).toContain('--skip-db-certificate');
    expect(b1).toContain(
      '--use-agent-sslcert /etc/pem-ha/tls/current/pem-agent.crt --use-agent-sslkey /etc/pem-ha/tls/current/pem-agent.key -aro agent_id=1',
    );
    expect(b2).toContain(`-ho ${address('backend-1')},127.0.0.1,${address('backend-3')}`);
    expect(b2).toContain('--replication-role standby');
    expect(b2).not.toContain('--skip-db-certificate');
    expect(w1).toContain(`-t 2 -ho ${BACKENDS.map(address).join(',')} -p 5432 -su pemsuper`);
    expect(w1).toContain('-aro agent_id=4');
    const password = JSON.parse(rig.aws.secretValue('pem-ha/pemSuperuser')!).password;
    for (const record of [b1, b2, w1]) {
      expect(record).toContain('env PEM_SERVER_PASSWORD set: yes');
      expect(record).toContain('stdin password matches env: yes');
      expect(record).not.toContain(password);
    }
    const subject = await rig.execOk('backend-2', [
      'openssl',
      'x509',
      '-in',
      '/etc/pem-ha/tls/current/pem-agent.crt',
      '-noout',
      '-subject',
    ]);
    expect(subject.trim()).toBe('subject=CN = agent2');
  });

  test('running the whole bootstrap again changes nothing and loses no row', async () => {
    const nodes = rig.plan.nodes.map((n) => n.name);
    const before = await fingerprint(nodes);
    await rig.bootstrap();
    expect(await fingerprint(nodes)).toEqual(before);
    expect(await endpointQuery(5432, 'SELECT count(*)::int AS n FROM rows_kept')).toEqual([
      { n: 100 },
    ]);
    expect(
      (await rig.execOk('backend-1', ['cat', '/var/lib/pem-ha/configure-pem-server.calls'])).match(
        /^argv:/gm,
      ),
    ).toHaveLength(1);
  }, 600_000);

  test('a failing document step stops the flow with the named error, the node and its stderr; nothing else changes', async () => {
    const others = rig.plan.nodes.map((n) => n.name).filter((n) => n !== 'web-2');
    const before = await fingerprint(others);
    await rig.writeFile(
      'web-2',
      '/usr/local/bin/openssl',
      '#!/bin/sh\necho "openssl: broken on purpose by the test" >&2\nexit 1\n',
      '0755',
    );
    try {
      const error = (await rig.bootstrap().then(
        () => undefined,
        (e: unknown) => e,
      )) as Error & { cause?: Error };
      expect(error?.cause?.name).toBe('CommandFailedError');
      expect(error.cause!.message).toMatch(
        /^web-2 \(i-[0-9a-f]{17}\): pem-ha Request certificates: command .* failed; status Failed/,
      );
      expect(error.cause!.message).toContain('openssl: broken on purpose by the test');
    } finally {
      await rig.execOk('web-2', ['rm', '-f', '/usr/local/bin/openssl']);
    }
    expect(await fingerprint(others)).toEqual(before);
  }, 600_000);

  test('killing every process of the primary: writes come back through the endpoint and no acknowledged write is lost', async () => {
    await endpointQuery(5432, 'CREATE TABLE IF NOT EXISTS acked (id int PRIMARY KEY)');
    const oldLeader = await writeNode();
    const acknowledged: number[] = [];
    let next = 1;
    let stop = false;
    let killedAt = 0;
    let resumedAt = 0;
    const writer = (async () => {
      for (let i = 0; !stop && i < 2000; i++) {
        const startedAt = Date.now();
        try {
          await endpointQuery(5432, 'INSERT INTO acked VALUES ($1)', [next]);
          acknowledged.push(next);
          // Only a write begun after the primary died shows the endpoint is back.
          if (killedAt && startedAt > killedAt && !resumedAt) resumedAt = Date.now();
        } catch {
          await sleep(200);
        }
        next++;
      }
    })();
    await eventually('some writes', 20_000, async () =>
      expect(acknowledged.length).toBeGreaterThan(10),
    );
    await rig.host.kill(oldLeader);
    killedAt = Date.now();
    await eventually('writes on a new leader', 120_000, async () => {
      expect(resumedAt).toBeGreaterThan(0);
      expect(await writeNode()).not.toBe(oldLeader);
    });
    stop = true;
    await writer;
    const present = new Set(
      (await endpointQuery(5432, 'SELECT id FROM acked')).map((r) => r.id as number),
    );
    expect(acknowledged.filter((id) => !present.has(id))).toEqual([]);
    console.log(
      `crash failover: writes back after ${((resumedAt - killedAt) / 1000).toFixed(1)} s; ${acknowledged.length} writes acknowledged, none lost`,
    );
  }, 300_000);

  test("cutting the primary's link: the isolated node demotes and acknowledges no write after the new leader is elected", async () => {
    // The crash test's failover may still be settling: start from a serving endpoint.
    const isolated = await eventually('a serving write endpoint', 60_000, writeNode);
    await rig.host.setLink(isolated, false);
    try {
      await eventually('a new leader behind the write endpoint', 120_000, async () => {
        expect(await writeNode()).not.toBe(isolated);
      });
      // From now on the isolated node must refuse every write.
      for (let attempt = 0; attempt < 5; attempt++) {
        const result = await nodePsql(isolated, 'INSERT INTO acked VALUES (-1)');
        expect(result.exitCode).not.toBe(0);
        await sleep(1000);
      }
    } finally {
      await healPartition(rig, isolated);
    }
    // The old primary rejoins as a replica: allow the endpoint to settle.
    const rows = await eventually('a serving write endpoint', 60_000, () =>
      endpointQuery(5432, 'SELECT count(*)::int AS n FROM acked WHERE id = -1'),
    );
    expect(rows).toEqual([{ n: 0 }]);
  }, 300_000);
});
