/**
 * A cluster that does not hurt itself, on the cluster suite's rig (called
 * from cluster.test.ts, which owns the rig): the data volume required at
 * boot, the cluster's software held, and writes through an etcd quorum loss.
 */
import type { RigCluster } from '../../rig/cluster';
import { patroniGet, waitForHealthyReplication } from '../../rig/patroni';
import {
  endpointQueryOn,
  eventually,
  lostWrites,
  sleep,
  startEndpointWriter,
} from '../helpers/rig';

const PATRONI_LOG = '/var/log/rig-units/patroni.service.log';

export function dayTwoTests(rig: () => RigCluster): void {
  const replicas = async () =>
    (await waitForHealthyReplication(rig())).filter((m) => m.role !== 'leader').map((m) => m.name);

  test("the cluster's software is held and left out of unattended upgrades; failsafe_mode is on; Patroni's watchdog is automatic, and the rig has no device", async () => {
    const held = async (node: string) =>
      (await rig().execOk(node, ['apt-mark', 'showhold'])).trim().split('\n').sort();
    expect(await held('backend-1')).toEqual([
      'edb-pem',
      'patroni',
      'pgbackrest',
      'postgresql-17',
      'postgresql-client-17',
    ]);
    expect(await held('etcd-1')).toEqual(['etcd-client', 'etcd-server']);
    expect(
      await rig().execOk('backend-1', ['cat', '/etc/apt/apt.conf.d/51pem-ha-unattended-upgrades']),
    ).toContain('Unattended-Upgrade::Package-Blacklist { "etcd-"; "postgresql-";');
    expect(await patroniGet(rig(), '/config')).toMatchObject({ failsafe_mode: true });
    const config = await rig().execOk('backend-1', ['cat', '/etc/patroni/patroni.yml']);
    expect(config).toMatch(/watchdog:\n {2}mode: automatic\n {2}device: \/dev\/watchdog/);
    // A rig node's /dev has no watchdog (it would reset the whole machine): the leader,
    // which activates it on taking the lock, says so and runs on.
    const [leader] = (await waitForHealthyReplication(rig())).filter((m) => m.role === 'leader');
    expect(await rig().execOk(leader.name, ['cat', PATRONI_LOG])).toMatch(
      /Could not activate Linux watchdog device/,
    );
  });

  test('a replica rebooted with its data volume detached: Patroni does not start on the root disk and the node says why; back with its volume, it streams again', async () => {
    const [victim] = await replicas();
    await rig().host.kill(victim);
    await rig().reboot(victim, { withDataVolume: false });
    try {
      expect(
        (
          await rig().host.exec(victim, {
            argv: ['systemctl', 'is-active', 'patroni'],
            timeoutMs: 10_000,
          })
        ).stdout.trim(),
      ).toBe('inactive');
      const status = await rig().host.exec(victim, {
        argv: ['systemctl', 'status', 'patroni'],
        timeoutMs: 10_000,
      });
      expect(status.stdout).toContain(
        'Dependency failed for patroni.service: /var/lib/postgresql is not mounted',
      );
      const onRootDisk = await rig().host.exec(victim, {
        argv: [
          'sh',
          '-c',
          `ls -d /var/lib/postgresql/17/${rig().plan.clusterName} 2>/dev/null; pgrep -x postgres`,
        ],
        timeoutMs: 10_000,
      });
      expect(onRootDisk.stdout.trim()).toBe('');
    } finally {
      // The volume attached again, as after the instance's next boot.
      await rig().host.kill(victim);
      await rig().reboot(victim);
    }
    const members = await waitForHealthyReplication(rig());
    expect(members.find((m) => m.name === victim)?.state).toMatch(/running|streaming/);
  }, 300_000);

  test('two of three etcd members stopped while a writer runs: with failsafe_mode the primary keeps taking writes, and none acknowledged is lost when etcd returns', async () => {
    await endpointQueryOn(rig(), 5432, 'CREATE TABLE IF NOT EXISTS quorum (id int PRIMARY KEY)');
    const [before] = (await waitForHealthyReplication(rig())).filter((m) => m.role === 'leader');
    const writer = startEndpointWriter(rig(), 'quorum');
    await eventually('some writes', 20_000, async () =>
      expect(writer.acknowledged.length).toBeGreaterThan(10),
    );
    const { ttl } = (await patroniGet(rig(), '/config')) as { ttl: number };
    const ttlMs = ttl * 1000;
    const stopped = ['etcd-1', 'etcd-2'];
    try {
      for (const node of stopped) await rig().execOk(node, ['systemctl', 'stop', 'etcd']);
      const lostAt = Date.now();
      // The leader notices once its key update fails, and asks every member to confirm it.
      await eventually('failsafe mode active on the leader', 90_000, async () => {
        const others = rig()
          .plan.nodes.filter((n) => n.tier === 'backend' && n.name !== before.name)
          .map((n) => n.name);
        const leader = (await patroniGet(rig(), '/patroni', others)) as Record<string, unknown>;
        expect(leader).toMatchObject({ role: 'primary', failsafe_mode_is_active: true });
      });
      const failsafeAfter = Date.now() - lostAt;
      // Past ttl without etcd (the leader key would be gone): the primary stays, and writes go on.
      const during = writer.acknowledged.length;
      await sleep(Math.max(5_000, lostAt + ttlMs + 5_000 - Date.now()));
      expect(writer.acknowledged.length).toBeGreaterThan(during + 10);
      console.log(
        `etcd quorum lost: failsafe active after ${(failsafeAfter / 1000).toFixed(0)} s; ${writer.acknowledged.length - during} writes acknowledged after that, ${((Date.now() - lostAt) / 1000).toFixed(0)} s without etcd (ttl ${ttl} s)`,
      );
    } finally {
      for (const node of stopped) await rig().execOk(node, ['systemctl', 'start', 'etcd']);
      await writer.stop();
    }
    const after = await waitForHealthyReplication(rig());
    expect(after.find((m) => m.role === 'leader')).toMatchObject({
      name: before.name,
      timeline: before.timeline,
    });
    expect(await lostWrites(rig(), 'quorum', writer.acknowledged)).toEqual([]);
  }, 300_000);
}
