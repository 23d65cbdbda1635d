/**
 * Faults and the alarms they raise, on the cluster suite's rig (called from
 * backup.ts after the backup tests; cluster.test.ts owns the rig): the
 * template's alarms evaluated over what the nodes' collectors, the
 * cluster-metrics function and the rig's stand-ins for EC2, the NLB and Step
 * Functions publish, one CloudWatch minute lasting PERIOD_SECONDS here. Each
 * fault must raise its alarms, and once it is undone every alarm the rig
 * feeds must be OK again. Faults that touch different nodes run in the same
 * round.
 */
import { alarmFaults, runFaultRound } from '../../rig/alarm-faults';
import { AlarmWatch } from '../../rig/alarm-watch';
import type { RigCluster } from '../../rig/cluster';
import { waitForHealthyReplication } from '../../rig/patroni';
import { endpointQueryOn, eventually, lostWrites, startEndpointWriter } from '../helpers/rig';

/** One 60 s CloudWatch period on the rig. */
const PERIOD_SECONDS = 8;
/** The longest one alarm may take to fire or clear here. */
const TIMEOUT_MS = 150_000;

/** The rig's thresholds in real seconds, short enough for a test. */
export const ALARM_TEST_SETTINGS = {
  longTransactionAlarmSeconds: '30',
  replicaReplayDelayAlarmSeconds: '10',
};

export function alarmTests(rig: () => RigCluster): void {
  describe(`alarms (one CloudWatch minute lasts ${PERIOD_SECONDS} s here)`, () => {
    let watch: AlarmWatch;
    const report: string[] = [];
    const rounds = alarmFaults(rig, () => watch.alarm('Monitoring/DataVolumeAlarm').threshold);
    const [independent, patroniStopped, primaryKilled] = rounds.map((round) =>
      round.map((fault) => fault.name).join('; '),
    );

    beforeAll(async () => {
      await waitForHealthyReplication(rig());
      watch = await AlarmWatch.start(rig(), PERIOD_SECONDS);
    }, 120_000);

    afterAll(async () => {
      await watch?.stop();
      console.log(`time to alarm (periods of ${PERIOD_SECONDS} s):\n  ${report.join('\n  ')}`);
    }, 120_000);

    /** Runs round `index`; every fault's alarms fired, and every alarm is OK after. */
    const runRound = async (index: number) => {
      const { timings, okSeconds } = await runFaultRound(watch, rounds[index], TIMEOUT_MS);
      for (const t of timings)
        report.push(`${t.fault}: ${t.alarm} after ${t.seconds.toFixed(1)} s`);
      report.push(`round ${index + 1} undone: every alarm OK after ${okSeconds.toFixed(1)} s`);
      expect(timings.length).toBe(rounds[index].flatMap((fault) => fault.alarms).length);
      return timings;
    };

    test('Given a healthy cluster, then every alarm the rig feeds is OK', async () => {
      expect(watch.watched.length).toBeGreaterThan(40);
      await watch.allOk(TIMEOUT_MS);
    }, 200_000);

    test(`Given at once ${independent}, then each raises its alarms; undone, every alarm is OK again`, async () => {
      await runRound(0);
    }, 600_000);

    test(`Given ${patroniStopped}, then the member alarm fires; started, every alarm is OK again`, async () => {
      await runRound(1);
    }, 600_000);

    test(`Given ${primaryKilled} under a writer, then writes come back on a new leader with no acknowledged write lost, the member, node and status-check alarms fire, and once it boots again (its data volume from its fstab) every alarm is OK`, async () => {
      await endpointQueryOn(rig(), 5432, 'CREATE TABLE IF NOT EXISTS acked (id int PRIMARY KEY)');
      const killed = (await waitForHealthyReplication(rig())).find((m) => m.role === 'leader')!;
      const writer = startEndpointWriter(rig(), 'acked');
      try {
        await eventually('some writes', 20_000, async () =>
          expect(writer.acknowledged.length).toBeGreaterThan(10),
        );
        const [{ causedAt: killedAt }] = await runRound(2);
        const resumed = writer.resumedAfter(killedAt);
        expect(resumed).toBeGreaterThan(0);
        await writer.stop();
        expect(await lostWrites(rig(), 'acked', writer.acknowledged)).toEqual([]);
        report.push(
          `crash failover: writes back after ${((resumed - killedAt) / 1000).toFixed(1)} s; ${writer.acknowledged.length} acknowledged, none lost`,
        );
      } finally {
        await writer.stop();
      }
      expect(
        await rig().execOk(killed.name, ['findmnt', '-n', '-o', 'SOURCE', '/var/lib/postgresql']),
      ).toContain('/dev/nvme1n1');
    }, 600_000);
  });
}
