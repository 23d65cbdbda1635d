import { SSM_AGENT_UNIT } from './ssm-agent';

/** Runs a command in a node and fails with its stderr (RigCluster.execOk). */
interface NodeExec {
  execOk(node: string, argv: string[]): Promise<string>;
}

/** What udev and fstab do at boot: the file systems the node's own /etc/fstab names. */
const MOUNT_FSTAB = [
  // udev would have probed the block devices: blkid fills the cache UUID= lines need.
  'blkid >/dev/null 2>&1 || true',
  'findmnt --fstab -n -o TARGET -t ext4 | while read -r target; do',
  // nofail, as the fstab line says: a missing volume does not stop the boot.
  '  [ "$target" = / ] || mountpoint -q "$target" || mount "$target" || echo "boot: cannot mount $target" >&2',
  'done',
  'true',
].join('\n');

/** What systemd starts at boot: the SSM agent, and pem-ha's services where bootstrap enabled them. */
const START_SERVICES = [
  `systemctl start --no-block ${SSM_AGENT_UNIT}`,
  // A unit that cannot start (its data volume missing) does not stop the others.
  'for unit in etcd patroni pem-ha-metrics; do',
  '  [ ! -f /etc/pem-ha/$unit.managed ] || systemctl start --no-block $unit || true',
  'done',
  // Where PEM (its double) was configured: its agent, and Apache with PEM's site.
  '[ ! -f /usr/edb/pem/agent/etc/agent.cfg ] || systemctl start --no-block pemagent',
  '[ ! -f /etc/apache2/sites-enabled/edb-ssl-pem.conf ] || systemctl start --no-block apache2',
].join('\n');

/**
 * Brings a restarted node's layer up as an instance boots: the data volume
 * its fstab names, then the agent and pem-ha's services.
 */
export async function bootNode(rig: NodeExec, node: string): Promise<void> {
  await rig.execOk(node, ['sh', '-c', MOUNT_FSTAB]);
  await rig.execOk(node, ['sh', '-c', START_SERVICES]);
}
