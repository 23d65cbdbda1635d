import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { maxLagBytesSetting } from '../../functions/cluster-status/handler';
import {
  ClusterUnhealthyError,
  confirmLeaderUnchanged,
  LeaderChangedError,
  locateLeader,
  planRotation,
} from '../../functions/cluster-status/status';
import type { ClusterInventory, NodeAddress } from '../../functions/lib/inventory';
import { httpsPatroniGet, PatroniGet, PatroniUnreachableError } from '../../functions/lib/patroni';
import {
  createIntermediateCa,
  createRootCa,
  entitlementsOf,
  issueLeaf,
} from '../../functions/lib/pki';

const node = (name: string, tier: 'etcd' | 'backend' | 'web', address: string) => ({
  name,
  tier,
  address,
  instanceId: `i-${name}`,
});
const INVENTORY: ClusterInventory<NodeAddress> = {
  etcd: [node('etcd-1', 'etcd', '10.0.4.10'), node('etcd-2', 'etcd', '10.0.5.10')],
  backend: [
    node('backend-1', 'backend', '10.0.4.20'),
    node('backend-2', 'backend', '10.0.5.20'),
    node('backend-3', 'backend', '10.0.6.20'),
  ],
  web: [node('web-1', 'web', '10.0.4.30')],
};

const MAX_LAG = { maxLagBytes: 1048576 };

/**
 * A Patroni whose members (name:role:state:timeline[:replay bytes behind])
 * answer GET /cluster and each its own GET /patroni; a backend not listed
 * refuses connections.
 */
const patroni = (...specs: string[]): PatroniGet => {
  const members = specs.map((m) => {
    const [name, role, state, timeline, behind] = m.split(':');
    return { name, role, state, timeline: Number(timeline), behind: Number(behind ?? 0) };
  });
  return async (address, path) => {
    if (path === '/cluster') {
      return { members: members.map(({ behind: _, ...member }) => member) };
    }
    const member = members.find(
      (m) => m.name === INVENTORY.backend.find((n) => n.address === address)?.name,
    );
    if (!member) throw new Error(`connect ECONNREFUSED ${address}:8008`);
    const state = member.state === 'streaming' ? 'running' : member.state;
    if (member.role === 'leader') {
      return { state, role: 'primary', timeline: member.timeline, xlog: { location: 9_000_000 } };
    }
    return {
      state,
      role: 'replica',
      timeline: member.timeline,
      xlog: {
        received_location: 9_000_000,
        replayed_location: 9_000_000 - member.behind,
        replayed_timestamp: null,
        paused: false,
      },
    };
  };
};

describe('planRotation', () => {
  test('Given backend-2 leads, then the order is etcd, the replicas, backend-2, web', async () => {
    const plan = await planRotation(
      patroni(
        'backend-1:replica:running:3',
        'backend-2:leader:running:3',
        'backend-3:sync_standby:streaming:3',
      ),
      INVENTORY,
      MAX_LAG,
    );
    expect(plan).toMatchObject({ leader: 'backend-2', timeline: 3 });
    expect(plan.order.map((n) => n.name)).toEqual([
      'etcd-1',
      'etcd-2',
      'backend-1',
      'backend-3',
      'backend-2',
      'web-1',
    ]);
  });

  test.each([
    [
      'no leader',
      ['backend-1:replica:running:1', 'backend-2:replica:running:1', 'backend-3:replica:running:1'],
      '0 leaders',
    ],
    [
      'a stopped replica',
      ['backend-1:leader:running:1', 'backend-2:replica:stopped:1', 'backend-3:replica:running:1'],
      'backend-2 is not a running member',
    ],
    [
      'a member whose REST API does not answer',
      ['backend-1:leader:running:1', 'backend-2:replica:running:1'],
      'backend-3 is unreachable: GET /patroni failed (connect ECONNREFUSED 10.0.6.20:8008)',
    ],
    [
      'a replica whose replay stands behind what it received',
      [
        'backend-1:leader:running:1',
        'backend-2:replica:running:1:57794208',
        'backend-3:replica:running:1',
      ],
      'backend-2 replays 57794208 bytes behind the leader (receives 0 bytes behind; replay delay unknown; maxLagBytes 1048576)',
    ],
  ])('Given %s, then ClusterUnhealthyError says so', async (_, members, message) => {
    const run = planRotation(patroni(...members), INVENTORY, MAX_LAG);
    await expect(run).rejects.toThrow(ClusterUnhealthyError);
    await expect(run).rejects.toThrow(message);
  });
});

describe('confirmLeaderUnchanged reading /cluster', () => {
  test('Given the first backend does not answer, then the next one is asked', async () => {
    const asked: string[] = [];
    const get: PatroniGet = async (address, path) => {
      asked.push(address);
      if (address === '10.0.4.20') throw new Error('connect ECONNREFUSED');
      return patroni(
        'backend-1:leader:running:1',
        'backend-2:replica:running:1',
        'backend-3:replica:running:1',
      )(address, path);
    };
    await expect(
      confirmLeaderUnchanged(get, INVENTORY, { leader: 'backend-1', timeline: 1 }),
    ).resolves.toMatchObject({ leader: 'backend-1' });
    expect(asked).toEqual(['10.0.4.20', '10.0.5.20']);
  });

  test('Given no backend answers, then PatroniUnreachableError carries every reason', async () => {
    const get: PatroniGet = async (address) => {
      throw new Error(`${address} timed out`);
    };
    const run = confirmLeaderUnchanged(get, INVENTORY, { leader: 'backend-1', timeline: 1 });
    await expect(run).rejects.toThrow(PatroniUnreachableError);
    await expect(run).rejects.toThrow(
      '10.0.4.20 timed out; 10.0.5.20 timed out; 10.0.6.20 timed out',
    );
  });
});

describe('confirmLeaderUnchanged', () => {
  const members = [
    'backend-1:leader:running:4',
    'backend-2:replica:running:4',
    'backend-3:replica:running:4',
  ];

  test('Given the same leader and timeline, then it confirms', async () => {
    await expect(
      confirmLeaderUnchanged(patroni(...members), INVENTORY, { leader: 'backend-1', timeline: 4 }),
    ).resolves.toEqual({ leader: 'backend-1', timeline: 4 });
  });

  test('Given a new timeline under the same leader (a failover and back), then LeaderChangedError', async () => {
    const run = confirmLeaderUnchanged(patroni(...members), INVENTORY, {
      leader: 'backend-1',
      timeline: 3,
    });
    await expect(run).rejects.toThrow(LeaderChangedError);
    await expect(run).rejects.toThrow(
      'before backend-1 on timeline 3, now backend-1 on timeline 4',
    );
  });
});

describe('locateLeader', () => {
  test('Given backend-3 leads and a replica is stopped, then it is backend-3 with its inventory entry', async () => {
    const get = patroni(
      'backend-1:replica:stopped:2',
      'backend-2:replica:streaming:2',
      'backend-3:leader:running:2',
    );
    await expect(locateLeader(get, INVENTORY)).resolves.toEqual({
      leader: node('backend-3', 'backend', '10.0.6.20'),
      timeline: 2,
    });
  });

  test('Given no leader (a failover in progress), then ClusterUnhealthyError lists the members', async () => {
    const get = patroni('backend-1:replica:running:2', 'backend-2:replica:running:2');
    const run = locateLeader(get, INVENTORY);
    await expect(run).rejects.toThrow(ClusterUnhealthyError);
    await expect(run).rejects.toThrow(
      '0 leaders (backend-1 replica/running, backend-2 replica/running)',
    );
  });

  test('Given a leader the inventory does not know, then ClusterUnhealthyError names it and the backends', async () => {
    const get = patroni('backend-9:leader:running:1', 'backend-1:replica:running:1');
    await expect(locateLeader(get, INVENTORY)).rejects.toThrow(
      "the leader backend-9 is not one of the stack's backends (backend-1, backend-2, backend-3)",
    );
  });
});

describe('the cluster-status function settings', () => {
  test('Given MAX_LAG_BYTES as a whole number, then it is the bound', () => {
    expect(maxLagBytesSetting({ MAX_LAG_BYTES: '16777216' })).toBe(16777216);
  });

  test.each([
    [undefined, 'got nothing'],
    ['1.5', 'got "1.5"'],
    ['-1', 'got "-1"'],
    ['', 'got ""'],
  ])('Given MAX_LAG_BYTES %j, then a clear error names the variable', (value, given) => {
    expect(() => maxLagBytesSetting({ MAX_LAG_BYTES: value })).toThrow(
      `environment variable MAX_LAG_BYTES must be a whole number of bytes, 0 or more; ${given}`,
    );
  });
});

describe('httpsPatroniGet against a TLS server with a cluster certificate', () => {
  let dir: string;
  let server: Server;
  let port: number;
  let roots: string[];
  let otherRoot: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'patroni-client-'));
    const root = await createRootCa({ commonName: 'test root', validityDays: 30 });
    const intermediate = await createIntermediateCa(root, {
      commonName: 'test issuing',
      validityDays: 30,
    });
    otherRoot = (await createRootCa({ commonName: 'other root', validityDays: 30 })).certificatePem;
    roots = [root.certificatePem];
    const key = join(dir, 'rest.key');
    execFileSync('openssl', [
      'genpkey',
      '-algorithm',
      'EC',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-out',
      key,
    ]);
    const member = { name: 'backend-1', tier: 'backend' as const, address: '127.0.0.2' };
    const csr = execFileSync(
      'openssl',
      [
        'req',
        '-new',
        '-key',
        key,
        '-subj',
        '/CN=backend-1',
        '-addext',
        'subjectAltName=DNS:backend-1,DNS:localhost,IP:127.0.0.2,IP:127.0.0.1',
      ],
      { encoding: 'utf8' },
    );
    const wanted = entitlementsOf(member).find((e) => e.identity === 'patroni-rest')!;
    const chain = await issueLeaf(
      'backend-1',
      csr,
      wanted,
      { ...intermediate },
      { validityDays: 2 },
    );
    server = createServer({ key: readFileSync(key), cert: chain }, (req, res) => {
      res.writeHead(req.url === '/cluster' ? 200 : 404, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          members: [{ name: 'backend-1', role: 'leader', state: 'running', timeline: 1 }],
        }),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.2', resolve));
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  test('Given the cluster root, when /cluster is read, then the leaf + intermediate chain verifies and the members come back', async () => {
    await expect(httpsPatroniGet(roots, { port })('127.0.0.2', '/cluster')).resolves.toMatchObject({
      members: [{ name: 'backend-1', role: 'leader' }],
    });
  });

  test('Given another root, then the server is not trusted', async () => {
    await expect(httpsPatroniGet([otherRoot], { port })('127.0.0.2', '/cluster')).rejects.toThrow(
      /certificate/,
    );
  });

  test('Given a path Patroni answers with 404, then the status is in the error', async () => {
    await expect(httpsPatroniGet(roots, { port })('127.0.0.2', '/nothing')).rejects.toThrow(
      `127.0.0.2:${port}/nothing answered 404`,
    );
  });
});
