import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type { IConstruct } from 'constructs';
import { checkRange } from './errors';

/** The thresholds a user may set (README "Alarms"). */
export interface ClusterAlarmThresholds {
  /** A replica replaying more bytes behind the leader than this. */
  readonly replicaMaxLagBytes: number;
  /** @default 60 */
  readonly replayDelaySeconds?: number;
  /** @default 120 */
  readonly longTransactionSeconds?: number;
  /** @default 1,000,000,000 */
  readonly xidAge?: number;
  /** @default 80 */
  readonly connectionsPercent?: number;
  /** @default 15 */
  readonly dataVolumeFreePercent?: number;
  /** @default 24 */
  readonly pendingRestartHours?: number;
  /** WAL a replication slot may hold (half of max_slot_wal_keep_size, past which it is dropped). */
  readonly slotRetainedWalBytes: number;
}

/** A DCS not read for longer than this: Patroni's HA loop is stuck or etcd unreachable. */
export const DCS_NOT_SEEN_SECONDS = 30;
/** etcd's database against its quota (past it, etcd takes no writes: Patroni loses its leader key). */
export const ETCD_DB_PERCENT = 80;

/** The thresholds with their defaults, each checked against its range (errors name the prop). */
export function clusterThresholds(scope: IConstruct, t: ClusterAlarmThresholds) {
  const resolved = {
    replicaMaxLagBytes: t.replicaMaxLagBytes,
    slotRetainedWalBytes: t.slotRetainedWalBytes,
    replayDelay: t.replayDelaySeconds ?? 60,
    longTransaction: t.longTransactionSeconds ?? 120,
    xidAge: t.xidAge ?? 1_000_000_000,
    connections: t.connectionsPercent ?? 80,
    volumeFree: t.dataVolumeFreePercent ?? 15,
    pendingRestartHours: t.pendingRestartHours ?? 24,
  };
  checkRange(scope, 'thresholds.replayDelaySeconds', resolved.replayDelay, 10, 86400);
  checkRange(scope, 'thresholds.longTransactionSeconds', resolved.longTransaction, 30, 86400);
  checkRange(scope, 'thresholds.xidAge', resolved.xidAge, 100_000_000, 2_000_000_000);
  checkRange(scope, 'thresholds.connectionsPercent', resolved.connections, 10, 100);
  checkRange(scope, 'thresholds.dataVolumeFreePercent', resolved.volumeFree, 1, 50);
  checkRange(scope, 'thresholds.pendingRestartHours', resolved.pendingRestartHours, 1, 168);
  checkRange(scope, 'thresholds.slotRetainedWalBytes', resolved.slotRetainedWalBytes, 1, 2 ** 50);
  checkRange(scope, 'thresholds.replicaMaxLagBytes', resolved.replicaMaxLagBytes, 0, 2 ** 40);
  return resolved;
}

export interface AlarmOptions {
  readonly metric: cloudwatch.IMetric;
  readonly threshold: number;
  readonly description: string;
  /** @default GREATER_THAN_THRESHOLD */
  readonly comparison?: cloudwatch.ComparisonOperator;
  /** @default 1 */
  readonly periods?: number;
  /** @default every period */
  readonly datapoints?: number;
  /** @default NOT_BREACHING: another alarm (a heartbeat) reports silence */
  readonly missing?: cloudwatch.TreatMissingData;
}

/** backend-1 -> Backend1: a readable construct id per node. */
export const pascal = (name: string) =>
  name.replace(/(^|-)([a-z0-9])/g, (_, __, c: string) => c.toUpperCase());
