import type { NodeDocumentKind, NodeDocumentsProps } from './node-documents';
import { CLUSTER_METRICS } from '../../functions/lib/metric-names';
import { COMPONENTS } from '../../functions/upgrade/request';
import { DocumentParameter, PATTERNS as P } from './document-parameters';

/** One document: its scripts, parameters (cluster settings as defaults) and step timeout. */
export interface DocumentSpec {
  readonly description: string;
  /** Files of infra/node/, concatenated after the shared lib.sh. */
  readonly scripts: readonly string[];
  readonly parameters: readonly DocumentParameter[];
  readonly timeoutSeconds: number;
}

/**
 * How WAL may use a backend's data volume, in MiB: `max_wal_size` (a tenth,
 * 1 to 16 GiB), `max_slot_wal_keep_size` (a fifth: a stuck replica's slot
 * cannot fill the primary's disk) and the space reserve an operator frees in
 * an emergency (a fiftieth, 256 MiB to 4 GiB). pgBackRest's archive queue
 * takes at most half of it.
 */
export function walBudget(dataVolumeSizeGiB: number) {
  const mib = dataVolumeSizeGiB * 1024;
  const within = (value: number, low: number, high: number) =>
    Math.min(high, Math.max(low, Math.floor(value)));
  return {
    maxWalSizeMib: within(mib / 10, 1024, 16384),
    maxSlotWalKeepMib: Math.floor(mib / 5),
    spaceReserveMib: within(mib / 50, 256, 4096),
  };
}

/** What each node document runs and takes, from the cluster's settings. */
export function documentSpecs(
  props: NodeDocumentsProps,
): Record<NodeDocumentKind, DocumentSpec | undefined> {
  const member: DocumentParameter[] = [
    {
      name: 'MemberName',
      description: 'Cluster member name, e.g. backend-1',
      allowedPattern: P.name,
    },
    {
      name: 'MemberAddress',
      description: 'Private IPv4 address of the member',
      allowedPattern: P.ipv4,
    },
  ];
  const cluster = (name: string, value: string, description: string, pattern: string) => ({
    name,
    description,
    default: value,
    allowedPattern: pattern,
  });
  const clusterName = cluster(
    'ClusterName',
    props.clusterName,
    'Patroni scope / etcd token',
    P.name,
  );
  const major = cluster(
    'PostgresMajor',
    String(props.postgresMajorVersion),
    'PostgreSQL major',
    P.integer,
  );
  const secretPrefix = cluster(
    'SecretPrefix',
    props.secretPrefix,
    'Prefix of the secret names',
    P.secretName,
  );
  const backends = cluster(
    'BackendAddresses',
    props.backends.map((m) => m.address).join(','),
    'Every backend',
    P.ipv4List,
  );
  const backendNames = cluster(
    'BackendNames',
    props.backends.map((m) => m.name).join(','),
    "Every backend's name (the subject of its certificates)",
    P.nameList,
  );
  const trusted = cluster(
    'TrustedCidrs',
    props.trustedCidrs.join(','),
    'Private subnets',
    P.cidrList,
  );
  const agentId = {
    name: 'AgentId',
    description: 'PEM agent number of this host',
    allowedPattern: P.integer,
  };
  const timeout = (seconds: number) =>
    cluster('StartTimeoutSeconds', String(seconds), 'Seconds to wait for the service', P.integer);
  const bool = (name: string, value: boolean, description: string) => ({
    name,
    description,
    default: String(value),
    allowedValues: ['true', 'false'],
  });
  const pem = props.edbRepoTokenSecretName;
  const edbToken =
    pem && cluster('EdbRepoTokenSecret', pem, 'EDB repository token secret', P.secretName);
  const { patroni, backupRepository: repository } = props;
  const wal = walBudget(props.dataVolumeSizeGiB);
  const repositoryParameters = [
    cluster('RepositoryBucket', repository.bucketName, 'Backup repository bucket', P.bucketName),
    cluster('RepositoryRegion', repository.region, "The bucket's region", P.region),
    cluster('RepositoryEndpoint', repository.endpoint, 'S3 endpoint name', P.hostName),
    cluster('RepositoryKmsKey', repository.kmsKeyArn, 'KMS key of the objects', P.kmsKeyArn),
    cluster('RepositoryPath', repository.path, "The cluster's prefix", P.repositoryPath),
    cluster(
      'RetentionDays',
      String(repository.retentionDays),
      'Days of point-in-time recovery kept',
      P.integer,
    ),
    cluster(
      'ArchivePushQueueMaxGib',
      String(repository.archivePushQueueMaxGiB),
      'WAL queued for the repository before pgBackRest drops it (GiB)',
      P.integer,
    ),
  ];
  return {
    common: {
      description: 'pem-ha: operating-system preparation and the packages of a tier',
      scripts: ['common.sh'],
      timeoutSeconds: 1800,
      parameters: [
        { name: 'Tier', description: 'Node tier', allowedValues: ['etcd', 'backend', 'web'] },
        major,
        {
          name: 'PackageSource',
          description: 'pgdg or the OS packages',
          default: props.packageSource ?? 'pgdg',
          allowedValues: ['pgdg', 'os'],
        },
      ],
    },
    certificates: {
      description: 'pem-ha: node keys and CSRs (request), verified certificate install (install)',
      scripts: ['pem-wiring.sh', 'certificates.sh'],
      timeoutSeconds: 600,
      parameters: [
        {
          name: 'Action',
          description: 'request or install',
          allowedValues: ['request', 'install'],
        },
        ...member,
        {
          name: 'Identities',
          description: 'TLS identities of this node',
          allowedPattern: P.identities,
        },
        { ...agentId, default: '0' },
        cluster(
          'DatabaseEndpointName',
          props.databaseEndpointName ?? '',
          "The NLB's DNS name, which the backends' PostgreSQL certificates carry",
          P.optionalDnsName,
        ),
        cluster(
          'RenewBeforeDays',
          String(props.renewBeforeDays ?? 30),
          'Renewal threshold',
          P.integer,
        ),
        // Patroni handles SIGHUP between HA loop cycles, so allow two of them.
        cluster(
          'ServeWaitSeconds',
          String(2 * props.patroni.loopWait + 30),
          'How long a reloaded service may take to serve its new certificate',
          P.integer,
        ),
        {
          name: 'Bundle',
          description: 'base64 JSON of root and chains',
          default: '-',
          allowedPattern: P.base64OrDash,
        },
      ],
    },
    metrics: {
      description:
        "pem-ha: the node's metric collector (etcd health, or PostgreSQL's and the data volume's), sending to CloudWatch every minute",
      scripts: ['metrics.sh'],
      timeoutSeconds: 300,
      parameters: [
        { name: 'Tier', description: 'Node tier', allowedValues: ['etcd', 'backend'] },
        ...member,
        clusterName,
        cluster(
          'MetricsNamespace',
          CLUSTER_METRICS.namespace,
          'CloudWatch namespace of the readings',
          P.metricsNamespace,
        ),
      ],
    },
    etcd: {
      description:
        "pem-ha: etcd member with client and peer TLS; waits for a healthy cluster; the first member then sets up etcd's access control",
      scripts: ['etcd-access.sh', 'etcd.sh'],
      timeoutSeconds: 900,
      parameters: [
        ...member,
        secretPrefix,
        cluster(
          'InitialCluster',
          props.etcdMembers.map((m) => `${m.name}=https://${m.address}:2380`).join(','),
          'etcd initial-cluster',
          P.initialCluster,
        ),
        clusterName,
        timeout(600),
      ],
    },
    etcdQuorum: {
      description:
        'pem-ha: before an etcd member is replaced, checks on another member that every other member answers healthy',
      scripts: ['etcd-quorum.sh'],
      timeoutSeconds: 120,
      parameters: [
        {
          name: 'LeavingMember',
          description: 'The etcd member about to be replaced',
          allowedPattern: P.name,
        },
        cluster(
          'InitialCluster',
          props.etcdMembers.map((m) => `${m.name}=https://${m.address}:2380`).join(','),
          'etcd initial-cluster',
          P.initialCluster,
        ),
      ],
    },
    failover: {
      description:
        "pem-ha: a backend's part in the failover runbook (inspect: the data volume and PostgreSQL's WAL position; release-reserve: remove the space reserve)",
      scripts: ['failover.sh'],
      timeoutSeconds: 120,
      parameters: [
        {
          name: 'Action',
          description: 'What to do',
          allowedValues: ['inspect', 'release-reserve'],
        },
        cluster(
          'SpaceReserveMib',
          String(wal.spaceReserveMib),
          'Space reserve on the data volume (MiB)',
          P.integer,
        ),
      ],
    },
    patroni: {
      description:
        'pem-ha: data volume, patroni.yml and the Patroni service; waits until the member runs',
      scripts: ['pgbackrest.sh', 'patroni.sh'],
      timeoutSeconds: 3600,
      parameters: [
        ...member,
        {
          name: 'DataVolumeId',
          description: 'EBS data volume of the node',
          allowedPattern: P.volumeId,
        },
        bool('Bootstrap', false, 'This member may initialize a new cluster'),
        {
          name: 'RestoreTarget',
          description: "With Bootstrap: none (initdb), or the restore runbook's target",
          default: 'none',
          allowedPattern: P.restoreTarget,
        },
        {
          name: 'RestoreSet',
          description: 'The backup a restore starts from',
          default: 'latest',
          allowedPattern: P.backupSet,
        },
        clusterName,
        major,
        cluster(
          'EtcdHosts',
          props.etcdMembers.map((m) => `${m.address}:2379`).join(','),
          'etcd client endpoints',
          P.hostPortList,
        ),
        backends,
        backendNames,
        trusted,
        cluster(
          'ClientCidrs',
          (props.clientCidrs ?? []).join(','),
          'databaseClientCidrs',
          P.cidrList,
        ),
        bool('PemEnabled', pem !== undefined, 'Add the PEM pg_hba rules'),
        cluster(
          'WebAddresses',
          (props.webAddresses ?? []).join(','),
          'Every PEM web host (pemsuper logs in from these and the backends only)',
          P.optionalIpv4List,
        ),
        cluster('Ttl', String(patroni.ttl), 'Patroni ttl', P.integer),
        cluster('LoopWait', String(patroni.loopWait), 'Patroni loop_wait', P.integer),
        cluster('RetryTimeout', String(patroni.retryTimeout), 'Patroni retry_timeout', P.integer),
        cluster(
          'MaximumLagOnFailover',
          String(patroni.maximumLagOnFailoverBytes),
          'Patroni maximum_lag_on_failover',
          P.integer,
        ),
        bool('SynchronousMode', patroni.synchronousMode, 'Patroni synchronous_mode'),
        secretPrefix,
        timeout(3000),
        cluster(
          'ArchiveTimeoutSeconds',
          String(repository.archiveTimeoutSeconds),
          'PostgreSQL archive_timeout',
          P.integer,
        ),
        cluster('MaxWalSizeMib', String(wal.maxWalSizeMib), 'max_wal_size (MiB)', P.integer),
        cluster(
          'MaxSlotWalKeepMib',
          String(wal.maxSlotWalKeepMib),
          'max_slot_wal_keep_size (MiB)',
          P.integer,
        ),
        cluster(
          'PostgresqlParameters',
          Buffer.from(JSON.stringify(props.postgresqlParameters ?? {})).toString('base64'),
          'postgresqlParameters, base64 JSON',
          P.base64OrDash,
        ),
        cluster(
          'SpaceReserveMib',
          String(wal.spaceReserveMib),
          'Space reserve on the data volume (MiB)',
          P.integer,
        ),
        ...repositoryParameters,
      ],
    },
    backup: {
      description:
        'pem-ha: the backup repository from this backend (stanza: create it on the primary and prove archiving; full, diff: take a backup on this member, a replica or the primary; status: report the archive and backup age)',
      scripts: ['pgbackrest.sh', 'backup.sh'],
      // A full backup of a large database takes hours; the stanza action
      // ends by its own WaitSeconds.
      timeoutSeconds: 6 * 3600,
      parameters: [
        {
          name: 'Action',
          description: 'What to do',
          allowedValues: ['stanza', 'full', 'diff', 'status'],
        },
        member[1],
        clusterName,
        cluster('WaitSeconds', '600', 'How long a replica waits for the stanza', P.integer),
      ],
    },
    restore: {
      description:
        'pem-ha: one step of a point-in-time restore of the cluster (info, stop, clear-dcs, set-aside)',
      scripts: ['pgbackrest.sh', 'restore.sh'],
      timeoutSeconds: 1800,
      parameters: [
        {
          name: 'Action',
          description: 'The step',
          allowedValues: ['info', 'stop', 'clear-dcs', 'set-aside'],
        },
        clusterName,
        major,
        bool('KeepData', false, 'set-aside: keep the data directory as <data>.before-restore'),
        cluster('WaitSeconds', '300', 'How long stop waits for PostgreSQL to exit', P.integer),
      ],
    },
    upgrade: {
      description:
        'pem-ha: one rolling-upgrade step (check, drain, install, restart, verify, undrain, clear-drain)',
      scripts: ['upgrade.sh'],
      timeoutSeconds: 1800,
      parameters: [
        {
          name: 'Action',
          description: 'The step',
          allowedValues: [
            'check',
            'drain',
            'install',
            'restart',
            'verify',
            'undrain',
            'clear-drain',
          ],
        },
        {
          name: 'Component',
          description: 'What is upgraded (settings: restarts that apply pending settings)',
          allowedValues: [...COMPONENTS],
        },
        {
          name: 'Version',
          description: 'Exact package version (latest: the candidate, for check and os)',
          allowedPattern: P.packageVersion,
        },
        { name: 'Tier', description: 'Node tier', allowedValues: ['etcd', 'backend', 'web'] },
        ...member,
        major,
        cluster('WaitSeconds', '600', 'How long a step waits for the node to settle', P.integer),
      ],
    },
    pemBackend: edbToken
      ? {
          description: 'pem-ha: PEM server backend configuration (configure-pem-server.sh -t 3)',
          scripts: ['pem-wiring.sh', 'pem-lib.sh', 'pem-backend.sh'],
          timeoutSeconds: 3600,
          parameters: [member[1], agentId, backends, trusted, major, secretPrefix, edbToken],
        }
      : undefined,
    pemWeb: edbToken
      ? {
          description: 'pem-ha: PEM web application (configure-pem-server.sh -t 2)',
          scripts: ['pem-wiring.sh', 'pem-lib.sh', 'pem-web.sh'],
          timeoutSeconds: 3600,
          parameters: [agentId, backends, major, secretPrefix, edbToken],
        }
      : undefined,
  };
}
