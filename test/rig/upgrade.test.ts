/**
 * The rolling upgrade on a running cluster built from the synthesized
 * artifacts, with a real package version change: the rig starts at the older
 * PostgreSQL 15 minor Debian serves and upgrades to the newer one from the
 * rig's local apt repository, while a writer counts acknowledged rows.
 *
 * This suite alone runs Debian 12 nodes (and so Debian 12's Patroni 3.0.2,
 * which synth refuses everywhere else): an upgrade test needs two real minors
 * of one major, and Debian 13 serves a single PostgreSQL 17 minor today. A
 * re-versioned copy of one package would prove nothing about an upgrade.
 */
import { rigPostgresVersions } from '../../rig/apt';
import { RigCluster } from '../../rig/cluster';
import {
  describeMembers,
  LAG_UNDER_WRITES,
  patroniMembers,
  waitForHealthyReplication,
} from '../../rig/patroni';
import { endpointQueryOn, eventually, nodeQueryOn, sleep, upTestRig } from '../helpers/rig';

const asRoot = process.getuid?.() === 0;
const suite = asRoot ? describe : describe.skip;
if (!asRoot) console.warn('test/rig/upgrade.test.ts needs root (network namespaces): skipped');

const upstream = (version: string) => version.replace(/^[0-9]+:/, '').replace(/-[^-]*$/, '');

let rig: RigCluster;
let versions: { old: string; new: string };
const backends = () => rig.plan.nodes.filter((n) => n.tier === 'backend').map((n) => n.name);

/** What each backend runs: package installed, server version, whether the binary was replaced. */
async function runningVersions(nodes = backends()) {
  const result: Record<string, { installed: string; server: string; stale: boolean }> = {};
  for (const node of nodes) {
    const installed = await rig.execOk(node, [
      'dpkg-query',
      '-W',
      '-f=${Version}',
      'postgresql-15',
    ]);
    const server = (await nodeQueryOn(rig, node, 'SHOW server_version')).split(' ')[0];
    const exe = await rig.execOk(node, [
      'sh',
      '-c',
      'readlink /proc/$(head -n 1 /var/lib/postgresql/15/*/postmaster.pid)/exe',
    ]);
    result[node] = { installed, server, stale: exe.includes('(deleted)') };
  }
  return result;
}

/** The drain tags in a backend's patroni.yml (what the runbook sets while it works on a replica). */
async function drainTags(node: string): Promise<string> {
  const script =
    'import yaml; t = yaml.safe_load(open("/etc/patroni/patroni.yml")).get("tags") or {}; ' +
    "print(f\"noloadbalance={bool(t.get('noloadbalance'))} nosync={bool(t.get('nosync'))}\")";
  return (await rig.execOk(node, ['python3', '-c', script])).trim();
}

/** Acknowledged writes through the write endpoint, one new connection each (as a pooler would). */
function startWriter() {
  const acknowledged: { id: number; at: number }[] = [];
  let writing = true;
  const done = (async () => {
    for (let id = 1; writing && id < 1_000_000; id++) {
      try {
        await endpointQueryOn(rig, 5432, 'INSERT INTO upgrade_acked VALUES ($1)', [id]);
        acknowledged.push({ id, at: Date.now() });
      } catch {
        // not acknowledged: not counted
      }
      await sleep(100);
    }
  })();
  return {
    acknowledged,
    stop: async () => {
      writing = false;
      await done;
    },
  };
}

/** Patroni's view twice a second: the leaders seen and the most members down at once. */
function startWatcher() {
  const leaders: string[] = [];
  let mostDown = 0;
  let watching = true;
  const done = (async () => {
    for (let i = 0; watching && i < 20_000; i++) {
      const members = await patroniMembers(rig).catch(() => undefined);
      if (members) {
        const running = members.filter((m) => ['running', 'streaming'].includes(m.state));
        mostDown = Math.max(mostDown, backends().length - running.length);
        const leader = members.find((m) => m.role === 'leader')?.name;
        if (leader && leader !== leaders.at(-1)) leaders.push(leader);
      }
      await sleep(500);
    }
  })();
  return {
    leaders,
    mostDown: () => mostDown,
    stop: async () => {
      watching = false;
      await done;
    },
  };
}

suite('rolling upgrade on the local cluster (synthesized state machine, real packages)', () => {
  beforeAll(async () => {
    const served = rigPostgresVersions();
    versions = served;
    if (served.rebuilt) {
      throw new Error(
        `Debian serves one PostgreSQL 15 minor (${served.old}) today: this suite asserts on a real minor change, never on a re-versioned copy`,
      );
    }
    // No PEM: the upgrade's components are the backends' and etcd's; the web tier plays no part.
    rig = await upTestRig('upg', '10.51.0.0/16', {
      fastPatroni: false,
      family: 'debian-12',
      pem: false,
    });
    await waitForHealthyReplication(rig);
    await endpointQueryOn(
      rig,
      5432,
      'CREATE TABLE IF NOT EXISTS upgrade_acked (id int PRIMARY KEY)',
    );
  }, 900_000);

  afterAll(async () => {
    await rig?.down();
  }, 120_000);

  test('Given the cluster at the older minor, when a replica is killed in the middle of its upgrade, then the runbook halts naming it and the drain tags left on it, the primary keeps serving, nothing is lost, and a second execution clears the tags first and completes with one switchover', async () => {
    const before = await runningVersions();
    for (const node of backends()) {
      expect({ node, ...before[node] }).toEqual({
        node,
        installed: versions.old,
        server: upstream(versions.old),
        stale: false,
      });
    }
    const primary = (await patroniMembers(rig))!.find((m) => m.role === 'leader')!.name;
    const writer = startWriter();
    const watcher = startWatcher();
    let killed: string | undefined;
    try {
      // When: the second replica's instance stops just before its restart (it is drained by then).
      let restarts = 0;
      const halted = await rig
        .upgrade(
          { component: 'postgresql', version: versions.new },
          {
            wrapTask: (state, handler) =>
              state !== 'Replica: restart: send'
                ? handler
                : ((async (input: { Payload: { node: { name: string } } }) => {
                    if (++restarts === 2) {
                      killed = input.Payload.node.name;
                      await rig.host.kill(killed);
                    }
                    return handler(input as never);
                  }) as never),
          },
        )
        .then(
          () => undefined,
          (error: Error & { cause?: Error }) => error.cause ?? error,
        );

      // Then: halted, naming the node and its stopped instance, and the drain
      // tags it could not clear there; the primary untouched and still serving.
      console.log(`halted: ${halted?.message}`);
      expect(killed).toBeDefined();
      expect(halted?.name).toBe('InstanceNotRunningError');
      expect(halted?.message).toMatch(
        new RegExp(`^${killed} \\(i-[0-9a-f]+\\): .*the instance is stopped`),
      );
      expect(halted?.message).toMatch(/halt: one healthy primary/);
      expect(halted?.message).toMatch(
        new RegExp(
          `${killed}[^;]*(noloadbalance|nosync)[^;]*the next upgrade run clears them first`,
        ),
      );
      const afterHalt = await runningVersions([primary]);
      expect(afterHalt[primary]).toEqual({
        installed: versions.old,
        server: upstream(versions.old),
        stale: false,
      });
      await endpointQueryOn(rig, 5432, 'SELECT 1');

      // Given the node back, when the runbook runs again, then it finishes the rest.
      await rig.reboot(killed!);
      // Patroni's /cluster shows a killed member as running until its key expires: ask the node.
      await eventually(`${killed} serving again`, 120_000, () =>
        nodeQueryOn(rig, killed!, 'SELECT 1'),
      );
      // The writer runs on.
      await waitForHealthyReplication(rig, 180_000, LAG_UNDER_WRITES);
      // The halted run's tags came back with the node: it serves no reads.
      expect(await drainTags(killed!)).toBe('noloadbalance=True nosync=True');
      const firstRun = writer.acknowledged.length;
      const started = Date.now();
      const sends: string[] = [];
      const { durationMs } = await rig.upgrade(
        { component: 'postgresql', version: versions.new },
        {
          wrapTask: (state, handler) =>
            !state.endsWith(': send')
              ? handler
              : ((async (input: { Payload: { node: { name: string } } }) => {
                  sends.push(`${state} ${input.Payload.node.name}`);
                  return handler(input as never);
                }) as never),
        },
      );
      // The second run cleared them before it touched anything else.
      expect(sends.filter((s) => !s.startsWith('Check node'))[0]).toBe(
        `Leftover drain tags: clear: send ${killed}`,
      );
      const during = writer.acknowledged.filter((w) => w.at >= started);
      const gaps = during.slice(1).map((w, i) => w.at - during[i].at);
      console.log(
        `the second execution finished the upgrade in ${(durationMs / 1000).toFixed(1)} s; ` +
          `longest write gap ${(Math.max(...gaps) / 1000).toFixed(1)} s; ` +
          `${writer.acknowledged.length} writes acknowledged (${firstRun} before the second run)`,
      );
    } finally {
      await writer.stop();
      await watcher.stop();
    }

    const after = await runningVersions();
    for (const node of backends()) {
      expect({ node, ...after[node] }).toEqual({
        node,
        installed: versions.new,
        server: upstream(versions.new),
        stale: false,
      });
    }
    // Every backend's tags as before the first run, and both replicas serving reads.
    for (const node of backends()) {
      expect({ node, tags: await drainTags(node) }).toEqual({
        node,
        tags: 'noloadbalance=False nosync=False',
      });
    }
    await eventually('both replicas in the read endpoint', 60_000, async () => {
      const up = Object.values((await rig.targetHealth())[5433] ?? {}).filter((s) => s === 'UP');
      expect(up).toHaveLength(2);
    });
    // One switchover: the leader changed exactly once, never two members down at once.
    expect(watcher.leaders).toHaveLength(2);
    expect(watcher.leaders[0]).toBe(primary);
    expect(watcher.mostDown()).toBeLessThanOrEqual(1);
    const present = new Set(
      (await endpointQueryOn(rig, 5432, 'SELECT id FROM upgrade_acked')).map((r) => r.id as number),
    );
    expect(writer.acknowledged.length).toBeGreaterThan(100);
    expect(writer.acknowledged.filter((w) => !present.has(w.id))).toEqual([]);
    console.log(`members after the upgrade: ${describeMembers(await patroniMembers(rig))}`);
  }, 1_800_000);
});
