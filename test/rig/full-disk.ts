/**
 * A primary whose data volume fills, on the cluster suite's rig (called from
 * backup.ts after the backup tests; cluster.test.ts owns the rig): the data
 * volume metric crosses its alarm, the failover runbook moves the primary to
 * a replica with every acknowledged write, and the old primary rejoins once
 * space is freed.
 */
import type { RigCluster } from '../../rig/cluster';
import { patroniMembers, waitForHealthyReplication } from '../../rig/patroni';
import {
  alarmThreshold,
  endpointQueryOn,
  eventually,
  lostWrites,
  startEndpointWriter,
} from '../helpers/rig';

const DATA = '/var/lib/postgresql';
const FILLER = `${DATA}/full-disk-test.fill`;
const RESERVE = `${DATA}/pem-ha-space-reserve`;
/** What the filler leaves PostgreSQL: less than one WAL segment. */
const LEFT_MIB = 16;

export function fullDiskTests(rig: () => RigCluster): void {
  test("Given a writer through the write endpoint, when the primary's data volume fills, then the data volume metric crosses its alarm, the failover runbook moves the primary to a replica with every acknowledged write, writes go on through the write endpoint, and the old primary streams again once the space is freed", async () => {
    const before = await waitForHealthyReplication(rig());
    const old = before.find((m) => m.role === 'leader')!;
    await endpointQueryOn(
      rig(),
      5432,
      'DROP TABLE IF EXISTS full_disk; CREATE TABLE full_disk (id int PRIMARY KEY)',
    );
    const writer = startEndpointWriter(rig(), 'full_disk');
    let startedAt = 0;
    try {
      // When the volume is filled (as root, so the blocks ext4 keeps for root go too)
      // until PostgreSQL has 16 MiB left
      const freeMib = Number(
        await rig().execOk(old.name, [
          'sh',
          '-c',
          `echo $(( $(stat -f -c '%a * %S' ${DATA}) / 1048576 ))`,
        ]),
      );
      await rig().execOk(old.name, ['fallocate', '-l', `${freeMib - LEFT_MIB}MiB`, FILLER]);

      // Then the data volume metric the health runbook publishes is below its alarm
      const health = await rig().backupHealth();
      console.log(
        `full disk: the backup health runbook read ${JSON.stringify(health.dataVolume)} on ${health.node}`,
      );
      expect(health.node).toBe(old.name);
      expect(health.dataVolume!.freePercent).toBeLessThan(
        alarmThreshold(rig(), 'DataVolumeFreePercent'),
      );

      // When the failover runbook runs with {}
      startedAt = Date.now();
      const { output, durationMs } = await rig().failover({});
      const chosen = (
        output as {
          chosen: { result: { candidate: { name: string }; releaseReserveOn: { name: string }[] } };
        }
      ).chosen.result;
      // Then the old primary's reserve was released and the candidate leads
      expect(chosen.releaseReserveOn.map((n) => n.name)).toEqual([old.name]);
      expect(
        (
          await rig().execOk(old.name, [
            'sh',
            '-c',
            `test -e ${RESERVE} && echo kept || echo released`,
          ])
        ).trim(),
      ).toBe('released');
      const leaders = ((await patroniMembers(rig())) ?? []).filter((m) => m.role === 'leader');
      expect(leaders.map((m) => [m.name, m.state])).toEqual([[chosen.candidate.name, 'running']]);
      // And writes go on through the write endpoint, to the new primary
      await eventually(
        'a write through the write endpoint after the failover',
        120_000,
        async () => {
          if (!writer.resumedAfter(startedAt + durationMs))
            throw new Error('no write since the runbook ended');
        },
      );
      console.log(
        `full disk: the failover runbook moved the primary ${old.name} -> ${chosen.candidate.name} in ${(durationMs / 1000).toFixed(1)} s; the longest time with no write acknowledged from its start: ${(writer.longestGapAfter(startedAt) / 1000).toFixed(1)} s`,
      );
      expect(writer.longestGapAfter(startedAt)).toBeLessThan(120_000);
    } finally {
      await writer.stop();
      // And once the space is freed
      await rig().execOk(old.name, ['rm', '-f', FILLER]);
    }
    // Then nothing acknowledged is lost, and the old primary streams as a replica
    expect(await lostWrites(rig(), 'full_disk', writer.acknowledged)).toEqual([]);
    const after = await waitForHealthyReplication(rig(), 240_000);
    expect(after.find((m) => m.name === old.name)?.role).not.toBe('leader');
    expect(after.filter((m) => m.role === 'leader')).toHaveLength(1);
    console.log(
      `full disk: ${writer.acknowledged.length} writes acknowledged, none lost; ${old.name} streams again`,
    );
  }, 900_000);
}
