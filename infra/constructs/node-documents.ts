import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Stack, Token } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct } from 'constructs';
import type { PackageSource, PatroniTiming } from '../config/load-config';
import { CLUSTER_TAG } from './node-group';
import {
  checkDefault,
  DocumentParameter,
  PATTERNS as P,
  shellVariable,
} from './document-parameters';

const NODE_SCRIPTS = join(__dirname, '..', 'node');

export type NodeDocumentKind =
  'common' | 'certificates' | 'etcd' | 'patroni' | 'pemBackend' | 'pemWeb';

export interface NodeDocumentsProps {
  readonly clusterName: string;
  readonly postgresMajorVersion: number;
  /** @default 'pgdg' */
  readonly packageSource?: PackageSource;
  /** etcd members in `initial-cluster` order. */
  readonly etcdMembers: readonly { readonly name: string; readonly address: string }[];
  /** Fixed addresses of every backend node. */
  readonly backendAddresses: readonly string[];
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
}

interface DocumentSpec {
  readonly description: string;
  /** Files of infra/node/, concatenated after the shared lib.sh. */
  readonly scripts: readonly string[];
  readonly parameters: readonly DocumentParameter[];
  readonly timeoutSeconds: number;
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
    validate(props);
    const hash = createHash('sha256');
    for (const [kind, spec] of Object.entries(documentSpecs(props)) as [
      NodeDocumentKind,
      DocumentSpec | undefined,
    ][]) {
      if (!spec) continue;
      spec.parameters.forEach((parameter) => checkDefault(kind, parameter));
      const content = documentContent(kind, spec);
      hash.update(JSON.stringify(content));
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
    if (!spec) throw new Error(`NodeDocuments: no ${kind} document in this cluster`);
    return spec.timeoutSeconds;
  }

  /**
   * Lets `grantee` run these documents, on this cluster's instances only
   * (by tag), and read the results.
   */
  grantRun(grantee: iam.IGrantable, clusterName: string): void {
    const stack = Stack.of(this);
    iam.Grant.addToPrincipal({
      grantee,
      actions: ['ssm:SendCommand'],
      resourceArns: [...this.documents.values()].map((document) =>
        stack.formatArn({ service: 'ssm', resource: 'document', resourceName: document.ref }),
      ),
    });
    grantee.grantPrincipal.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['ssm:SendCommand'],
        resources: [stack.formatArn({ service: 'ec2', resource: 'instance', resourceName: '*' })],
        conditions: { StringEquals: { [`ssm:resourceTag/${CLUSTER_TAG}`]: clusterName } },
      }),
    );
    this.grantReadResults(grantee);
  }

  /** Lets `grantee` read command results (GetCommandInvocation takes no resource ARN). */
  grantReadResults(grantee: iam.IGrantable): void {
    iam.Grant.addToPrincipal({
      grantee,
      actions: ['ssm:GetCommandInvocation'],
      resourceArns: ['*'],
    });
  }

  /** Name of a document (`<clusterName>-<kind>`), as SendCommand takes it. */
  documentName(kind: NodeDocumentKind): string {
    const document = this.documents.get(kind);
    if (!document) throw new Error(`NodeDocuments: no ${kind} document in this cluster`);
    return document.ref;
  }

  /** Whether the cluster has this document (the PEM ones only with PEM enabled). */
  has(kind: NodeDocumentKind): boolean {
    return this.documents.has(kind);
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

function documentSpecs(
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
    props.backendAddresses.join(','),
    'Every backend',
    P.ipv4List,
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
  const { patroni } = props;
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
      scripts: ['certificates.sh'],
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
    etcd: {
      description: 'pem-ha: etcd member with client and peer TLS; waits for a healthy cluster',
      scripts: ['etcd.sh'],
      timeoutSeconds: 900,
      parameters: [
        ...member,
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
    patroni: {
      description:
        'pem-ha: data volume, patroni.yml and the Patroni service; waits until the member runs',
      scripts: ['patroni.sh'],
      timeoutSeconds: 3600,
      parameters: [
        ...member,
        {
          name: 'DataVolumeId',
          description: 'EBS data volume of the node',
          allowedPattern: P.volumeId,
        },
        bool('Bootstrap', false, 'This member may initialize a new cluster'),
        clusterName,
        major,
        cluster(
          'EtcdHosts',
          props.etcdMembers.map((m) => `${m.address}:2379`).join(','),
          'etcd client endpoints',
          P.hostPortList,
        ),
        backends,
        trusted,
        cluster(
          'ClientCidrs',
          (props.clientCidrs ?? []).join(','),
          'databaseClientCidrs',
          P.cidrList,
        ),
        bool('PemEnabled', pem !== undefined, 'Add the PEM pg_hba rules'),
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
      ],
    },
    pemBackend: edbToken
      ? {
          description: 'pem-ha: PEM server backend configuration (configure-pem-server.sh -t 3)',
          scripts: ['pem-lib.sh', 'pem-backend.sh'],
          timeoutSeconds: 3600,
          parameters: [member[1], agentId, backends, trusted, major, secretPrefix, edbToken],
        }
      : undefined,
    pemWeb: edbToken
      ? {
          description: 'pem-ha: PEM web application (configure-pem-server.sh -t 2)',
          scripts: ['pem-lib.sh', 'pem-web.sh'],
          timeoutSeconds: 3600,
          parameters: [agentId, backends, major, secretPrefix, edbToken],
        }
      : undefined,
  };
}

function validate(props: NodeDocumentsProps): void {
  const lists: [string, readonly string[]][] = [
    ['etcdMembers', props.etcdMembers.map((m) => m.address)],
    ['backendAddresses', props.backendAddresses],
    ['trustedCidrs', props.trustedCidrs],
    ['clientCidrs', props.clientCidrs ?? []],
  ];
  for (const [prop, values] of lists) {
    if (values.some((value) => Token.isUnresolved(value))) {
      throw new Error(
        `NodeDocuments: ${prop} must be known at synth time (they become document defaults); got a deploy-time token`,
      );
    }
  }
  if (props.etcdMembers.length < 1 || props.backendAddresses.length < 1) {
    throw new Error(
      'NodeDocuments: etcdMembers and backendAddresses must not be empty; got an empty list',
    );
  }
}
