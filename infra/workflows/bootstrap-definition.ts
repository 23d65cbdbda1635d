import { Duration } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { caExpiryState, certificateStates, failureEnd } from './certificate-states';
import { DocumentRun, nodeCommandStates, TASK_TIMEOUT } from './node-command-states';

export type InventoryTier = 'etcd' | 'backend' | 'web';

/** One node as the flow knows it; strings only, as document parameters are. */
export interface InventoryNode {
  readonly name: string;
  readonly tier: InventoryTier;
  readonly instanceId: string;
  readonly address: string;
  /** Backends only. */
  readonly dataVolumeId?: string;
  /** PEM agent number, '0' for none. */
  readonly agentId: string;
  /** Comma-separated TLS identities the node requests. */
  readonly identities: string;
}

export interface BootstrapInventory {
  readonly etcd: readonly InventoryNode[];
  readonly backend: readonly InventoryNode[];
  readonly web: readonly InventoryNode[];
}

export interface BootstrapDefinitionProps {
  readonly inventory: BootstrapInventory;
  readonly documents: {
    readonly common: DocumentRun;
    readonly certificates: DocumentRun;
    readonly etcd: DocumentRun;
    readonly patroni: DocumentRun;
    /** @default - no PEM steps */
    readonly pemBackend?: DocumentRun;
    /** @default - no PEM web step */
    readonly pemWeb?: DocumentRun;
  };
  readonly nodeCommand: lambda.IFunction;
  readonly clusterCa: lambda.IFunction;
  readonly signCertificates: lambda.IFunction;
  readonly recordExpiry: lambda.IFunction;
  /** @default 10 seconds */
  readonly pollInterval?: Duration;
}

const NODE = {
  name: sfn.JsonPath.stringAt('$.node.name'),
  address: sfn.JsonPath.stringAt('$.node.address'),
  agentId: sfn.JsonPath.stringAt('$.node.agentId'),
};

/**
 * The bootstrap runbook: cluster CA, then on every node OS preparation and
 * certificates (with their expiry published), then etcd (all members at once), the Patroni leader, the
 * replicas one by one, PEM on the backends and the web tier. Every step is
 * idempotent, so a second execution changes nothing. Any failure ends in
 * `Bootstrap failed` with the task's named error and cause.
 */
export function bootstrapDefinition(
  scope: Construct,
  props: BootstrapDefinitionProps,
): sfn.IChainable {
  const { inventory, documents } = props;
  const { catchInto } = failureEnd(scope, 'Bootstrap failed');
  const run = (label: string, document: DocumentRun, parameters: Record<string, string>) =>
    nodeCommandStates(scope, label, {
      nodeCommand: props.nodeCommand,
      document,
      parameters,
      pollInterval: props.pollInterval,
    });
  const forEach = (
    label: string,
    group: keyof typeof groups,
    processor: sfn.IChainable,
    maxConcurrency = 0,
  ) => {
    const map = new sfn.Map(scope, label, {
      itemsPath: `$.inventory.${group}`,
      itemSelector: { 'node.$': '$$.Map.Item.Value' },
      maxConcurrency,
      resultPath: sfn.JsonPath.DISCARD,
    });
    map.itemProcessor(processor);
    return catchInto(map);
  };
  const [leader, ...replicas] = inventory.backend;
  const groups = {
    all: [...inventory.etcd, ...inventory.backend, ...inventory.web],
    etcd: inventory.etcd,
    leader: [leader],
    replicas,
    backend: inventory.backend,
    web: inventory.web,
  };
  // The node list lives in the definition, so starting it again by hand needs no input.
  const inventoryState = new sfn.Pass(scope, 'Inventory', {
    result: sfn.Result.fromObject(groups),
    resultPath: '$.inventory',
  });

  const ensureCa = new tasks.LambdaInvoke(scope, 'Ensure cluster CA', {
    lambdaFunction: props.clusterCa,
    payloadResponseOnly: true,
    resultPath: sfn.JsonPath.DISCARD,
    taskTimeout: sfn.Timeout.duration(TASK_TIMEOUT),
  });
  catchInto(ensureCa);

  const prepare = run('Prepare node', documents.common, {
    Tier: sfn.JsonPath.stringAt('$.node.tier'),
  });

  const certificates = certificateStates(scope, {
    nodeCommand: props.nodeCommand,
    signCertificates: props.signCertificates,
    recordExpiry: props.recordExpiry,
    document: documents.certificates,
    pollInterval: props.pollInterval,
  }).start;
  const caExpiry = caExpiryState(scope, props.recordExpiry);
  catchInto(caExpiry);

  const etcd = run('Start etcd member', documents.etcd, {
    MemberName: NODE.name,
    MemberAddress: NODE.address,
  });
  const patroni = (label: string, bootstrap: boolean) =>
    run(label, documents.patroni, {
      MemberName: NODE.name,
      MemberAddress: NODE.address,
      DataVolumeId: sfn.JsonPath.stringAt('$.node.dataVolumeId'),
      Bootstrap: String(bootstrap),
    });
  let chain = inventoryState
    .next(ensureCa)
    .next(forEach('Prepare every node', 'all', prepare.start))
    .next(forEach('Certificates for every node', 'all', certificates))
    .next(caExpiry)
    .next(forEach('etcd members', 'etcd', etcd.start))
    .next(forEach('Patroni leader', 'leader', patroni('Start Patroni leader', true).start))
    .next(
      forEach('Patroni replicas', 'replicas', patroni('Start Patroni replica', false).start, 1),
    );
  if (documents.pemBackend) {
    // All at once: a standby's run waits until the primary's has finished.
    const pemBackend = run('Configure PEM backend', documents.pemBackend, {
      MemberAddress: NODE.address,
      AgentId: NODE.agentId,
    });
    chain = chain.next(forEach('PEM backends', 'backend', pemBackend.start));
  }
  if (documents.pemWeb && inventory.web.length > 0) {
    const pemWeb = run('Configure PEM web', documents.pemWeb, { AgentId: NODE.agentId });
    chain = chain.next(forEach('PEM web hosts', 'web', pemWeb.start));
  }
  return chain.next(new sfn.Succeed(scope, 'Cluster bootstrapped'));
}
