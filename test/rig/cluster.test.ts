/**
 * The whole cluster on this machine from the synthesized artifacts: real
 * etcd, Patroni, PostgreSQL and HAProxy in network namespaces, documents run
 * by the bootstrap runbook through the shipped Lambda bundles.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { RigCluster } from '../../rig/cluster';
import { resourcesOfType, SynthesizedTemplate } from '../../rig/template';
import { SERVED_PORTS, servedSerial } from '../../rig/served-certificates';
import {
  LAG_UNDER_WRITES,
  healPartition,
  patroniGet,
  patroniMembers,
  waitForHealthyReplication,
} from '../../rig/patroni';
import {
  albGetOn,
  endpointQueryOn,
  eventually,
  lostWrites,
  nodePsqlOn,
  nodeQueryOn,
  sleep,
  startEndpointWriter,
  upTestRig,
} from '../helpers/rig';
import { opensslCsr } from '../helpers/ca-secrets';
import { failureOf } from '../helpers/fake-runbook';
import { backupTests, BACKUP_TEST_SETTINGS } from './backup';
import { runbookFaultTests } from './runbook-faults';
import { runbookLockTests } from './runbook-lock';
import { dayTwoTests } from './day-two';
import { liveSettingsTests } from './live-settings';
import { pemUpgradeTests } from './pem-upgrade';
import { replacementTests } from './replacement';

const asRoot = process.getuid?.() === 0;
const suite = asRoot ? describe : describe.skip;
if (!asRoot) console.warn('test/rig/cluster.test.ts needs root (network namespaces): skipped');

let rig: RigCluster;
const BACKENDS = ['backend-1', 'backend-2', 'backend-3'];
const address = (node: string) => rig.plan.nodes.find((n) => n.name === node)!.address;
const nodeAt = (ip: string) => rig.plan.nodes.find((n) => n.address === ip)?.name;

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

const albGet = (path: string, cookie?: string) => albGetOn(rig, path, cookie);

/** Writers a test started, stopped after it whatever its outcome. */
const cleanups: (() => Promise<void>)[] = [];
const afterThisTest = (cleanup: () => Promise<void>) => cleanups.push(cleanup);

suite('local cluster from the synthesized artifacts', () => {
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0)) await cleanup();
  });

  beforeAll(async () => {
    rig = await upTestRig('itest', '10.43.0.0/16', { extra: BACKUP_TEST_SETTINGS });
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

  test("Patroni runs the template's timing as given: the fast profile, nothing adjusted", async () => {
    // Given the timing the synthesized patroni document carries (the fast profile)
    const [, patroniDocument] = resourcesOfType(rig.template, 'AWS::SSM::Document').find(([, d]) =>
      String(d.Properties?.Name).endsWith('-patroni'),
    )!;
    const parameters = (
      patroniDocument.Properties?.Content as { parameters: Record<string, { default: string }> }
    ).parameters;
    const timing = ['Ttl', 'LoopWait', 'RetryTimeout'].map((p) => Number(parameters[p].default));
    expect(timing).toEqual([20, 2, 9]);
    // Then Patroni's DCS holds exactly it, and no backend's Patroni logged an adjustment
    const config = (await patroniGet(rig, '/config')) as Record<string, number>;
    expect([config.ttl, config.loop_wait, config.retry_timeout]).toEqual(timing);
    for (const backend of BACKENDS) {
      const log = await rig.execOk(backend, ['cat', '/var/log/rig-units/patroni.service.log']);
      expect(log).toContain('no action. I am');
      expect(log).not.toMatch(/adjusting|Violated the rule/);
    }
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

  test('PEM is configured as seed 001 asks, with the password never on a command line, in a statement or in a log', async () => {
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
    expect(w1).toContain('-aro agent_id=101');
    const password = JSON.parse(rig.aws.secretValue('pem-ha/pemSuperuser')!).password;
    for (const record of [b1, b2, w1]) {
      expect(record).toContain('env PEM_SERVER_PASSWORD set: yes');
      expect(record).toContain('stdin password matches env: yes');
      expect(record).not.toContain(password);
    }
    // The role was made from a SCRAM verifier computed on the node: its password
    // logs in, and appears in no statement text, so in no log of the primary.
    expect(
      await nodeQuery('backend-1', "SELECT rolpassword FROM pg_authid WHERE rolname = 'pemsuper'"),
    ).toMatch(/^SCRAM-SHA-256\$4096:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$/);
    const login = await rig.execOk(
      'backend-1',
      [
        'sh',
        '-c',
        'read -r PGPASSWORD; export PGPASSWORD; psql -XAtc "SELECT current_user" "host=127.0.0.1 dbname=postgres user=pemsuper sslmode=require"',
      ],
      `${password}\n`,
    );
    expect(login.trim()).toBe('pemsuper');
    const logged = await rig.execOk(
      'backend-1',
      ['sh', '-c', 'grep -rlFf - /var/log || true'],
      `${password}\n`,
    );
    expect(logged.trim()).toBe('');
    const subject = await rig.execOk('backend-2', [
      'openssl',
      'x509',
      '-in',
      '/etc/pem-ha/tls/current/pem-agent.crt',
      '-noout',
      '-subject',
      '-nameopt',
      'RFC2253',
    ]);
    expect(subject.trim()).toBe('subject=CN=agent2');
  });

  test("PEM's agent and Apache use the rotated certificate files in place: agent.cfg names them instead of PEM's copies, each agent logs in to the pem database with its certificate, and 8443 serves the pem-web certificate", async () => {
    const tls = '/etc/pem-ha/tls/current';
    const serial = async (node: string, file: string) =>
      (await rig.execOk(node, ['openssl', 'x509', '-in', file, '-noout', '-serial']))
        .trim()
        .replace(/^serial=/, '');
    for (const [node, agent] of [
      ['backend-1', 1],
      ['backend-2', 2],
      ['web-1', 101],
    ] as const) {
      // Given what configure-pem-server.sh left (its copies under /root/.pem)
      expect(await serial(node, `/root/.pem/agent${agent}.crt`)).toMatch(/^[0-9A-F]+$/);
      // Then agent.cfg names the rotated files
      const cfg = await rig.execOk(node, ['cat', '/usr/edb/pem/agent/etc/agent.cfg']);
      expect(cfg).toContain(`agent_ssl_crt=${tls}/pem-agent.crt\n`);
      expect(cfg).toContain(`agent_ssl_key=${tls}/pem-agent.key\n`);
      expect(cfg).not.toContain('/root/.pem');
      // And the agent logs in to the pem database with that certificate (cert authentication)
      const current = await serial(node, `${tls}/pem-agent.crt`);
      await eventually(`${node}'s agent connected with serial ${current}`, 30_000, async () => {
        const last = await rig.execOk(node, ['tail', '-n', '1', '/var/log/pem-double/agent.log']);
        expect(last.trim()).toMatch(new RegExp(`serial=${current} connected as agent${agent}$`));
      });
    }
    // And Apache's PEM site on 8443 serves the node's pem-web certificate
    const site = await rig.execOk('web-1', [
      'cat',
      '/etc/apache2/sites-available/edb-ssl-pem.conf',
    ]);
    expect(site).toMatch(new RegExp(`^\\s*SSLCertificateFile ${tls}/pem-web.crt$`, 'm'));
    expect(site).toMatch(new RegExp(`^\\s*SSLCertificateKeyFile ${tls}/pem-web.key$`, 'm'));
    expect(
      await servedSerial(rig.host.exec, 'web-1', address('web-1'), SERVED_PORTS['pem-web']),
    ).toBe(await serial('web-1', `${tls}/pem-web.crt`));
  });

  test("a monitored server's PEM agent gets a certificate from the agent certificate runbook: it verifies to the cluster's root and logs in to pem through the NLB as its own user; a cluster identity's name or another CN is refused", async () => {
    // Given a key and CSR made where the agent runs (the host, a client network here)
    const dir = mkdtempSync(join(tmpdir(), 'outside-agent-'));
    const file = (name: string) => join(dir, name);
    try {
      const csrFor = (cn: string, name: string) =>
        opensslCsr(`/CN=${cn}`, { keyOut: file(`${name}.key`) });
      const csr = csrFor('agent_orders_db', 'agent');
      // When the runbook signs it
      const issued = await rig.agentCertificate({ agentUser: 'agent_orders_db', csr });
      expect(issued.agentUser).toBe('agent_orders_db');
      writeFileSync(file('agent.crt'), issued.certificate);
      writeFileSync(file('root.crt'), issued.rootCertificate);
      // Then the chain verifies to the root the cluster's nodes trust, for client authentication only
      expect(issued.rootCertificate.trim()).toBe(
        (await rig.execOk('backend-1', ['cat', '/etc/pem-ha/tls/current/ca.crt'])).trim(),
      );
      const [leaf, intermediate] = issued.certificate.split(/(?<=-----END CERTIFICATE-----)\n+/);
      writeFileSync(file('leaf.crt'), leaf);
      writeFileSync(file('intermediate.crt'), intermediate);
      expect(
        execFileSync('openssl', [
          'verify',
          '-purpose',
          'sslclient',
          '-CAfile',
          file('root.crt'),
          '-untrusted',
          file('intermediate.crt'),
          file('leaf.crt'),
        ]).toString(),
      ).toContain(': OK');
      expect(
        execFileSync('openssl', ['x509', '-in', file('leaf.crt'), '-noout', '-subject']).toString(),
      ).toMatch(/CN\s*=\s*agent_orders_db/);
      // And with its user made as PEM's registration makes it, the agent logs in to pem through the NLB
      await nodeQuery(await writeNode(), 'CREATE ROLE agent_orders_db LOGIN IN ROLE pem_agent');
      const conninfo = (user: string, database: string) =>
        `host=${rig.plan.nlbAddress} port=5432 dbname=${database} user=${user} sslmode=verify-ca sslrootcert=${file('root.crt')} sslcert=${file('agent.crt')} sslkey=${file('agent.key')} connect_timeout=10`;
      const psql = (user: string, database: string) => {
        const run = spawnSync(
          'psql',
          ['-XAtw', '-c', 'SELECT current_user', conninfo(user, database)],
          { encoding: 'utf8', timeout: 20_000 },
        );
        return run.status === 0 ? run.stdout.trim() : `refused: ${run.stderr.trim()}`;
      };
      expect(psql('agent_orders_db', 'pem')).toBe('agent_orders_db');
      // And the certificate alone is no administrator's login
      expect(psql('patroni_super', 'postgres')).toMatch(/^refused: .*pg_hba\.conf rejects/);
      // And a cluster identity's name, or a CSR naming another user, is refused before anything is signed
      for (const agentUser of ['agent1', 'pemsuper', 'patroni_super', 'root']) {
        const refused = await failureOf(
          rig.agentCertificate({ agentUser, csr: csrFor(agentUser, agentUser) }),
        );
        expect({ name: refused.name, message: refused.message }).toEqual({
          name: 'InvalidInputError',
          message: expect.stringMatching(/^agentUser must be .*; got "/),
        });
      }
      const mismatch = await failureOf(
        rig.agentCertificate({ agentUser: 'agent_billing_db', csr }),
      );
      expect(mismatch.name).toBe('CsrRejectedError');
      expect(mismatch.message).toBe(
        'outside agent agent_billing_db: certificate request for pem-agent refused: the subject must be CN=agent_billing_db; got CN=agent_orders_db',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('logins by role and source: every administrative role is refused from the client network and through the NLB even with its password, an application role is admitted both ways, pemsuper from a web host only', async () => {
    const password = (secret: string) =>
      JSON.parse(rig.aws.secretValue(`pem-ha/${secret}`)!).password as string;
    const admins: [string, string][] = [
      ['patroni_super', password('patroniSuperuser')],
      ['patroni_rew', password('patroniRewind')],
      ['patroni_rep', password('patroniReplication')],
      ['pemsuper', password('pemSuperuser')],
      ['pem_ha_monitor', 'none'],
    ];
    const primary = await writeNode();
    // From the host (the rig's databaseClientCidrs) straight to the primary, and
    // through the NLB stand-in (whose own address is what PostgreSQL sees).
    const routes = [
      { host: address(primary), port: 5432, source: rig.host.hostAddress },
      { host: rig.plan.nlbAddress, port: 5432, source: rig.plan.nlbAddress },
    ];
    const login = async (
      route: { host: string; port: number },
      user: string,
      secret: string,
      replication?: string,
    ) => {
      const client = new Client({
        host: route.host,
        port: route.port,
        user,
        password: secret,
        database: 'postgres',
        ssl: { rejectUnauthorized: false },
        connectionTimeoutMillis: 5000,
        ...(replication && { replication }),
      });
      client.on('error', () => undefined);
      try {
        await client.connect();
        return replication
          ? `admitted as ${user}`
          : `admitted as ${(await client.query('SELECT current_user AS who')).rows[0].who}`;
      } catch (error) {
        return (error as Error).message;
      } finally {
        await client.end().catch(() => undefined);
      }
    };
    for (const route of routes) {
      for (const [user, secret] of admins) {
        expect(await login(route, user, secret)).toMatch(
          `pg_hba.conf rejects connection for host "${route.source}", user "${user}"`,
        );
      }
      expect(await login(route, 'patroni_rep', admins[2][1], 'true')).toMatch(
        `pg_hba.conf rejects replication connection for host "${route.source}", user "patroni_rep"`,
      );
      expect(await login(route, 'rig_app', rig.applicationConnection().password)).toBe(
        'admitted as rig_app',
      );
    }
    // pemsuper: from a web host yes, from another host of the private subnets no.
    const pemsuperFrom = (node: string) =>
      rig.host.exec(node, {
        argv: [
          'sh',
          '-c',
          `read -r PGPASSWORD; export PGPASSWORD; psql -XAtc "SELECT current_user" "host=${address(primary)} dbname=postgres user=pemsuper sslmode=require connect_timeout=5"`,
        ],
        stdin: `${admins[3][1]}\n`,
        timeoutMs: 15_000,
      });
    expect((await pemsuperFrom('web-1')).stdout.trim()).toBe('pemsuper');
    expect((await pemsuperFrom('nlb')).stderr).toContain(
      `pg_hba.conf rejects connection for host "${rig.plan.nlbAddress}", user "pemsuper"`,
    );
  });

  test('clients verify: psql with verify-full and the roots the RootCertificatesParameter output names connects through the NLB by its DNS name and with the MultiHostConnectionString output as given; another root, or another name, is refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pem-ha-verify-'));
    try {
      // Given the roots saved as the output's description says, and a root of another CA
      const roots = rig.aws.parameters.valueOf(rig.output('RootCertificatesParameter'));
      expect(roots).toMatch(/^-----BEGIN CERTIFICATE-----/);
      expect(roots).not.toContain('PRIVATE KEY');
      writeFileSync(join(dir, 'pem-ha-root.crt'), `${roots}\n`);
      execFileSync(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'ec',
          '-pkeyopt',
          'ec_paramgen_curve:P-256',
          '-nodes',
          '-days',
          '1',
          '-subj',
          '/CN=another CA',
          '-keyout',
          join(dir, 'other.key'),
          '-out',
          join(dir, 'other-root.crt'),
        ],
        { stdio: 'ignore' },
      );
      const psql = (conninfo: string) => {
        const result = spawnSync('psql', [conninfo, '-XAtc', 'SELECT current_user'], {
          cwd: dir,
          env: { ...process.env, PGPASSFILE: join(RigCluster.stateDir(rig.name), 'pgpass') },
          encoding: 'utf8',
          timeout: 20_000,
        });
        return result.status === 0 ? result.stdout.trim() : `refused: ${result.stderr.trim()}`;
      };
      // The rig has no DNS for the NLB's name: libpq dials hostaddr and verifies host.
      const [nlbName, port] = rig.output('WriteEndpoint').split(':');
      const throughNlb = (name: string, root: string) =>
        `host=${name} hostaddr=${rig.plan.nlbAddress} port=${port} dbname=postgres user=rig_app sslmode=verify-full sslrootcert=${root} connect_timeout=5`;
      const multiHost = `${rig.output('MultiHostConnectionString')}&user=rig_app`;
      expect(multiHost).toContain('sslmode=verify-full&sslrootcert=pem-ha-root.crt');

      // Then both ways in verify the server and log in
      expect(psql(throughNlb(nlbName, 'pem-ha-root.crt'))).toBe('rig_app');
      expect(psql(multiHost)).toBe('rig_app');
      // And another CA's root, or a name the certificates do not carry, is refused
      expect(psql(throughNlb(nlbName, 'other-root.crt'))).toMatch(
        /^refused: .*certificate verify failed/,
      );
      expect(psql(multiHost.replace('pem-ha-root.crt', 'other-root.crt'))).toMatch(
        /^refused: .*certificate verify failed/,
      );
      expect(psql(throughNlb('db.example.com', 'pem-ha-root.crt'))).toMatch(
        /^refused: .*does not match host name "db.example.com"/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  /** curl's argv over TLS with a certificate and key (`<certificate>.crt/.key`) and the cluster's root. */
  const curlWithCertificate = (certificate: string, url: string, options: string[] = []) => [
    'curl',
    '-sS',
    '--http1.1',
    '--max-time',
    '5',
    '--cacert',
    '/etc/pem-ha/tls/current/ca.crt',
    '--cert',
    `${certificate}.crt`,
    '--key',
    `${certificate}.key`,
    ...options,
    url,
  ];

  /** backend-2's certificate and key for `identity`, copied into `dir` on etcd-1 (it has etcdctl and reaches 2380). */
  async function copyToEtcd1(dir: string, identity: string): Promise<void> {
    await rig.execOk('etcd-1', ['install', '-d', '-m', '0700', dir]);
    for (const file of [`${identity}.crt`, `${identity}.key`]) {
      const content = await rig.execOk('backend-2', ['cat', `/etc/pem-ha/tls/current/${file}`]);
      await rig.writeFile('etcd-1', `${dir}/${file}`, content, '0600');
    }
  }

  test("etcd's client port by identity: Patroni's login reads and writes its cluster's keys and nothing else; a PEM agent's certificate, or Patroni's own without the login, reads and writes nothing", async () => {
    const tls = '/etc/pem-ha/tls/current';
    const b64 = (text: string) => Buffer.from(text).toString('base64');
    const keysUnder = (prefix: string) => ({
      key: b64(prefix),
      range_end: b64(`${prefix.slice(0, -1)}0`),
      count_only: true,
    });
    // Given etcd's JSON gateway (Patroni's way in), called from backend-2 with one of its certificates
    const gateway = async (identity: string, path: string, body: object, token?: string) => {
      const result = await rig.host.exec('backend-2', {
        argv: curlWithCertificate(
          `${tls}/${identity}`,
          `https://${address('etcd-1')}:2379/v3${path}`,
          [...(token ? ['-H', `Authorization: ${token}`] : []), '--data-binary', '@-'],
        ),
        stdin: JSON.stringify(body),
        timeoutMs: 15_000,
      });
      expect(result.exitCode).toBe(0);
      return result.stdout;
    };
    const leader = await writeNode();
    const password = JSON.parse(rig.aws.secretValue('pem-ha/patroniEtcd')!).password;
    const login = await gateway('etcd-client', '/auth/authenticate', { name: 'patroni', password });
    const token = (JSON.parse(login) as { token?: string }).token;
    expect(token).toBeTruthy();
    // When Patroni's login counts the cluster's keys, then it finds them (leader, members, config ...)
    const counted = JSON.parse(
      await gateway('etcd-client', '/kv/range', keysUnder('/service/pem-ha/'), token),
    ) as { count?: string };
    expect(Number(counted.count)).toBeGreaterThan(2);
    // And outside them it may neither read nor write
    expect(await gateway('etcd-client', '/kv/range', keysUnder('/other/'), token)).toMatch(
      /permission denied/,
    );
    expect(
      await gateway('etcd-client', '/kv/put', { key: b64('/other/x'), value: b64('1') }, token),
    ).toMatch(/permission denied/);
    // And Patroni's certificate without the login, or a PEM agent's, is refused
    expect(await gateway('etcd-client', '/kv/range', keysUnder('/service/pem-ha/'))).toMatch(
      /user name is empty/,
    );
    expect(await gateway('pem-agent', '/kv/range', keysUnder('/service/pem-ha/'))).toMatch(
      /CommonName of client .* will be ignored/,
    );

    // Given backend-2's PEM agent certificate on etcd-1, which has etcdctl (gRPC, no gateway)
    const copy = '/run/pem-ha-test-pem-agent';
    await copyToEtcd1(copy, 'pem-agent');
    const etcdctl = async (...args: string[]) => {
      const result = await rig.host.exec('etcd-1', {
        argv: [
          'etcdctl',
          `--endpoints=https://${address('etcd-2')}:2379`,
          `--cacert=${tls}/ca.crt`,
          `--cert=${copy}/pem-agent.crt`,
          `--key=${copy}/pem-agent.key`,
          '--command-timeout=5s',
          ...args,
        ],
        env: { ETCDCTL_API: '3' },
        timeoutMs: 15_000,
      });
      return `${result.exitCode} ${result.stdout}${result.stderr}`;
    };
    try {
      // When it reads the cluster's keys or writes the leader key, then etcd refuses both
      expect(await etcdctl('get', '--prefix', '--count-only', '/service/pem-ha/')).toMatch(
        /^1 .*permission denied/s,
      );
      expect(await etcdctl('put', '/service/pem-ha/leader', 'intruder')).toMatch(
        /^1 .*permission denied/s,
      );
      // And the leader is the same
      const members = (await patroniMembers(rig)) ?? [];
      expect(members.filter((m) => m.role === 'leader').map((m) => m.name)).toEqual([leader]);
    } finally {
      await rig.execOk('etcd-1', ['rm', '-rf', copy]);
    }
  });

  test("etcd's peer port by identity: a member's peer certificate is answered; its server certificate, or a backend's etcd-client certificate, is refused at the handshake", async () => {
    const tls = '/etc/pem-ha/tls/current';
    // A backend's Patroni certificate copied to etcd-1 (backends cannot reach 2380).
    const copy = '/run/pem-ha-test-etcd-client';
    await copyToEtcd1(copy, 'etcd-client');
    // curl with a certificate; the body, or curl's error
    const call = async (certificate: string) => {
      const result = await rig.host.exec('etcd-1', {
        argv: curlWithCertificate(certificate, `https://${address('etcd-2')}:2380/version`),
        timeoutMs: 15_000,
      });
      return result.exitCode === 0 ? result.stdout : `refused: ${result.stderr.trim()}`;
    };
    try {
      expect(await call(`${tls}/etcd-peer`)).toContain('"etcdserver"');
      for (const certificate of [`${tls}/etcd-server`, `${copy}/etcd-client`]) {
        expect(await call(certificate)).toMatch(/^refused: .*(bad certificate|alert)/);
      }
    } finally {
      await rig.execOk('etcd-1', ['rm', '-rf', copy]);
    }
  });

  // Backups, point-in-time restore, the alarms and the full disk: before any
  // other test takes a backup, after the checks that read the cluster as bootstrapped.
  backupTests(() => rig);

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

  test("the bootstrap with every CA secret emptied while the nodes trust the cluster's root: NodeTrustExistsError names them before any certificate changes and no CA is made; with the secrets back it passes", async () => {
    const nodes = rig.plan.nodes.map((n) => n.name);
    const before = await fingerprint(nodes);
    const ids = ['pem-ha/pki/root', 'pem-ha/pki/intermediate', 'pem-ha/pki/trust'];
    const saved = ids.map((id) => [id, rig.aws.secretValue(id)!] as const);
    for (const id of ids) rig.aws.putSecretValue(id, '{}');
    try {
      const error = (await rig.bootstrap().then(
        () => undefined,
        (e: unknown) => e,
      )) as Error & { cause?: Error };
      expect(error?.cause?.name).toBe('NodeTrustExistsError');
      expect(error.cause!.message).toContain(`${nodes.length} node(s) trust other roots`);
      for (const node of nodes)
        expect(error.cause!.message).toMatch(new RegExp(`${node} \\([0-9a-f]{16}\\)`));
      expect(error.cause!.message).toContain('aws secretsmanager restore-secret');
      for (const id of ids) expect(rig.aws.secretValue(id)).toBe('{}');
    } finally {
      for (const [id, value] of saved) rig.aws.putSecretValue(id, value);
    }
    expect(await fingerprint(nodes)).toEqual(before);
    await rig.bootstrap();
    expect(await fingerprint(nodes)).toEqual(before);
  }, 600_000);

  test('the web UI through the ALB stand-in: a login page from a web host, sticky, and served by the other host once one is killed', async () => {
    // Given the ALB stand-in generated from the synthesized listener and target group
    const first = await albGet('/pem/login');
    expect(first.status).toBe(200);
    const sticky = /on (web-\d)/.exec(first.body)![1];
    const cookie = first.cookie!;
    expect(cookie).toMatch(/^AWSALB=/);
    // When the browser keeps its cookie, it stays on one host
    for (let i = 0; i < 5; i++) expect((await albGet('/pem/login', cookie)).body).toContain(sticky);
    // When that host dies while the browser keeps polling
    await rig.host.kill(sticky);
    afterThisTest(() => rig.reboot(sticky));
    const killedAt = Date.now();
    let failed = 0;
    const served = await eventually('the other web host behind the ALB', 120_000, async () => {
      const answer = await albGet('/pem/login', cookie).catch(() => ({ status: 0, body: '' }));
      if (answer.status !== 200) failed++;
      expect(answer.status).toBe(200);
      return /on (web-\d)/.exec(answer.body)![1];
    });
    // Then the other host answers, and keeps answering
    expect(served).not.toBe(sticky);
    for (let i = 0; i < 5; i++) expect((await albGet('/pem/login', cookie)).status).toBe(200);
    console.log(
      `ALB: ${sticky} killed; ${served} served the session after ${((Date.now() - killedAt) / 1000).toFixed(1)} s and ${failed} failed polls`,
    );
  }, 300_000);

  pemUpgradeTests(() => rig);

  test('the security groups are enforced: a flow the template stops allowing fails, and works again with the template as synthesized', async () => {
    const etcd1 = address('etcd-1');
    const connects = async (from: string, to: string, port: number) =>
      (
        await rig.host.exec(from, {
          argv: ['timeout', '3', 'bash', '-c', `exec 3<>/dev/tcp/${to}/${port}`],
          timeoutMs: 10_000,
        })
      ).exitCode === 0;
    // Given the flows the template allows, and one it never allowed
    expect(await connects('backend-1', etcd1, 2379)).toBe(true);
    expect(await connects('web-2', etcd1, 2379)).toBe(false);
    // When a copy of the template loses the rule admitting Patroni to etcd
    const copy = structuredClone(rig.template) as SynthesizedTemplate;
    const [ruleId] = Object.entries(copy.Resources).find(
      ([, r]) =>
        r.Type === 'AWS::EC2::SecurityGroupIngress' &&
        r.Properties?.Description === 'etcd clients (Patroni)',
    )!;
    delete copy.Resources[ruleId];
    await rig.applySecurityGroups(copy);
    try {
      // Then a backend can no longer open a connection to etcd
      expect(await connects('backend-1', etcd1, 2379)).toBe(false);
    } finally {
      await rig.applySecurityGroups();
    }
    // And with the template as synthesized it can again
    expect(await connects('backend-1', etcd1, 2379)).toBe(true);
  });

  test("cutting the primary's link while a writer runs: the isolated node takes no write, none acknowledged is lost, and it rejoins when the link is back", async () => {
    await endpointQuery(5432, 'CREATE TABLE IF NOT EXISTS partitioned (id int PRIMARY KEY)');
    const isolated = await eventually('a serving write endpoint', 60_000, writeNode);
    const writer = startEndpointWriter(rig, 'partitioned');
    afterThisTest(() => writer.stop());
    await eventually('some writes', 20_000, async () =>
      expect(writer.acknowledged.length).toBeGreaterThan(10),
    );
    await rig.host.setLink(isolated, false);
    try {
      await eventually('a new leader behind the write endpoint', 120_000, async () => {
        expect(await writeNode()).not.toBe(isolated);
      });
      // From now on the isolated node must refuse every write.
      for (let attempt = 0; attempt < 5; attempt++) {
        const result = await nodePsql(isolated, 'INSERT INTO partitioned VALUES (-1)');
        expect(result.exitCode).not.toBe(0);
        await sleep(1000);
      }
    } finally {
      await healPartition(rig, isolated);
    }
    // The old primary rejoins as a replica while writes go on (LAG_UNDER_WRITES says why).
    const members = await waitForHealthyReplication(rig, 180_000, LAG_UNDER_WRITES);
    await writer.stop();
    expect(members.find((m) => m.name === isolated)?.role).not.toBe('leader');
    expect(await lostWrites(rig, 'partitioned', writer.acknowledged)).toEqual([]);
    expect(
      await endpointQuery(5432, 'SELECT count(*)::int AS n FROM partitioned WHERE id = -1'),
    ).toEqual([{ n: 0 }]);
  }, 400_000);

  test("freezing the primary's Patroni for longer than ttl, then resuming it: the new leader and its timeline stay, and no acknowledged write is lost", async () => {
    await endpointQuery(5432, 'CREATE TABLE IF NOT EXISTS frozen (id int PRIMARY KEY)');
    const before = await waitForHealthyReplication(rig);
    const oldLeader = before.find((m) => m.role === 'leader')!;
    const writer = startEndpointWriter(rig, 'frozen');
    afterThisTest(() => writer.stop());
    await eventually('some writes', 20_000, async () =>
      expect(writer.acknowledged.length).toBeGreaterThan(10),
    );
    const patroniPid = (
      await rig.execOk(oldLeader.name, ['systemctl', 'show', '-p', 'MainPID', '--value', 'patroni'])
    ).trim();
    await rig.execOk(oldLeader.name, ['kill', '-STOP', patroniPid]);
    const frozenAt = Date.now();
    let promoted: { name: string; timeline: number };
    try {
      // A new leader's timeline moves on once its promotion is done.
      promoted = await eventually(
        'a promoted leader while Patroni is frozen',
        120_000,
        async () => {
          // The frozen node's REST API hangs: ask the others.
          const leader = (await patroniMembers(rig, [oldLeader.name]))?.find(
            (m) => m.role === 'leader' && m.name !== oldLeader.name,
          );
          expect(leader?.timeline).toBeGreaterThan(oldLeader.timeline!);
          return { name: leader!.name, timeline: leader!.timeline! };
        },
      );
      await eventually('writes on the new leader', 60_000, async () =>
        expect(await writeNode()).toBe(promoted.name),
      );
      // Let the new primary take writes for a while, well past ttl in all.
      await sleep(Math.max(0, 40_000 - (Date.now() - frozenAt)));
    } finally {
      await rig.execOk(oldLeader.name, ['kill', '-CONT', patroniPid]);
    }
    // The resumed node rejoins while writes go on.
    const after = await waitForHealthyReplication(rig, 180_000, LAG_UNDER_WRITES);
    const leader = after.find((m) => m.role === 'leader')!;
    expect({ name: leader.name, timeline: leader.timeline }).toEqual(promoted);
    const history = (await patroniGet(rig, '/history')) as [number, ...unknown[]][];
    expect(history.map(([timeline]) => timeline)).toContain(promoted.timeline - 1);
    await writer.stop();
    expect(await lostWrites(rig, 'frozen', writer.acknowledged)).toEqual([]);
    console.log(
      `frozen leader: ${oldLeader.name} frozen ${((Date.now() - frozenAt) / 1000).toFixed(0)} s, ${promoted.name} promoted on timeline ${promoted.timeline}; ${writer.acknowledged.length} writes acknowledged, none lost`,
    );
  }, 400_000);

  // One runbook at a time, in this process and from two CLI processes.
  runbookLockTests(() => rig);

  // Held packages, the data volume required at boot, writes through an etcd quorum loss.
  dayTwoTests(() => rig);

  // The deploy path again with changed settings: a new backend, reload-only, then a restart.
  liveSettingsTests(() => rig);

  // Instances replaced (fresh roots, volumes kept or new) and brought back by the bootstrap.
  replacementTests(() => rig);

  // Runbooks under faults: replay lag, a cut link, a node killed mid-bootstrap (last: it re-attaches).
  runbookFaultTests(
    () => rig,
    (attached) => (rig = attached),
  );
});
