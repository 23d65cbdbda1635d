import { Duration } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { caExpiryState, failureEnd, NodeCertificates } from './certificate-states';
import { DocumentRun, NodeCommand } from './node-command';
import { inventoryState, nodeField, StatePath, TASK_TIMEOUT } from './task-states';
import type { ClusterInventory } from '../../functions/lib/inventory';

export interface BootstrapDefinitionProps {
  readonly inventory: ClusterInventory;
  readonly documents: {
    readonly common: DocumentRun;
    readonly certificates: DocumentRun;
    readonly etcd: DocumentRun;
    readonly patroni: DocumentRun;
    readonly backup: DocumentRun;
    readonly metrics: DocumentRun;
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
  /**
   * States run after the inventory and before the cluster CA (the node
   * replacement's checks and root volume swap), given the failure catcher.
   * @default - none
   */
  readonly first?: (catchInto: CatchInto) => sfn.Chain;
  /** The failure and success states' names. @default Bootstrap failed, Cluster bootstrapped */
  readonly endNames?: { readonly failed: string; readonly succeeded: string };
}

/** Routes a state's errors to the runbook's failure end. */
export type CatchInto = ReturnType<typeof failureEnd>['catchInto'];

/** Where the bootstrap keeps what each node's preparation said of its trusted roots. */
const NODE_TRUST = '$.nodeTrust';

const NODE = {
  name: sfn.JsonPath.stringAt(nodeField('name')),
  address: sfn.JsonPath.stringAt(nodeField('address')),
  agentId: sfn.JsonPath.stringAt(nodeField('agentId')),
};

/**
 * The bootstrap runbook: OS preparation on every node (each reports the roots
 * it trusts), the cluster CA (made once, never while a node trusts another
 * root), certificates on every node (with their expiry published), then etcd (all members at
 * once), the Patroni leader, the replicas side by side (each clones the leader
 * or restores from the repository on its own), the backup stanza, the etcd and
 * backend nodes' metric collectors, PEM on the backends and the web tier.
 * Every step is idempotent, so a second execution changes nothing. Any failure
 * ends in `Bootstrap failed` with the task's named error and cause.
 */
export function bootstrapDefinition(
  scope: Construct,
  props: BootstrapDefinitionProps,
): sfn.IChainable {
  const { inventory, documents } = props;
  const endNames = props.endNames ?? {
    failed: 'Bootstrap failed',
    succeeded: 'Cluster bootstrapped',
  };
  const { catchInto } = failureEnd(scope, endNames.failed);
  const run = (label: string, document: DocumentRun, parameters: Record<string, string>) =>
    new NodeCommand(scope, label, {
      nodeCommand: props.nodeCommand,
      document,
      parameters,
      pollInterval: props.pollInterval,
    });
  const forEach = (label: string, group: keyof typeof groups, processor: sfn.IChainable) => {
    const map = new sfn.Map(scope, label, {
      itemsPath: `${StatePath.inventory}.${group}`,
      itemSelector: { 'node.$': '$$.Map.Item.Value' },
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
    monitored: [...inventory.etcd, ...inventory.backend],
    web: inventory.web,
  };
  const startState = inventoryState(scope, groups);

  // Every node first: each prints the roots it trusts (none on a new one),
  // and the CA step refuses to make a new root while any node trusts another.
  const prepareAll = new sfn.Map(scope, 'Prepare every node', {
    itemsPath: `${StatePath.inventory}.all`,
    itemSelector: { 'node.$': '$$.Map.Item.Value' },
    resultPath: NODE_TRUST,
  });
  prepareAll.itemProcessor(
    run('Prepare node', documents.common, {
      Tier: sfn.JsonPath.stringAt(nodeField('tier')),
    }).next(
      new sfn.Pass(scope, 'Roots the node trusts', {
        parameters: {
          'node.$': nodeField('name'),
          'output.$': NodeCommand.STDOUT_TAIL,
        },
      }),
    ),
  );
  catchInto(prepareAll);

  const ensureCa = new tasks.LambdaInvoke(scope, 'Ensure cluster CA', {
    lambdaFunction: props.clusterCa,
    payload: sfn.TaskInput.fromObject({
      action: 'ensure',
      'nodes.$': NODE_TRUST,
    }),
    payloadResponseOnly: true,
    resultPath: sfn.JsonPath.DISCARD,
    taskTimeout: sfn.Timeout.duration(TASK_TIMEOUT),
  });
  catchInto(ensureCa);

  const certificates = new NodeCertificates(scope, 'Node certificates', {
    nodeCommand: props.nodeCommand,
    signCertificates: props.signCertificates,
    recordExpiry: props.recordExpiry,
    document: documents.certificates,
    pollInterval: props.pollInterval,
  });
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
      DataVolumeId: sfn.JsonPath.stringAt(nodeField('dataVolumeId')),
      Bootstrap: String(bootstrap),
    });
  let chain = (props.first ? startState.next(props.first(catchInto)) : startState)
    .next(prepareAll)
    .next(ensureCa)
    .next(forEach('Certificates for every node', 'all', certificates))
    .next(caExpiry)
    .next(forEach('etcd members', 'etcd', etcd))
    .next(forEach('Patroni leader', 'leader', patroni('Start Patroni leader', true)))
    .next(forEach('Patroni replicas', 'replicas', patroni('Start Patroni replica', false)));
  // All at once: whichever member is the primary now creates the stanza, the others wait for it.
  const stanza = run('Ensure backup stanza', documents.backup, {
    Action: 'stanza',
    MemberAddress: NODE.address,
  });
  chain = chain.next(forEach('Backup repository', 'backend', stanza));
  // Once the monitoring role exists on the primary: the collectors read with it.
  const collector = run('Install metric collector', documents.metrics, {
    Tier: sfn.JsonPath.stringAt(nodeField('tier')),
    MemberName: NODE.name,
    MemberAddress: NODE.address,
  });
  chain = chain.next(forEach('Metric collectors', 'monitored', collector));
  if (documents.pemBackend) {
    // All at once: a standby's run waits until the primary's has finished.
    const pemBackend = run('Configure PEM backend', documents.pemBackend, {
      MemberAddress: NODE.address,
      AgentId: NODE.agentId,
    });
    chain = chain.next(forEach('PEM backends', 'backend', pemBackend));
  }
  if (documents.pemWeb && inventory.web.length > 0) {
    const pemWeb = run('Configure PEM web', documents.pemWeb, { AgentId: NODE.agentId });
    chain = chain.next(forEach('PEM web hosts', 'web', pemWeb));
  }
  return chain.next(new sfn.Succeed(scope, endNames.succeeded));
}
