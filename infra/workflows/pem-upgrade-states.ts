import { Duration } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { DocumentRun, NodeCommand } from './node-command';
import { nodeField, StatePath } from './task-states';

/** PEM's own documents: the configuration step an upgrade re-runs. */
export interface PemDocuments {
  readonly backend: DocumentRun;
  readonly web: DocumentRun;
}

/** What the upgrade definition lends the pem component's states. */
export interface PemUpgradeParts {
  readonly documents: PemDocuments;
  readonly nodeCommand: lambda.IFunction;
  readonly pollInterval?: Duration;
  /** The health gate before each node. */
  readonly gate: (label: string) => sfn.IChainable;
  /** A step of the upgrade document on the Map's node. */
  readonly command: (label: string, action: string) => NodeCommand;
  /** One call of the upgrade's task function. */
  readonly step: (label: string, payload: Record<string, unknown>) => sfn.TaskStateBase;
  /** A Wait/Choice loop over one of the task function's looks. */
  readonly until: (label: string, payload: Record<string, unknown>) => sfn.IChainable;
}

/**
 * The pem component, one node at a time, as EDB's upgrade guide orders it:
 * on the backends (the leader first) the edb-pem packages, then PEM's
 * document, whose configuration step runs on the primary alone (the schema;
 * a standby waits for it to replicate), no switchover and no PostgreSQL
 * restart; then each web host out of the ALB (deregistered, its draining
 * over; never while no other web host is healthy), upgraded and configured,
 * checked, and registered again until the ALB finds it healthy, so browsers
 * only ever reach a serving host.
 */
export function pemUpgradeChains(scope: Construct, parts: PemUpgradeParts) {
  const node = sfn.JsonPath.objectAt(StatePath.node);
  const inventory = sfn.JsonPath.objectAt(StatePath.inventory);
  const configure = (label: string, document: DocumentRun, parameters: Record<string, string>) =>
    new NodeCommand(scope, label, {
      nodeCommand: parts.nodeCommand,
      document,
      parameters: { AgentId: sfn.JsonPath.stringAt(nodeField('agentId')), ...parameters },
      pollInterval: parts.pollInterval,
    });
  const backend = sfn.Chain.start(parts.gate('PEM backend'))
    .next(parts.command('PEM backend: install', 'install'))
    .next(
      configure('PEM backend: configure', parts.documents.backend, {
        MemberAddress: sfn.JsonPath.stringAt(nodeField('address')),
      }),
    )
    .next(parts.command('PEM backend: verify', 'verify'));
  const webHost = sfn.Chain.start(parts.gate('PEM web host'))
    .next(parts.step('PEM web host: deregister', { action: 'deregisterWeb', inventory, node }))
    .next(
      parts.until('PEM web host: draining ended', { action: 'awaitWebTarget', node, want: 'out' }),
    )
    .next(parts.command('PEM web host: install', 'install'))
    .next(configure('PEM web host: configure', parts.documents.web, {}))
    .next(parts.command('PEM web host: verify', 'verify'))
    .next(parts.step('PEM web host: register', { action: 'registerWeb', inventory, node }))
    .next(
      parts.until('PEM web host: healthy in the ALB', {
        action: 'awaitWebTarget',
        node,
        want: 'healthy',
      }),
    );
  return { backend, webHost };
}
