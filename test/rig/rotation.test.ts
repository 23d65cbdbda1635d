/**
 * Certificate rotation on a running cluster built from the synthesized
 * artifacts: the rotation state machine from the template, its tasks bound
 * to the shipped Lambda bundles, the certificates document on every node.
 */
import { Client } from 'pg';
import { RigCluster } from '../../rig/cluster';
import { patroniMembers, waitForHealthyReplication } from '../../rig/patroni';
import { SERVED_PORTS, servedSerial } from '../../rig/served-certificates';
import {
  endpointQueryOn,
  eventually,
  nodeQueryOn,
  sleep,
  upTestRig,
  withPatroniLogOnFailure,
} from '../helpers/rig';

const asRoot = process.getuid?.() === 0;
const suite = asRoot ? describe : describe.skip;
if (!asRoot) console.warn('test/rig/rotation.test.ts needs root (network namespaces): skipped');

let rig: RigCluster;
const IDENTITIES: Record<string, readonly string[]> = {
  etcd: ['etcd-server', 'etcd-peer'],
  backend: ['postgres-server', 'patroni-rest', 'pgbackrest'],
  web: ['pem-web'],
};

interface AgentView {
  /** Serial of the certificate agent.cfg names (agent_ssl_crt). */
  readonly configured: string;
  /** The agent's last connection to the pem database: the serial it presented, and how it went. */
  readonly lastConnection: string;
}

/** node -> what PEM's agent (the rig's double) is configured with and last connected with. */
async function agentViews(): Promise<Record<string, AgentView>> {
  const views: Record<string, AgentView> = {};
  for (const node of rig.plan.nodes.filter((n) => n.tier !== 'etcd')) {
    const [configured, lastConnection] = (
      await rig.execOk(node.name, [
        'sh',
        '-c',
        'openssl x509 -noout -serial -in "$(sed -n "s/^agent_ssl_crt=//p" /usr/edb/pem/agent/etc/agent.cfg)" | cut -d= -f2; tail -n 1 /var/log/pem-double/agent.log | cut -d" " -f2-',
      ])
    )
      .trim()
      .split('\n');
    views[node.name] = { configured, lastConnection };
  }
  return views;
}

/** node:port -> serial the network sees, for every served identity of every node. */
async function servedSerials(): Promise<Record<string, string>> {
  const serials: Record<string, string> = {};
  for (const node of rig.plan.nodes) {
    for (const identity of IDENTITIES[node.tier] ?? []) {
      const port = SERVED_PORTS[identity];
      serials[`${node.name}:${port}`] = await servedSerial(
        rig.host.exec,
        node.name,
        node.address,
        port,
      );
    }
  }
  return serials;
}

/** What a rotation must not restart: Patroni, etcd and the postmaster, per node. */
async function processes(): Promise<Record<string, string>> {
  const result: Record<string, string> = {};
  for (const node of rig.plan.nodes) {
    const units = await rig.execOk(node.name, [
      'sh',
      '-c',
      'for u in etcd patroni; do [ -f /etc/pem-ha/$u.managed ] && printf "%s=%s " $u "$(systemctl show -p MainPID --value $u)"; done; true',
    ]);
    const postmaster =
      node.tier === 'backend'
        ? await nodeQueryOn(rig, node.name, 'SELECT pg_postmaster_start_time()')
        : '';
    result[node.name] = `${units.trim()} ${postmaster}`.trim();
  }
  return result;
}

/** Each node's live certificate generation. */
async function generations(): Promise<Record<string, string>> {
  const result: Record<string, string> = {};
  for (const node of rig.plan.nodes) {
    result[node.name] = (
      await rig.execOk(node.name, ['readlink', '/etc/pem-ha/tls/current'])
    ).trim();
  }
  return result;
}

/** The roots the cluster trusts, as the PKI's public secret lists them. */
function trustedRoots(): string[] {
  return JSON.parse(rig.aws.secretValue('pem-ha/pki/trust') ?? '{}').roots ?? [];
}

async function leader(): Promise<string> {
  const members = (await patroniMembers(rig)) ?? [];
  return members.find((m) => m.role === 'leader')?.name ?? 'none';
}

/**
 * A client that keeps one connection through the write endpoint open and
 * queries it every 50 ms, and one that writes a key to etcd over a new TLS
 * connection every 200 ms; both count failures.
 */
function steadyClients() {
  const counts = { queries: 0, queryErrors: 0, etcdWrites: 0, etcdErrors: [] as string[] };
  let running = true;
  const pgLoop = (async () => {
    const client = new Client({ ...rig.applicationConnection(), query_timeout: 5000 });
    client.on('error', () => void counts.queryErrors++);
    await client.connect();
    for (let i = 0; running && i < 100_000; i++) {
      try {
        await client.query('SELECT 1');
        counts.queries++;
      } catch {
        counts.queryErrors++;
      }
      await sleep(50);
    }
    await client.end();
  })();
  const etcd = rig.plan.nodes.filter((n) => n.tier === 'etcd');
  const endpoints = etcd.map((n) => `https://${n.address}:2379`).join(',');
  const etcdLoop = (async () => {
    for (let i = 0; running && i < 20_000; i++) {
      // The certificate and key from one generation: read through `current`
      // one after the other, a switch between the two reads pairs mismatched files.
      const result = await rig.host.exec(etcd[0].name, {
        argv: [
          'bash',
          '-c',
          `tls=$(readlink -f /etc/pem-ha/tls/current) && exec etcdctl --endpoints=${endpoints} --cacert="$tls/ca.crt" --cert="$tls/etcd-server.crt" --key="$tls/etcd-server.key" --command-timeout=5s put /rotation-test/counter ${i}`,
        ],
        env: { ETCDCTL_API: '3' },
        timeoutMs: 10_000,
      });
      if (result.exitCode === 0) counts.etcdWrites++;
      else counts.etcdErrors.push(`${new Date().toISOString()} ${result.stderr.trim()}`);
      await sleep(200);
    }
  })();
  return {
    counts,
    stop: async () => {
      running = false;
      await Promise.all([pgLoop, etcdLoop]);
      return counts;
    },
  };
}

/**
 * Renews every certificate with `before(node)` run as `sendState` is about
 * to send to each node (a fault injected there); resolves with the error
 * that stopped the run, or undefined.
 */
function rotateEverythingWith(
  sendState: string,
  before: (node: string) => Promise<void>,
): Promise<Error | undefined> {
  return rig
    .rotateCertificates({
      input: { renewBeforeDays: 3650 },
      wrapTask: (state, handler) =>
        state !== sendState
          ? handler
          : ((async (input: { Payload: { node: { name: string } } }) => {
              await before(input.Payload.node.name);
              return handler(input as never);
            }) as never),
    })
    .then(
      () => undefined,
      (e: { cause?: Error }) => e.cause,
    );
}

suite('certificate rotation on a running cluster', () => {
  beforeAll(async () => {
    // Patroni's standard timing, the default deploy's.
    rig = await upTestRig('rot', '10.48.0.0/16', { fastPatroni: false });
  }, 900_000);

  afterAll(async () => {
    await rig?.down();
  }, 300_000);

  test("Given steady clients, when every certificate is renewed, then every served serial changes (PEM's Apache on 8443 too) with no restart, no error and no leader change, and PEM's agents connect with their new certificates, also on a web host configured before pem-ha pointed PEM at the rotated files", async () => {
    const leaderBefore = await leader();
    // Given web-1 as a node configured before pem-ha pointed PEM at the rotated
    // files: agent.cfg and Apache's site name PEM's own copies
    await rig.execOk('web-1', [
      'sh',
      '-c',
      [
        'sed -i "s|^agent_ssl_crt=.*|agent_ssl_crt=/root/.pem/agent101.crt|; s|^agent_ssl_key=.*|agent_ssl_key=/root/.pem/agent101.key|" /usr/edb/pem/agent/etc/agent.cfg',
        'sed -i -E "s|(SSLCertificateFile) .*|\\1 /usr/edb/pem/resources/server-pem.crt|; s|(SSLCertificateKeyFile) .*|\\1 /usr/edb/pem/resources/server-pem.key|" /etc/apache2/sites-available/edb-ssl-pem.conf',
        'systemctl restart pemagent && systemctl reload apache2',
      ].join(' && '),
    ]);
    const agentsBefore = await agentViews();
    const serialsBefore = await servedSerials();
    const processesBefore = await processes();
    const clients = steadyClients();
    let counts: Awaited<ReturnType<typeof clients.stop>>;
    try {
      await sleep(2000);
      await rig.rotateCertificates({ input: { renewBeforeDays: 3650 } });
      await sleep(2000);
    } finally {
      counts = await clients.stop();
    }
    const serialsAfter = await servedSerials();
    for (const [port, serial] of Object.entries(serialsBefore)) {
      expect({ port, changed: serialsAfter[port] !== serial }).toEqual({ port, changed: true });
    }
    expect(await processes()).toEqual(processesBefore);
    expect(await leader()).toBe(leaderBefore);
    expect(counts.queries).toBeGreaterThan(100);
    expect(counts.queryErrors).toBe(0);
    expect(counts.etcdWrites).toBeGreaterThan(20);
    expect(counts.etcdErrors).toEqual([]);
    // And every PEM agent is configured with a new certificate and logs in to the pem database with it
    await eventually("every PEM agent's connection with its new certificate", 30_000, async () => {
      const agentsAfter = await agentViews();
      for (const [node, before] of Object.entries(agentsBefore)) {
        const after = agentsAfter[node];
        expect({ node, changed: after.configured !== before.configured }).toEqual({
          node,
          changed: true,
        });
        expect({ node, last: after.lastConnection }).toEqual({
          node,
          last: expect.stringMatching(
            new RegExp(`^edb-pem=\\S+ serial=${after.configured} connected as agent\\d+$`),
          ),
        });
      }
    });
  }, 900_000);

  test('Given certificates renewed just now, when the scheduled rotation runs, then nothing changes', async () => {
    const before = await generations();
    const serials = await servedSerials();

    await rig.rotateCertificates();

    expect(await generations()).toEqual(before);
    expect(await servedSerials()).toEqual(serials);
  }, 600_000);

  test('Given a signer that returns a certificate for another key, when a replica installs it, then the node refuses it before the switch and keeps serving the old one', async () => {
    const primary = await leader();
    const replica = rig.plan.nodes.find((n) => n.tier === 'backend' && n.name !== primary)!;
    const generationsBefore = await generations();
    const serialsBefore = await servedSerials();

    // The chains of two of the replica's identities swapped: valid, right names, wrong keys.
    const error = await rig
      .rotateCertificates({
        input: { renewBeforeDays: 3650 },
        wrapTask: (state, handler) =>
          state !== 'Sign certificates'
            ? handler
            : ((async (input: { Payload: { node: { name: string } } }) => {
                const result = (await handler(input as never)) as {
                  Payload: { bundle: string };
                };
                if (input.Payload.node.name !== replica.name) return result;
                const bundle = JSON.parse(Buffer.from(result.Payload.bundle, 'base64').toString());
                const { certificates } = bundle;
                [certificates['postgres-server'], certificates['patroni-rest']] = [
                  certificates['patroni-rest'],
                  certificates['postgres-server'],
                ];
                const swapped = Buffer.from(JSON.stringify(bundle)).toString('base64');
                return { Payload: { ...result.Payload, bundle: swapped } };
              }) as never),
      })
      .then(
        () => undefined,
        (e: { cause?: Error }) => e.cause,
      );

    expect(error?.name).toBe('CommandFailedError');
    expect(error?.message).toContain(replica.name);
    expect(error?.message).toContain('pem-ha Install certificates');
    expect(error?.message).toContain('does not match the pending key');
    const generationsAfter = await generations();
    expect(generationsAfter[replica.name]).toBe(generationsBefore[replica.name]);
    for (const port of [5432, 8008]) {
      const key = `${replica.name}:${port}`;
      expect({ key, serial: (await servedSerials())[key] }).toEqual({
        key,
        serial: serialsBefore[key],
      });
    }
    // The primary and the web hosts come after the replica: left as they were.
    expect(generationsAfter[primary]).toBe(generationsBefore[primary]);
    expect(await leader()).toBe(primary);
  }, 900_000);

  test("Given a replica's Patroni that cannot reload, when its new REST certificate is not served within the bound, then the node switches back and the run stops", async () => {
    const primary = await leader();
    const replica = rig.plan.nodes.find((n) => n.tier === 'backend' && n.name !== primary)!;
    const generationsBefore = await generations();
    const serialsBefore = await servedSerials();
    const patroniPid = (
      await rig.execOk(replica.name, ['systemctl', 'show', '-p', 'MainPID', '--value', 'patroni'])
    ).trim();
    const signal = (name: string) => rig.execOk(replica.name, ['kill', `-${name}`, patroniPid]);

    let error: Error | undefined;
    try {
      // Patroni frozen just before this node's install: SIGHUP stays pending.
      error = await rotateEverythingWith('Install certificates: send', async (node) => {
        if (node === replica.name) await signal('STOP');
      });
    } finally {
      await signal('CONT');
    }

    expect(error?.name).toBe('CommandFailedError');
    expect(error?.message).toContain(replica.name);
    expect(error?.message).toMatch(/patroni-rest: port 8008 still serves serial \w+ after \d+ s/);
    expect(error?.message).toContain('switched back');
    expect((await generations())[replica.name]).toBe(generationsBefore[replica.name]);
    const served = await servedSerials();
    for (const port of [5432, 8008]) {
      const key = `${replica.name}:${port}`;
      expect({ key, serial: served[key] }).toEqual({ key, serial: serialsBefore[key] });
    }
    await waitForHealthyReplication(rig);
    expect(await leader()).toBe(primary);
  }, 900_000);

  test('Given a replica cut off once the etcd members are done, then the rotation stops at the health gate before the primary, naming the replica, and the primary keeps its certificates', async () => {
    const primary = await leader();
    const [first, second] = rig.plan.nodes
      .filter((n) => n.tier === 'backend' && n.name !== primary)
      .map((n) => n.name);
    const generationsBefore = await generations();
    const serialsBefore = await servedSerials();
    let cut = false;
    let error: Error | undefined;
    try {
      // The second replica's link goes down as the first replica's turn begins.
      error = await rotateEverythingWith('Request certificates: send', async (node) => {
        if (node === first && !cut) {
          cut = true;
          await rig.host.setLink(second, false);
        }
      });
    } finally {
      await rig.host.setLink(second, true);
    }

    console.log(`rotation stopped: ${error?.message}`);
    expect(cut).toBe(true);
    expect(error?.name).toBe('ClusterUnhealthyError');
    expect(error?.message).toContain(second);
    const after = await generations();
    expect(after[first]).not.toBe(generationsBefore[first]);
    expect(after[second]).toBe(generationsBefore[second]);
    expect(after[primary]).toBe(generationsBefore[primary]);
    const served = await servedSerials();
    for (const port of [5432, 8008]) {
      const key = `${primary}:${port}`;
      expect({ key, serial: served[key] }).toEqual({ key, serial: serialsBefore[key] });
    }
    await waitForHealthyReplication(rig);
    expect(await leader()).toBe(primary);
  }, 900_000);

  test('Given a writer in synchronous mode, when the root is rolled over, then no acknowledged write is lost and only the new root is trusted anywhere', async () => {
    const oldRoot = trustedRoots();
    expect(oldRoot).toHaveLength(1);
    const primary = await leader();
    const serialsBefore = await servedSerials();
    await endpointQueryOn(
      rig,
      5432,
      'CREATE TABLE IF NOT EXISTS rollover_acked (id int PRIMARY KEY)',
    );
    const acknowledged: number[] = [];
    let writing = true;
    const writer = (async () => {
      for (let id = 1; writing && id < 100_000; id++) {
        try {
          await endpointQueryOn(rig, 5432, 'INSERT INTO rollover_acked VALUES ($1)', [id]);
          acknowledged.push(id);
        } catch {
          // not acknowledged: not counted
        }
        await sleep(100);
      }
    })();
    try {
      await withPatroniLogOnFailure(rig, () => rig.rolloverRoot());
    } finally {
      writing = false;
      await writer;
    }

    const newRoot = trustedRoots();
    expect(newRoot).toHaveLength(1);
    expect(newRoot[0]).not.toBe(oldRoot[0]);
    for (const node of rig.plan.nodes) {
      const trustFile = await rig.execOk(node.name, ['cat', '/etc/pem-ha/tls/current/ca.crt']);
      expect({ node: node.name, trust: trustFile.trim() }).toEqual({
        node: node.name,
        trust: newRoot[0].trim(),
      });
    }
    const serialsAfter = await servedSerials();
    for (const [port, serial] of Object.entries(serialsBefore)) {
      expect({ port, changed: serialsAfter[port] !== serial }).toEqual({ port, changed: true });
    }
    const present = new Set(
      (await endpointQueryOn(rig, 5432, 'SELECT id FROM rollover_acked')).map(
        (r) => r.id as number,
      ),
    );
    expect(acknowledged.length).toBeGreaterThan(50);
    expect(acknowledged.filter((id) => !present.has(id))).toEqual([]);
    expect(await leader()).toBe(primary);
  }, 900_000);
});
