import { Annotations, Duration, Size, Stack, StackProps } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as events from 'aws-cdk-lib/aws-events';
import { Construct } from 'constructs';
import { OS_PACKAGES, type PemHaConfig } from '../config/load-config';
import { BackendTier } from '../constructs/backend-tier';
import { BackupRepository } from '../constructs/backup-repository';
import { BootstrapFlow } from '../constructs/bootstrap-flow';
import { AgentCertificateRunbook } from '../constructs/agent-certificate';
import { CertificateRotation } from '../constructs/certificate-rotation';
import { ClusterPki } from '../constructs/cluster-pki';
import { ClusterSecrets, CredentialPurpose } from '../constructs/cluster-secrets';
import { DatabaseEndpoints } from '../constructs/database-endpoints';
import { DeployedSettingsGuard } from '../constructs/deployed-settings-guard';
import { EtcdTier } from '../constructs/etcd-tier';
import { Network } from '../constructs/network';
import type { NodePlacementProps } from '../constructs/node-group';
import { RollingUpgrade } from '../constructs/rolling-upgrade';
import { RunbookFunctions } from '../constructs/runbook-functions';
import { BackupMonitoring } from '../constructs/backup-monitoring';
import { PointInTimeRestore } from '../constructs/point-in-time-restore';
import { ScheduledBackups } from '../constructs/scheduled-backups';
import { NodeDocuments } from '../constructs/node-documents';
import { NodeReplacement } from '../constructs/node-replacement';
import { PrimaryFailover } from '../constructs/primary-failover';
import { WebTier } from '../constructs/web-tier';
import { LiveSettings } from '../constructs/live-settings';
import { clusterInventory } from '../workflows/inventory';
import { AlarmTopic } from '../constructs/alarm-topic';
import { ClusterMonitoring } from '../constructs/cluster-monitoring';
import { ClusterDashboard } from '../constructs/cluster-dashboard';
import { walBudget } from '../constructs/document-specs';
import { addStackOutputs, stackRunbooks } from './stack-outputs';

export interface PemHaStackProps extends StackProps {
  readonly config: PemHaConfig;
}

/** Wires the cluster's pieces together; every decision lives in the constructs. */
export class PemHaStack extends Stack {
  readonly etcd: EtcdTier;
  readonly backend: BackendTier;
  readonly endpoints: DatabaseEndpoints;
  readonly web?: WebTier;
  readonly backups: BackupRepository;
  readonly scheduledBackups: ScheduledBackups;
  readonly backupMonitoring: BackupMonitoring;
  readonly restore: PointInTimeRestore;
  readonly replacement: NodeReplacement;
  readonly failover: PrimaryFailover;
  readonly documents: NodeDocuments;
  readonly bootstrap: BootstrapFlow;
  readonly rotation: CertificateRotation;
  /** With PEM: certificates for the agents of monitored servers. */
  readonly agentCertificate?: AgentCertificateRunbook;
  readonly upgrade: RollingUpgrade;
  readonly monitoring: ClusterMonitoring;
  readonly alarmTopic: AlarmTopic;

  constructor(scope: Construct, id: string, props: PemHaStackProps) {
    // Compact JSON: the runbooks' definitions and the documents' scripts make
    // a large template, and CloudFormation takes at most 1 MB.
    super(scope, id, { suppressTemplateIndentation: true, ...props });
    const { config } = props;
    new DeployedSettingsGuard(this, 'DeployedSettings', { config });
    if (config.backend.packageSource === 'os' && config.amiFamily === 'debian-12') {
      Annotations.of(this).addWarningV2(
        'pem-ha:debian-12-patroni',
        "Synthesized for the local rig's Debian 12 upgrade suite only: Debian 12's own Patroni 3.0.2 can lose acknowledged writes when a cut-off leader reconnects after a failover (fixed in Patroni 3.0.3, patroni/patroni#2689). Never deploy this template.",
      );
    } else if (config.backend.packageSource === 'os') {
      const patroni = OS_PACKAGES[config.amiFamily].patroni;
      Annotations.of(this).addWarningV2(
        'pem-ha:os-patroni-etcd-errors',
        `postgresPackageSource os installs ${config.amiFamily}'s own Patroni ${patroni}, which misreads the errors etcd returns while its leader changes (an etcd member restarted by a root rollover or an etcd upgrade, or lost): the primary can then demote itself although failsafe_mode is on (patroni/patroni#3572, #3407; handled from Patroni 4.1.3). For production use postgresPackageSource pgdg (the default).`,
      );
    }
    const secrets = new ClusterSecrets(this, 'Secrets', {
      clusterName: config.clusterName,
      edbRepoTokenSecretName: config.pem?.edbRepoTokenSecretName,
      breakGlassRoleArn: config.secretsBreakGlassRoleArn,
    });
    const network = new Network(this, 'Network', {
      network: config.network,
      encryptionKey: secrets.key,
    });
    const placement: NodePlacementProps = {
      clusterName: config.clusterName,
      vpc: network.vpc,
      subnets: network.privateSubnets,
      amiFamily: config.amiFamily,
      amiId: config.amiId,
      encryptionKey: secrets.key,
    };

    this.etcd = new EtcdTier(this, 'Etcd', {
      ...placement,
      subnetCidrs: network.privateSubnetCidrs,
      nodeCount: config.etcd.nodeCount,
      instanceType: new ec2.InstanceType(config.etcd.instanceType),
    });
    this.backend = new BackendTier(this, 'Backend', {
      ...placement,
      subnetCidrs: network.privateSubnetCidrs,
      nodeCount: config.backend.nodeCount,
      instanceType: new ec2.InstanceType(config.backend.instanceType),
      dataVolumeSize: Size.gibibytes(config.backend.dataVolumeSizeGiB),
    });
    this.etcd.allowClientsFrom(this.backend);
    this.endpoints = new DatabaseEndpoints(this, 'Endpoints', {
      vpc: network.vpc,
      subnets: network.privateSubnets,
      backend: this.backend,
      healthCheckInterval: Duration.seconds(config.healthCheck.intervalSeconds),
      healthyThreshold: config.healthCheck.healthyThreshold,
      unhealthyThreshold: config.healthCheck.unhealthyThreshold,
      replicaMaxLagBytes: config.healthCheck.replicaMaxLagBytes,
    });
    for (const cidr of config.backend.clientCidrs) {
      this.endpoints.allowClientsFrom(ec2.Peer.ipv4(cidr), `clients in ${cidr}`);
      this.backend.allowDatabaseClient(ec2.Peer.ipv4(cidr), `multi-host clients in ${cidr}`);
    }

    const backendCredentials: CredentialPurpose[] = [
      'patroniSuperuser',
      'patroniReplication',
      'patroniRewind',
      'patroniRestApi',
      'patroniEtcd',
    ];
    if (config.pem) {
      this.web = new WebTier(this, 'Web', {
        ...placement,
        subnetCidrs: network.privateSubnetCidrs,
        nodeCount: config.pem.web.nodeCount,
        instanceType: new ec2.InstanceType(config.pem.web.instanceType),
        internetFacing: config.pem.web.internetFacing,
        certificateArn: config.pem.web.certificateArn,
      });
      this.backend.allowDatabaseClient(this.web, 'PEM web application');
      this.endpoints.allowClientsFrom(this.web, 'PEM web application');
      for (const cidr of config.pem.web.clientCidrs) {
        this.web.allowBrowsersFrom(ec2.Peer.ipv4(cidr), `PEM users in ${cidr}`);
      }
      backendCredentials.push('pemSuperuser');
      secrets.grantRead(this.web.group, ['pemSuperuser']);
      secrets.grantReadEdbRepoToken(this.web.group);
      secrets.grantReadEdbRepoToken(this.backend.group);
    }
    secrets.grantRead(this.backend.group, backendCredentials);
    // The first etcd member makes Patroni's etcd user with this password.
    secrets.grantRead(this.etcd.group, ['patroniEtcd']);

    this.backups = new BackupRepository(this, 'Backups', {
      clusterName: config.clusterName,
      encryptionKey: secrets.key,
      retentionDays: config.backup.retentionDays,
      writer: this.backend.group.role,
    });

    // Half the data volume: the WAL a primary may hold for an unreachable repository.
    const archivePushQueueMaxGiB = Math.floor(config.backend.dataVolumeSizeGiB / 2);
    this.documents = new NodeDocuments(this, 'NodeDocuments', {
      clusterName: config.clusterName,
      postgresMajorVersion: config.backend.postgresMajorVersion,
      packageSource: config.backend.packageSource,
      etcdMembers: this.etcd.nodes.map((node) => ({ name: node.name, address: node.privateIp })),
      backends: this.backend.nodes.map((node) => ({ name: node.name, address: node.privateIp })),
      webAddresses: this.web?.nodes.map((node) => node.privateIp),
      databaseEndpointName: this.endpoints.loadBalancer.loadBalancerDnsName,
      trustedCidrs: network.privateSubnetCidrs,
      clientCidrs: config.backend.clientCidrs,
      patroni: config.patroni,
      secretPrefix: config.clusterName,
      edbRepoTokenSecretName: config.pem?.edbRepoTokenSecretName,
      renewBeforeDays: config.certificates.renewBeforeDays,
      backupRepository: {
        bucketName: this.backups.bucket.bucketName,
        region: this.region,
        endpoint: this.backups.endpoint,
        kmsKeyArn: this.backups.kmsKeyArn,
        path: this.backups.repositoryPath,
        retentionDays: this.backups.retentionDays,
        archiveTimeoutSeconds: config.backup.archiveTimeoutSeconds,
        archivePushQueueMaxGiB,
      },
      dataVolumeSizeGiB: config.backend.dataVolumeSizeGiB,
      postgresqlParameters: config.postgresqlParameters,
    });
    const pki = new ClusterPki(this, 'Pki', {
      clusterName: config.clusterName,
      encryptionKey: secrets.key,
      breakGlassRoleArn: config.secretsBreakGlassRoleArn,
    });
    const functions = new RunbookFunctions(this, 'Runbooks', {
      clusterName: config.clusterName,
      documents: this.documents,
      pki,
      vpc: network.vpc,
      subnets: { subnets: [...network.privateSubnets] },
      encryptionKey: secrets.key,
      leafValidityDays: config.certificates.validityDays,
      maxLagBytes: config.healthCheck.replicaMaxLagBytes,
      databaseEndpointName: this.endpoints.loadBalancer.loadBalancerDnsName,
    });
    this.backend.allowPatroniClient(functions.clusterStatus, 'runbooks reading the cluster state');
    const inventory = clusterInventory({
      etcd: this.etcd.nodes,
      backend: this.backend.nodes,
      web: this.web?.group.nodes ?? [],
      pemEnabled: config.pem !== undefined,
    });
    this.bootstrap = new BootstrapFlow(this, 'Bootstrap', {
      clusterName: config.clusterName,
      documents: this.documents,
      functions,
      inventory,
      dependsOn: [
        this.etcd,
        this.backend,
        ...(this.web ? [this.web] : []),
        secrets,
        pki,
        this.backups,
      ],
    });
    this.rotation = new CertificateRotation(this, 'CertificateRotation', {
      clusterName: config.clusterName,
      documents: this.documents,
      functions,
      inventory,
      schedule: events.Schedule.expression(config.certificates.rotationSchedule),
      renewBeforeDays: config.certificates.renewBeforeDays,
      expiryAlarmDays: config.certificates.expiryAlarmDays,
    });
    if (config.pem) {
      this.agentCertificate = new AgentCertificateRunbook(this, 'AgentCertificate', {
        clusterName: config.clusterName,
        functions,
      });
    }

    this.scheduledBackups = new ScheduledBackups(this, 'ScheduledBackups', {
      clusterName: config.clusterName,
      documents: this.documents,
      functions,
      inventory,
      fullSchedule: events.Schedule.expression(config.backup.fullSchedule),
      diffSchedule: events.Schedule.expression(config.backup.diffSchedule),
    });

    this.backupMonitoring = new BackupMonitoring(this, 'BackupMonitoring', {
      clusterName: config.clusterName,
      documents: this.documents,
      functions,
      inventory,
      archivePushQueueMaxGiB,
      archiveAgeAlarmSeconds: config.backup.archiveAgeAlarmSeconds,
      backupAgeAlarmHours: config.backup.ageAlarmHours,
    });

    // The runbooks that talk to Patroni's REST API run in the VPC with its credentials.
    const patroniAccess = {
      pki,
      restApiSecret: secrets.credential('patroniRestApi'),
      vpc: network.vpc,
      subnets: { subnets: [...network.privateSubnets] },
    };
    this.upgrade = new RollingUpgrade(this, 'RollingUpgrade', {
      clusterName: config.clusterName,
      documents: this.documents,
      functions,
      inventory,
      ...patroniAccess,
      writeTargetGroup: this.endpoints.primaryTargetGroup,
      readTargetGroup: this.endpoints.replicaTargetGroup,
      webTargetGroup: this.web?.targetGroup,
      maxLagBytes: config.healthCheck.replicaMaxLagBytes,
    });
    this.backend.allowPatroniClient(this.upgrade, 'the rolling upgrade reading and switching over');
    new LiveSettings(this, 'LiveSettings', {
      bootstrap: this.bootstrap,
      upgrade: this.upgrade,
      postgresqlParameters: config.postgresqlParameters,
    });

    this.restore = new PointInTimeRestore(this, 'PointInTimeRestore', {
      clusterName: config.clusterName,
      documents: this.documents,
      functions,
      inventory,
    });

    this.replacement = new NodeReplacement(this, 'NodeReplacement', {
      clusterName: config.clusterName,
      documents: this.documents,
      functions,
      inventory,
    });

    this.failover = new PrimaryFailover(this, 'PrimaryFailover', {
      clusterName: config.clusterName,
      documents: this.documents,
      functions,
      inventory,
      ...patroniAccess,
    });
    this.backend.allowPatroniClient(this.failover, 'the failover runbook reading and failing over');

    this.monitoring = new ClusterMonitoring(this, 'Monitoring', {
      clusterName: config.clusterName,
      backends: this.backend.nodes.map((node) => ({ name: node.name, address: node.privateIp })),
      etcdMembers: this.etcd.nodes.map((node) => node.name),
      pki,
      vpc: network.vpc,
      subnets: { subnets: [...network.privateSubnets] },
      thresholds: {
        ...config.alarms,
        replicaMaxLagBytes: config.healthCheck.replicaMaxLagBytes,
        // Half of max_slot_wal_keep_size: the alarm comes before the slot is dropped.
        slotRetainedWalBytes:
          (walBudget(config.backend.dataVolumeSizeGiB).maxSlotWalKeepMib / 2) * 1024 * 1024,
      },
    });
    this.backend.allowPatroniClient(this.monitoring, 'the cluster-metrics function');
    this.monitoring.grantPublishNodeMetrics(this.etcd.group.role);
    this.monitoring.grantPublishNodeMetrics(this.backend.group.role);

    const dashboard = new ClusterDashboard(this, 'Dashboard', {
      clusterName: config.clusterName,
      monitoring: this.monitoring,
      endpoints: this.endpoints,
      web: this.web,
      backupMonitoring: this.backupMonitoring,
      rotation: this.rotation,
      runbooks: stackRunbooks(this),
    });

    // Last: every alarm above, in any construct, notifies the topic.
    this.alarmTopic = new AlarmTopic(this, 'AlarmTopic', {
      clusterName: config.clusterName,
      encryptionKey: secrets.key,
      email: config.alarms.email,
      topicArn: config.alarms.topicArn,
    });
    this.alarmTopic.notifyEveryAlarm(this);

    addStackOutputs(
      this,
      secrets.secretNames,
      {
        dashboardUrl: dashboard.url,
        alarmTopicArn: this.alarmTopic.topic.topicArn,
      },
      { pki, clusterName: config.clusterName },
    );
  }
}
