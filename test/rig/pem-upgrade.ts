/**
 * The upgrade runbook's pem component on the cluster suite's rig (called from
 * cluster.test.ts, which owns the rig): the rig's edb-pem package double at
 * two versions, installed with apt from a repository on each PEM node, and
 * the ALB stand-in's targets taken out and put back through ELBv2's
 * DeregisterTargets and RegisterTargets.
 */
import type { RigCluster } from '../../rig/cluster';
import { readTargetHealth } from '../../rig/nlb';
import { patroniGet } from '../../rig/patroni';
import { PEM_PACKAGE_VERSIONS } from '../../rig/pem-package';
import { albGetOn, eventually, sleep } from '../helpers/rig';

const { old: OLD, new: NEW } = PEM_PACKAGE_VERSIONS;

/** What a PEM node runs: the package, the version its configuration ran for, its agent's last line. */
async function pemState(rig: RigCluster, node: string) {
  const script = [
    "dpkg-query -W -f='${Version}\\n' edb-pem",
    "sed -n 's/.* edb-pem=\\([^ ]*\\).*/\\1/p' /var/lib/pem-ha/pem-*-configured",
    "grep -c '^argv:' /var/lib/pem-ha/configure-pem-server.calls",
    "tail -n 1 /var/log/pem-double/agent.log | cut -d' ' -f2-",
  ].join('; ');
  const [installed, configured, configureRuns, agent] = (
    await rig.execOk(node, ['sh', '-c', script])
  ).split('\n');
  return { installed, configured, configureRuns: Number(configureRuns), agent };
}

/**
 * A browser on the login page through the ALB stand-in, keeping its cookie,
 * every 200 ms; beside it, what HAProxy routes to (UP) at each poll.
 */
function startBrowser(rig: RigCluster, web: readonly string[]) {
  const served: string[] = [];
  const failures: string[] = [];
  const inService: string[][] = [];
  let polling = true;
  const done = (async () => {
    const first = await albGetOn(rig, '/pem/login');
    for (let poll = 0; polling && poll < 5000; poll++) {
      const answer = await albGetOn(rig, '/pem/login', first.cookie).catch((error: Error) => ({
        status: 0,
        body: error.message,
      }));
      if (answer.status === 200) served.push(answer.body.trim());
      else failures.push(`${answer.status} ${answer.body.slice(0, 200)}`);
      const health = await readTargetHealth(rig.host.exec, 'alb').catch(() => ({}));
      const states = (health as Record<number, Record<string, string>>)[443] ?? {};
      inService.push(web.filter((node) => states[node] === 'UP'));
      await sleep(200);
    }
  })();
  return {
    served,
    failures,
    inService,
    stop: async () => {
      polling = false;
      await done;
    },
  };
}

export function pemUpgradeTests(rigOf: () => RigCluster): void {
  test('the pem upgrade component: edb-pem and its configuration step on the primary, then the standbys (no switchover), then each web host drained from the ALB stand-in one at a time; a browser polling /pem/login through it sees no error, and a second run finds nothing to do', async () => {
    const rig = rigOf();
    const pemNodes = rig.plan.nodes.filter((n) => n.tier !== 'etcd').map((n) => n.name);
    const webHosts = rig.plan.nodes.filter((n) => n.tier === 'web').map((n) => n.name);
    // Given both web hosts in service behind the ALB stand-in (an earlier test may have rebooted one)
    await eventually('both web hosts UP in the ALB stand-in', 120_000, async () => {
      const states = (await readTargetHealth(rig.host.exec, 'alb'))[443];
      expect(webHosts.map((node) => states?.[node])).toEqual(webHosts.map(() => 'UP'));
    });
    // And every PEM node at the older edb-pem, and the cluster's leader and timeline
    const before = Object.fromEntries(
      await Promise.all(pemNodes.map(async (node) => [node, await pemState(rig, node)] as const)),
    );
    for (const node of pemNodes)
      expect({ node, ...before[node] }).toMatchObject({ node, installed: OLD, configured: OLD });
    const leaderBefore = (await patroniGet(rig, '/cluster')) as {
      members: { name: string; role: string; timeline?: number }[];
    };
    const leader = leaderBefore.members.find((m) => m.role === 'leader')!;

    // And the leader and web-1 configured by an older pem-ha, whose markers do not name the version
    for (const node of [leader.name, 'web-1']) {
      const tier = node === 'web-1' ? 'web' : 'backend';
      await rig.execOk(node, [
        'sed',
        '-i',
        's/ edb-pem=[^ ]*//',
        `/var/lib/pem-ha/pem-${tier}-configured`,
      ]);
    }

    // When a dry run plans it: the leader first, then the replicas, then the web hosts, no switchover
    const planned = (await rig.upgrade({ component: 'pem', version: 'latest', dryRun: true }))
      .output as Record<string, unknown>;
    const names = (key: string) => (planned[key] as { name: string }[]).map((n) => n.name);
    expect(planned).toMatchObject({
      settings: { component: 'pem', version: NEW },
      switchover: false,
    });
    expect(names('pemBackends')[0]).toBe(leader.name);
    expect(names('pemBackends').sort()).toEqual(pemNodes.filter((n) => !webHosts.includes(n)));
    expect(names('web')).toEqual(webHosts);
    expect((await pemState(rig, 'web-1')).installed).toBe(OLD);

    // And the real run, with a browser polling the login page through the ALB stand-in
    const browser = startBrowser(rig, webHosts);
    let result;
    try {
      result = await rig.upgrade({ component: 'pem', version: NEW });
    } finally {
      await browser.stop();
    }

    // Then the browser never saw an error, and was served by the new release at the end
    expect(browser.failures).toEqual([]);
    expect(browser.served.at(-1)).toContain(`edb-pem ${NEW}`);
    // And each web host was out of the ALB at some point, never both at once
    for (const node of webHosts)
      expect(browser.inService.some((up) => !up.includes(node))).toBe(true);
    expect(browser.inService.filter((up) => up.length === 0)).toEqual([]);
    // And every PEM node runs the new package, configured for it, its agent restarted on it
    for (const node of pemNodes) {
      const after = await pemState(rig, node);
      expect({ node, installed: after.installed, configured: after.configured }).toEqual({
        node,
        installed: NEW,
        configured: NEW,
      });
      expect({ node, agent: after.agent }).toEqual({
        node,
        agent: expect.stringMatching(
          new RegExp(`^edb-pem=${NEW} serial=\\S+ connected as agent\\d+$`),
        ),
      });
      // PEM's configuration ran again on the primary and each web host, never on a standby
      const ranAgain = after.configureRuns - before[node].configureRuns;
      const expected = node === leader.name || webHosts.includes(node) ? 1 : 0;
      expect({ node, ranAgain }).toEqual({ node, ranAgain: expected });
    }
    // And no switchover: the same leader on the same timeline
    const clusterAfter = (await patroniGet(rig, '/cluster')) as typeof leaderBefore;
    expect(clusterAfter.members.find((m) => m.role === 'leader')).toMatchObject({
      name: leader.name,
      timeline: leader.timeline,
    });
    console.log(
      `pem upgrade ${OLD} -> ${NEW}: ${((result.durationMs ?? 0) / 1000).toFixed(0)} s; ${browser.served.length} browser polls through the ALB, ${browser.failures.length} failed`,
    );

    // When it runs again, then every PEM node is already at the target and nothing changes
    const again = (await rig.upgrade({ component: 'pem', version: NEW })).output as {
      alreadyAtTarget: string[];
    };
    expect([...again.alreadyAtTarget].sort()).toEqual([...pemNodes].sort());
  }, 900_000);
}
