/**
 * Nodes that come back, on the cluster suite's rig (called from
 * cluster.test.ts, which owns the rig): the node replacement runbook (EC2's
 * root volume swap through the rig's EC2, then the bootstrap), its refusals,
 * and instances lost by themselves (a fresh root at the same address, the
 * data volume kept or new) that the same bootstrap brings back.
 */
import type { RigCluster } from '../../rig/cluster';
import { waitForHealthyReplication } from '../../rig/patroni';
import {
  certificateOn,
  endpointQueryOn,
  etcdMembers,
  lostWrites,
  nodeQueryOn,
  recordingRun,
  startEndpointWriter,
} from '../helpers/rig';

type RunbookError = Error & { cause?: Error };
const failureOf = (run: Promise<unknown>) =>
  run.then(
    () => undefined,
    (error: RunbookError) => error.cause ?? error,
  );

export function replacementTests(rig: () => RigCluster): void {
  const serial = (node: string, identity: string) => certificateOn(rig(), node, identity, 'serial');
  const subject = (node: string, identity: string) =>
    certificateOn(rig(), node, identity, 'subject');
  const pidOf = (node: string, unit: string) =>
    rig().execOk(node, ['systemctl', 'show', '-p', 'MainPID', '--value', unit]);

  test('the replacement runbook refuses the primary, an unknown node, and an etcd member while another member is down, each with a named reason and nothing replaced', async () => {
    const members = await waitForHealthyReplication(rig());
    const leader = members.find((m) => m.role === 'leader')!.name;
    const before = { leader: await pidOf(leader, 'patroni'), etcd: await pidOf('etcd-3', 'etcd') };
    const sent: string[] = [];

    const primary = await failureOf(rig().replace(leader, recordingRun(sent)));
    expect(primary?.name).toBe('ReplacementRefusedError');
    expect(primary?.message).toContain(`${leader} is the primary`);
    expect(primary?.message).toContain('switch over first');

    const unknown = await failureOf(rig().replace('backend-7', recordingRun(sent)));
    expect(unknown?.name).toBe('InvalidInputError');
    expect(unknown?.message).toMatch(/^node must be one of etcd-1, etcd-2, etcd-3, backend-1/);
    expect(sent).toEqual([]);

    await rig().execOk('etcd-2', ['systemctl', 'stop', 'etcd']);
    try {
      const quorum = await failureOf(rig().replace('etcd-3', recordingRun(sent)));
      expect(quorum?.name).toBe('CommandFailedError');
      expect(quorum?.message).toContain(
        'only 1 of the 2 etcd members other than etcd-3 answer healthy: replacing etcd-3 now could lose quorum',
      );
      // Only the check ran, on a member other than the one to replace.
      expect(sent).toEqual(['Other etcd members healthy?: send']);
    } finally {
      await rig().execOk('etcd-2', ['systemctl', 'start', 'etcd']);
    }
    expect(await pidOf(leader, 'patroni')).toBe(before.leader);
    expect(await pidOf('etcd-3', 'etcd')).toBe(before.etcd);
  }, 300_000);

  test("the replacement runbook on etcd-3 while both replicas' instances are lost (one keeps its data volume, one gets a blank one): all come back under their names and addresses with new certificates and the same agent numbers; three etcd members, one replica streams from its own data, the other re-clones, and no write is lost", async () => {
    const members = await waitForHealthyReplication(rig());
    const [kept, blank] = members.filter((m) => m.role !== 'leader').map((m) => m.name);
    const before = {
      etcd: await serial('etcd-3', 'etcd-peer'),
      etcdPid: await pidOf('etcd-3', 'etcd'),
      kept: await serial(kept, 'patroni-rest'),
      blank: await serial(blank, 'patroni-rest'),
      agents: [await subject(kept, 'pem-agent'), await subject(blank, 'pem-agent')],
    };
    await endpointQueryOn(rig(), 5432, 'CREATE TABLE IF NOT EXISTS replaced (id int PRIMARY KEY)');
    const writer = startEndpointWriter(rig(), 'replaced');
    const started = Date.now();
    try {
      await rig().replaceInstance(kept);
      await rig().replaceInstance(blank, { newDataVolume: true });
      await rig().replace('etcd-3');
    } finally {
      await writer.stop();
    }
    const seconds = ((Date.now() - started) / 1000).toFixed(0);
    expect(await etcdMembers(rig())).toEqual([
      'started etcd-1',
      'started etcd-2',
      'started etcd-3',
    ]);
    expect(await pidOf('etcd-3', 'etcd')).not.toBe(before.etcdPid);
    const after = await waitForHealthyReplication(rig());
    expect(after.map((m) => m.name).sort()).toEqual(members.map((m) => m.name).sort());
    expect(await serial('etcd-3', 'etcd-peer')).not.toBe(before.etcd);
    expect(await serial(kept, 'patroni-rest')).not.toBe(before.kept);
    expect(await serial(blank, 'patroni-rest')).not.toBe(before.blank);
    expect([await subject(kept, 'pem-agent'), await subject(blank, 'pem-agent')]).toEqual(
      before.agents,
    );
    // The kept volume's data directory is used as it is; the blank one is cloned.
    const patroniLog = (node: string) =>
      rig().execOk(node, ['cat', '/var/log/rig-units/patroni.service.log']);
    expect(await patroniLog(kept)).not.toMatch(/replica has been created/);
    expect(await patroniLog(blank)).toMatch(/replica has been created/);
    expect(await nodeQueryOn(rig(), blank, 'SELECT count(*) > 0 FROM rows_kept')).toBe('t');
    expect(await lostWrites(rig(), 'replaced', writer.acknowledged)).toEqual([]);
    console.log(
      `replaced etcd-3 with the runbook while ${kept} (volume kept) and ${blank} (blank volume) were lost: all back in ${seconds} s; ${writer.acknowledged.length} writes acknowledged, none lost`,
    );
  }, 900_000);
}
