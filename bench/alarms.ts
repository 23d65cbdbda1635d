/**
 * Time to alarm: for each fault issue 17 names, the seconds from the fault to
 * its alarm's ALARM state, with CloudWatch's real 60 s periods and the
 * default thresholds (the template's alarms evaluated over what the rig's
 * collectors, cluster-metrics function and AWS stand-ins publish). Goals: at
 * most 2 minutes for a lost primary or member, at most 5 for the rest.
 *
 *   npm run bench:alarms -- [--runs 3] [--period 60]
 */
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { alarmFaults, runFaultRound } from '../rig/alarm-faults';
import { AlarmWatch } from '../rig/alarm-watch';
import { RigCluster } from '../rig/cluster';
import { waitForHealthyReplication } from '../rig/patroni';
import { printTable, runsOption } from './probes';
import { endpointQueryOn, startEndpointWriter } from '../test/helpers/rig';

const RIG = 'balm';
const HOUR = 3_600_000;

async function benchmark(runs: number, periodSeconds: number) {
  const log = (m: string) => console.log(`[${new Date().toISOString()}] ${m}`);
  await RigCluster.downByName(RIG);
  const rig = await RigCluster.up({
    name: RIG,
    vpcCidr: '10.55.0.0/16',
    fastPatroni: true,
    pem: false,
  });
  const results = new Map<string, number[]>();
  let watch: AlarmWatch | undefined;
  try {
    await waitForHealthyReplication(rig);
    watch = await AlarmWatch.start(rig, periodSeconds);
    const faults = alarmFaults(
      () => rig,
      () => watch!.alarm('Monitoring/DataVolumeAlarm').threshold,
    );
    await endpointQueryOn(
      rig,
      5432,
      'CREATE TABLE IF NOT EXISTS bench_alarm_writes (id int PRIMARY KEY)',
    );
    log('waiting for every alarm to be OK');
    await watch.allOk(HOUR);
    for (let run = 1; run <= runs; run++) {
      // The test's rounds: the faults of a round touch different nodes and
      // alarms, so each one's time is its own; a round at a time keeps three
      // runs with real periods to about an hour.
      for (const round of faults) {
        log(`run ${run}: ${round.map((fault) => fault.name).join(', ')}`);
        // Clients write, as PEM's agents do all the time: a former primary
        // rewound while the new one writes nothing would wait for its first
        // WAL record to become consistent (BENCHMARKS.md).
        await endpointQueryOn(rig, 5432, 'TRUNCATE bench_alarm_writes');
        const writer = startEndpointWriter(rig, 'bench_alarm_writes', 1_000_000);
        const { timings, okSeconds } = await runFaultRound(watch, round, HOUR).finally(() =>
          writer.stop(),
        );
        for (const { fault, alarm, seconds } of timings) {
          log(`  ${fault}: ${alarm} ALARM after ${seconds.toFixed(1)} s`);
          // One row per alarm kind: the node a fault lands on varies from run to run.
          const key = `${fault}: ${alarm.replace(/(Backend|Node)\d+/, '$1<N>')}`;
          results.set(key, [...(results.get(key) ?? []), seconds]);
        }
        log(`  every alarm OK ${okSeconds.toFixed(1)} s after the round was undone`);
      }
    }
    return results;
  } finally {
    await watch?.stop();
    await rig.down();
  }
}

async function main() {
  const { values } = parseArgs({
    options: { runs: { type: 'string', default: '3' }, period: { type: 'string', default: '60' } },
  });
  const runs = runsOption(values.runs);
  const period = Number(values.period);
  if (!Number.isInteger(period) || period < 5 || period > 60)
    throw new Error(`--period must be an integer from 5 to 60 seconds; got ${values.period}`);
  console.log(`${cpus().length} cores; ${runs} run(s); one CloudWatch minute lasts ${period} s`);
  printTable(
    await benchmark(runs, period),
    '\nSeconds from the fault to the alarm in ALARM (default thresholds)',
  );
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
