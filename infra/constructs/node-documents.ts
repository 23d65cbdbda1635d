import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Stack, Token } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct } from 'constructs';
import type { PackageSource, PatroniTiming } from '../config/load-config';
import { CLUSTER_TAG } from './node-group';
import { checkDefault, shellVariable } from './document-parameters';
import { ValidationError } from './errors';
import { DocumentSpec, documentSpecs } from './document-specs';
import type { PostgresqlParameters } from '../config/postgresql-parameters';
import type { BootstrapDefinitionProps } from '../workflows/bootstrap-definition';
import type { DocumentRun } from '../workflows/node-command';

const NODE_SCRIPTS = join(__dirname, '..', 'node');

export type NodeDocumentKind =
  | 'common'
  | 'certificates'
  | 'etcd'
  | 'etcdQuorum'
  | 'failover'
  | 'metrics'
  | 'patroni'
  | 'backup'
  | 'restore'
  | 'pemBackend'
  | 'pemWeb'
  | 'upgrade';

/** Where pgBackRest keeps the cluster's WAL archive and backups, and how long. */
export interface BackupRepositorySettings {
  readonly bucketName: string;
  readonly region: string;
  /** The regional S3 endpoint name. */
  readonly endpoint: string;
  readonly kmsKeyArn: string;
  /** `repo1-path`, e.g. `/pem-ha`. */
  readonly path: string;
  readonly retentionDays: number;
  /** PostgreSQL's `archive_timeout`. */
  readonly archiveTimeoutSeconds: number;
  /** pgBackRest's `archive-push-queue-max`, in GiB. */
  readonly archivePushQueueMaxGiB: number;
}

export interface NodeDocumentsProps {
  readonly clusterName: string;
  readonly postgresMajorVersion: number;
  /** @default 'pgdg' */
  readonly packageSource?: PackageSource;
  /** etcd members in `initial-cluster` order. */
  readonly etcdMembers: readonly { readonly name: string; readonly address: string }[];
  /** Every backend node, with its fixed address. */
  readonly backends: readonly { readonly name: string; readonly address: string }[];
  /**
   * The database endpoint's DNS name (the NLB's; a deploy-time value), which
   * the backends' PostgreSQL certificates carry. @default - none
   */
  readonly databaseEndpointName?: string;
  /** Every PEM web host, with its fixed address. @default - none (no web tier) */
  readonly webAddresses?: readonly string[];
  /** The cluster's private subnets: the NLB (no client IP preservation) and the web tier. */
  readonly trustedCidrs: readonly string[];
  /** @default - none */
  readonly clientCidrs?: readonly string[];
  readonly patroni: PatroniTiming & {
    readonly synchronousMode: boolean;
    readonly maximumLagOnFailoverBytes: number;
  };
  /** Secrets are named `<secretPrefix>/<purpose>`. */
  readonly secretPrefix: string;
  /** @default - no PEM documents (PEM disabled) */
  readonly edbRepoTokenSecretName?: string;
  /** Certificates with fewer days left are renewed. @default 30 */
  readonly renewBeforeDays?: number;
  readonly backupRepository: BackupRepositorySettings;
  /** Each backend's data volume: WAL limits and the space reserve are sized from it. */
  readonly dataVolumeSizeGiB: number;
  /** The user's PostgreSQL parameters (checked by the settings loader). @default - none */
  readonly postgresqlParameters?: PostgresqlParameters;
}

/**
 * The SSM Run Command documents that build and maintain nodes: one
 * `aws:runShellScript` step each, the scripts of infra/node/ behind a preamble
 * that turns parameters into shell variables. Cluster-wide settings are the
 * parameters' defaults, so a document run by hand does the same as the flow.
 */
export class NodeDocuments extends Construct {
  /** Changes whenever any document's content does: a deploy then runs the bootstrap again. */
  readonly contentHash: string;
  private readonly documents = new Map<NodeDocumentKind, ssm.CfnDocument>();
  private readonly specs = new Map<NodeDocumentKind, DocumentSpec>();

  constructor(scope: Construct, id: string, props: NodeDocumentsProps) {
    super(scope, id);
    validate(this, props);
    const hash = createHash('sha256');
    for (const [kind, spec] of Object.entries(documentSpecs(props)) as [
      NodeDocumentKind,
      DocumentSpec | undefined,
    ][]) {
      if (!spec) continue;
      spec.parameters.forEach((parameter) => checkDefault(this, kind, parameter));
      const content = documentContent(kind, spec);
      // Resolved first: a deploy-time default hashes as its stable Ref, not a token number.
      hash.update(JSON.stringify(Stack.of(this).resolve(content)));
      this.specs.set(kind, spec);
      const document = new ssm.CfnDocument(this, kind[0].toUpperCase() + kind.slice(1), {
        name: `${props.clusterName}-${kind.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`,
        documentType: 'Command',
        documentFormat: 'JSON',
        updateMethod: 'NewVersion',
        content,
      });
      this.documents.set(kind, document);
    }
    this.contentHash = hash.digest('hex').slice(0, 16);
  }

  /** The document step's timeout: how long one run may take on a node. */
  runTimeoutSeconds(kind: NodeDocumentKind): number {
    const spec = this.specs.get(kind);
    if (!spec) throw new ValidationError(this, `no ${kind} document in this cluster`);
    return spec.timeoutSeconds;
  }

  /**
   * Lets `grantee` run these documents, on this cluster's instances only
   * (by tag), and read the results.
   */
  grantRun(grantee: iam.IGrantable, clusterName: string): iam.Grant {
    const stack = Stack.of(this);
    const documents = iam.Grant.addToPrincipal({
      grantee,
      actions: ['ssm:SendCommand'],
      resourceArns: [...this.documents.values()].map((document) =>
        stack.formatArn({ service: 'ssm', resource: 'document', resourceName: document.ref }),
      ),
    });
    const instances = iam.Grant.addToPrincipal({
      grantee,
      actions: ['ssm:SendCommand'],
      resourceArns: [stack.formatArn({ service: 'ec2', resource: 'instance', resourceName: '*' })],
      conditions: { StringEquals: { [`ssm:resourceTag/${CLUSTER_TAG}`]: clusterName } },
    });
    return documents.combine(instances).combine(this.grantReadResults(grantee));
  }

  /** Lets `grantee` read command results (GetCommandInvocation takes no resource ARN). */
  grantReadResults(grantee: iam.IGrantable): iam.Grant {
    return iam.Grant.addToPrincipal({
      grantee,
      actions: ['ssm:GetCommandInvocation'],
      resourceArns: ['*'],
    });
  }

  /** Name of a document (`<clusterName>-<kind>`), as SendCommand takes it. */
  documentName(kind: NodeDocumentKind): string {
    const document = this.documents.get(kind);
    if (!document) throw new ValidationError(this, `no ${kind} document in this cluster`);
    return document.ref;
  }

  /** Whether the cluster has this document (the PEM ones only with PEM enabled). */
  has(kind: NodeDocumentKind): boolean {
    return this.documents.has(kind);
  }

  /** A document as a runbook's node command runs it: its name and its run's timeout. */
  run(kind: NodeDocumentKind): DocumentRun {
    return { name: this.documentName(kind), runTimeoutSeconds: this.runTimeoutSeconds(kind) };
  }

  /** The documents the bootstrap runs (the PEM ones only with PEM enabled). */
  bootstrapRuns(): BootstrapDefinitionProps['documents'] {
    const optional = (kind: NodeDocumentKind) => (this.has(kind) ? this.run(kind) : undefined);
    return {
      common: this.run('common'),
      certificates: this.run('certificates'),
      etcd: this.run('etcd'),
      patroni: this.run('patroni'),
      backup: this.run('backup'),
      metrics: this.run('metrics'),
      pemBackend: optional('pemBackend'),
      pemWeb: optional('pemWeb'),
    };
  }
}

/** Preamble + lib.sh + the document's scripts, as the runCommand lines. */
function documentContent(kind: NodeDocumentKind, spec: DocumentSpec): Record<string, unknown> {
  const assignments = spec.parameters.map(
    (parameter) => `${shellVariable(parameter.name)}='{{ ${parameter.name} }}'`,
  );
  const script = [
    '#!/bin/bash',
    '# SSM runs this file with sh: carry on in bash.',
    'if [ -z "${BASH_VERSION:-}" ]; then exec /bin/bash "$0" "$@"; fi',
    'set -euo pipefail',
    'umask 022',
    `# pem-ha node document: ${kind}`,
    ...assignments,
    '',
    ...['lib.sh', ...spec.scripts].map((file) => readFileSync(join(NODE_SCRIPTS, file), 'utf8')),
  ].join('\n');
  return {
    schemaVersion: '2.2',
    description: spec.description,
    parameters: Object.fromEntries(
      spec.parameters.map((parameter) => [
        parameter.name,
        {
          type: 'String',
          description: parameter.description,
          ...(parameter.default !== undefined && { default: parameter.default }),
          ...(parameter.allowedPattern && { allowedPattern: parameter.allowedPattern }),
          ...(parameter.allowedValues && { allowedValues: [...parameter.allowedValues] }),
        },
      ]),
    ),
    mainSteps: [
      {
        action: 'aws:runShellScript',
        name: kind[0].toUpperCase() + kind.slice(1),
        inputs: { timeoutSeconds: String(spec.timeoutSeconds), runCommand: script.split('\n') },
      },
    ],
  };
}

function validate(scope: Construct, props: NodeDocumentsProps): void {
  const lists: [string, readonly string[]][] = [
    ['etcdMembers', props.etcdMembers.map((m) => m.address)],
    ['backends', props.backends.flatMap((m) => [m.name, m.address])],
    ['webAddresses', props.webAddresses ?? []],
    ['trustedCidrs', props.trustedCidrs],
    ['clientCidrs', props.clientCidrs ?? []],
  ];
  for (const [prop, values] of lists) {
    if (values.some((value) => Token.isUnresolved(value))) {
      throw new ValidationError(
        scope,
        `${prop} must be known at synth time (they become document defaults); got a deploy-time token`,
      );
    }
  }
  if (props.etcdMembers.length < 1 || props.backends.length < 1) {
    throw new ValidationError(
      scope,
      'etcdMembers and backends must not be empty; got an empty list',
    );
  }
}
