/**
 * Nodes that come back, on the cluster suite's rig (called from
 * cluster.test.ts, which owns the rig): an instance replaced as EC2 replaces
 * one (a fresh root at the same address, the data volume kept or new), then
 * the deploy's bootstrap runbook brings the node back.
 */
import type { RigCluster } from '../../rig/cluster';
import { waitForHealthyReplication } from '../../rig/patroni';
import {
  certificateOn,
  endpointQueryOn,
  etcdMembers,
  lostWrites,
  nodeQueryOn,
  startEndpointWriter,
} from '../helpers/rig';

export function replacementTests(rig: () => RigCluster): void {
  const serial = (node: string, identity: string) => certificateOn(rig(), node, identity, 'serial');
  const subject = (node: string, identity: string) =>
    certificateOn(rig(), node, identity, 'subject');
  test("an etcd member's instance and both replicas' replaced (one keeps its data volume, one gets a blank one): the bootstrap brings all back under their names and addresses with new certificates and the same agent numbers; the member list is three again, one replica streams from its own data, the other re-clones, and no write is lost", async () => {
    const members = await waitForHealthyReplication(rig());
    const [kept, blank] = members.filter((m) => m.role !== 'leader').map((m) => m.name);
    const before = {
      etcd: await serial('etcd-3', 'etcd-peer'),
      kept: await serial(kept, 'patroni-rest'),
      blank: await serial(blank, 'patroni-rest'),
      agents: [await subject(kept, 'pem-agent'), await subject(blank, 'pem-agent')],
    };
    await endpointQueryOn(rig(), 5432, 'CREATE TABLE IF NOT EXISTS replaced (id int PRIMARY KEY)');
    const writer = startEndpointWriter(rig(), 'replaced');
    const started = Date.now();
    try {
      await rig().replaceInstance('etcd-3');
      await rig().replaceInstance(kept);
      await rig().replaceInstance(blank, { newDataVolume: true });
      await rig().bootstrap();
    } finally {
      await writer.stop();
    }
    const seconds = ((Date.now() - started) / 1000).toFixed(0);
    expect(await etcdMembers(rig())).toEqual([
      'started etcd-1',
      'started etcd-2',
      'started etcd-3',
    ]);
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
      `replaced etcd-3, ${kept} (volume kept) and ${blank} (blank volume): all back in ${seconds} s with the bootstrap; ${writer.acknowledged.length} writes acknowledged, none lost`,
    );
  }, 900_000);
}
