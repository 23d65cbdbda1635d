import { GetCommandInvocationCommand, SSMClient } from '@aws-sdk/client-ssm';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { mockClient } from 'aws-sdk-client-mock';
import {
  caExpiry,
  nodeExpiry,
  parseNotAfterLines,
  publishExpiry,
} from '../../functions/record-expiry/expiry';
import { createIntermediateCa, createRootCa } from '../../functions/lib/pki';

const ssm = mockClient(SSMClient);
const client = new SSMClient({ region: 'eu-west-1' });
const NOW = new Date('2026-12-01T00:00:00Z');
const epoch = (iso: string) => Math.floor(new Date(iso).getTime() / 1000);
const COMMAND = { commandId: 'cmd-1', instanceId: 'i-0123456789abcdef0', nodeName: 'backend-2' };

beforeEach(() => ssm.reset());

describe('node certificate expiry', () => {
  test('Given the lines a certificates command ends with, then each identity gets its days left', async () => {
    ssm.on(GetCommandInvocationCommand).resolves({
      Status: 'Success',
      StandardOutputContent: [
        '[pem-ha 10:00:00] installed 2 certificate(s)',
        `not-after=postgres-server=${epoch('2027-03-01T00:00:00Z')}`,
        `not-after=etcd-client=${epoch('2026-12-11T12:00:00Z')}`,
      ].join('\n'),
    });

    const readings = await nodeExpiry(client, COMMAND, NOW);

    expect(readings).toEqual([
      {
        node: 'backend-2',
        certificate: 'postgres-server',
        notAfter: '2027-03-01T00:00:00.000Z',
        daysToExpiry: 90,
      },
      {
        node: 'backend-2',
        certificate: 'etcd-client',
        notAfter: '2026-12-11T12:00:00.000Z',
        daysToExpiry: 10.5,
      },
    ]);
  });

  test('Given output with no expiry lines, then it fails rather than report nothing', async () => {
    ssm
      .on(GetCommandInvocationCommand)
      .resolves({ Status: 'Success', StandardOutputContent: 'hello' });
    await expect(nodeExpiry(client, COMMAND, NOW)).rejects.toThrow(
      'backend-2: the certificates command reported no expiry dates',
    );
  });

  test('Given a line that is not an expiry line, then it is ignored', () => {
    expect(parseNotAfterLines('not-after=etcd-peer=12x\nnot-after=etcd-peer=60\n')).toEqual(
      new Map([['etcd-peer', new Date(60_000)]]),
    );
  });
});

describe('CA expiry', () => {
  test('Given a root and an intermediate, then both are read from the certificates', async () => {
    const root = await createRootCa({ commonName: 'r', validityDays: 3650, now: NOW });
    const intermediate = await createIntermediateCa(root, {
      commonName: 'i',
      validityDays: 1825,
      now: NOW,
    });
    const readings = caExpiry(
      { roots: [root.certificatePem], intermediateCertificatePem: intermediate.certificatePem },
      NOW,
    );
    expect(readings.map((r) => [r.node, r.certificate, r.daysToExpiry])).toEqual([
      ['ca', 'root', 3650],
      ['ca', 'intermediate', 1825],
    ]);
  });
});

describe('publishExpiry', () => {
  test('Given readings, then EMF carries one datapoint per certificate and the cluster minimum', () => {
    const lines: string[] = [];
    // Powertools prints EMF on stdout through its own Console.
    const write = process.stdout.write;
    process.stdout.write = ((chunk: unknown) => {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      return true;
    }) as typeof process.stdout.write;
    try {
      const metrics = new Metrics({ namespace: 'PemHa/Certificates', serviceName: 'pem-ha' });
      publishExpiry(metrics, 'pem-ha', [
        { node: 'etcd-1', certificate: 'etcd-peer', notAfter: '', daysToExpiry: 40 },
        { node: 'etcd-1', certificate: 'etcd-server', notAfter: '', daysToExpiry: 12.5 },
      ]);
    } finally {
      process.stdout.write = write;
    }
    const records = lines.map((line) => JSON.parse(line));
    expect(records.map((r) => [r.Node ?? '-', r.Certificate ?? '-', r.DaysToExpiry])).toEqual([
      ['etcd-1', 'etcd-peer', 40],
      ['etcd-1', 'etcd-server', 12.5],
      ['-', '-', 12.5],
    ]);
    expect(records[2]._aws.CloudWatchMetrics[0]).toMatchObject({
      Namespace: 'PemHa/Certificates',
      Dimensions: [['service', 'ClusterName']],
    });
  });
});
