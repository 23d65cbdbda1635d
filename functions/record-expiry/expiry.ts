import type { SSMClient } from '@aws-sdk/client-ssm';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { StoredTrust } from '../lib/ca-store';
import { notAfterOf } from '../lib/pki';
import { CERTIFICATE_METRICS } from '../lib/metric-names';
import { type CommandRef, successfulOutput } from '../lib/ssm-run';

const DAY_MS = 24 * 60 * 60 * 1000;

export interface ExpiryReading {
  /** A node name, or `ca` for the cluster's CA certificates. */
  readonly node: string;
  /** The TLS identity (`etcd-peer`, `postgres-server`, ...), `root` or `intermediate`. */
  readonly certificate: string;
  readonly notAfter: string;
  readonly daysToExpiry: number;
}

const reading = (node: string, certificate: string, notAfter: Date, now: Date): ExpiryReading => ({
  node,
  certificate,
  notAfter: notAfter.toISOString(),
  daysToExpiry: Math.round(((notAfter.getTime() - now.getTime()) / DAY_MS) * 100) / 100,
});

/** The `not-after=<identity>=<epoch seconds>` lines the certificates document ends with. */
export function parseNotAfterLines(stdout: string): Map<string, Date> {
  const found = new Map<string, Date>();
  for (const [, identity, seconds] of stdout.matchAll(/^not-after=([a-z-]+)=(\d+)$/gm)) {
    found.set(identity, new Date(Number(seconds) * 1000));
  }
  return found;
}

/** The node's certificates as its last certificates command reported them. */
export async function nodeExpiry(
  ssm: SSMClient,
  command: CommandRef,
  now = new Date(),
): Promise<ExpiryReading[]> {
  const stdout = await successfulOutput(ssm, command, 'certificates');
  const found = parseNotAfterLines(stdout);
  if (found.size === 0) {
    throw new Error(`${command.nodeName}: the certificates command reported no expiry dates`);
  }
  return [...found].map(([identity, notAfter]) =>
    reading(command.nodeName, identity, notAfter, now),
  );
}

/** The roots' and the issuing CA's expiry, from the public trust secret. */
export function caExpiry(trust: StoredTrust, now = new Date()): ExpiryReading[] {
  // During a root rollover two roots are trusted; the one that lasts longer is the new one.
  const root = Math.max(...trust.roots.map((pem) => notAfterOf(pem).getTime()));
  return [
    reading('ca', 'root', new Date(root), now),
    reading('ca', 'intermediate', notAfterOf(trust.intermediateCertificatePem), now),
  ];
}

/**
 * One DaysToExpiry datapoint per node and certificate, and one per cluster
 * (the minimum of these readings) that the expiry alarm watches.
 */
export function publishExpiry(
  metrics: Metrics,
  clusterName: string,
  readings: readonly ExpiryReading[],
): void {
  for (const r of readings) {
    metrics
      .singleMetric()
      .addDimensions({ ClusterName: clusterName, Node: r.node, Certificate: r.certificate })
      .addMetric(CERTIFICATE_METRICS.daysToExpiry, MetricUnit.Count, r.daysToExpiry);
  }
  if (readings.length === 0) return;
  metrics
    .singleMetric()
    .addDimensions({ ClusterName: clusterName })
    .addMetric(
      CERTIFICATE_METRICS.daysToExpiry,
      MetricUnit.Count,
      Math.min(...readings.map((r) => r.daysToExpiry)),
    );
}
