import type { PemHaConfig } from './load-config';

/** The settings a deployed cluster cannot take a new value of, as the stack records them. */
export interface DeployedSettings {
  readonly clusterName: string;
  readonly postgresMajorVersion: number;
  readonly etcdNodeCount: number;
  readonly amiFamily: string;
  /** The VPC: the new VPC's CIDR, or the imported VPC's id. */
  readonly network: string;
  readonly backendNodeCount: number;
  readonly dataVolumeSizeGiB: number;
}

export function deployedSettingsOf(config: PemHaConfig): DeployedSettings {
  return {
    clusterName: config.clusterName,
    postgresMajorVersion: config.backend.postgresMajorVersion,
    etcdNodeCount: config.etcd.nodeCount,
    amiFamily: config.amiFamily,
    network: config.network.kind === 'new' ? config.network.cidr : config.network.vpcId,
    backendNodeCount: config.backend.nodeCount,
    dataVolumeSizeGiB: config.backend.dataVolumeSizeGiB,
  };
}

type Rule = {
  readonly setting: string;
  /** Whether going from `deployed` to `wanted` is refused. */
  readonly refuses: (deployed: never, wanted: never) => boolean;
  readonly reason: string;
};

const changed = (deployed: unknown, wanted: unknown) => deployed !== wanted;
const lower = (deployed: number, wanted: number) => wanted < deployed;

const RULES: Record<keyof DeployedSettings, Rule> = {
  clusterName: {
    setting: 'clusterName',
    refuses: changed,
    reason:
      'it names the Patroni scope, the data directory and every secret, so a new name would start an empty cluster beside the old data',
  },
  postgresMajorVersion: {
    setting: 'postgresMajorVersion',
    refuses: changed,
    reason:
      'a deploy does not run pg_upgrade: the nodes would look for a data directory of the new major that does not exist',
  },
  etcdNodeCount: {
    setting: 'etcdNodeCount',
    refuses: changed,
    reason:
      'a deploy does not add or remove etcd members (member add/remove): the new count would not match the running cluster',
  },
  amiFamily: {
    setting: 'amiFamily',
    refuses: changed,
    reason:
      'a new operating system replaces every node at once; move nodes one at a time with the os upgrade or node replacement',
  },
  network: {
    setting: 'vpcCidr / vpcId',
    refuses: changed,
    reason: 'a new VPC replaces every node, their addresses and the endpoints at once',
  },
  backendNodeCount: {
    setting: 'backendNodeCount',
    refuses: lower,
    reason:
      'removing a backend deletes its instance and data volume; a deploy only adds backends (take a member out by hand: README, Day two)',
  },
  dataVolumeSizeGiB: {
    setting: 'dataVolumeSizeGiB',
    refuses: lower,
    reason: 'an EBS volume can grow online but never shrink',
  },
};

/**
 * The problems with deploying `wanted` over a cluster deployed with
 * `deployed`: each names the setting, both values and why it is refused.
 */
export function deployedSettingsProblems(
  deployed: Partial<DeployedSettings>,
  wanted: DeployedSettings,
): string[] {
  return (Object.keys(RULES) as (keyof DeployedSettings)[]).flatMap((key) => {
    const rule = RULES[key];
    const before = deployed[key];
    if (before === undefined || !rule.refuses(before as never, wanted[key] as never)) return [];
    return [
      `${rule.setting}: cannot change from ${JSON.stringify(before)} (deployed) to ${JSON.stringify(wanted[key])} on a running cluster: ${rule.reason}`,
    ];
  });
}
