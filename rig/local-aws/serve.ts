import { connect } from 'node:net';
import { DYNAMODB_PORT } from '../object-storage/object-storage';
import type { RigPlan } from '../plan';
import { rigResourceValues, seedSecrets } from '../plan';
import { resolveIntrinsics, resourcesOfType, SynthesizedTemplate } from '../template';
import type { CommandDocument } from './documents';
import { ACCOUNT, LocalAws, localAwsEndpoints, REGION } from './server';

const PSEUDO = { region: REGION, accountId: ACCOUNT };

export interface ServeOptions {
  /** The host's address on the rig bridge: the endpoint answers on its port 443. */
  readonly address: string;
  readonly template: SynthesizedTemplate;
  readonly plan: RigPlan;
  /** Seed a stand-in EDB repository token. @default false */
  readonly pem?: boolean;
}

/**
 * Serves the rig's AWS endpoint on 443, where the VPC's interface endpoints
 * answer (the nodes' own egress rules admit it), and gives it what a deploy
 * creates: the template's documents, the nodes as managed instances, the
 * secrets. The handlers run in this process: this process's environment gets
 * the endpoint, so their unchanged SDK clients find it.
 */
export async function serveRigAws(
  aws: LocalAws,
  options: ServeOptions,
): Promise<{ readonly shared: boolean }> {
  let shared = false;
  const url = await aws.listen(options.address, 443).catch(async (error: NodeJS.ErrnoException) => {
    // Another process of this rig serves it (the nodes' agents poll that one):
    // this process's functions call it too, so both see the same commands and
    // secrets, and their runbooks meet at the cluster's lock.
    if (error.code === 'EADDRINUSE' && (await answers(options.address, 443))) {
      shared = true;
      return `http://${options.address}:443`;
    }
    throw new Error(
      `cannot serve the rig's AWS endpoint on ${options.address}:443 (${error.message})`,
    );
  });
  const credentials = {
    AWS_REGION: REGION,
    AWS_DEFAULT_REGION: REGION,
    AWS_ACCESS_KEY_ID: 'rig',
    AWS_SECRET_ACCESS_KEY: 'rig',
  };
  const endpoints = localAwsEndpoints(url);
  Object.assign(process.env, credentials, endpoints, {
    // DynamoDB is a regional service outside the VPC, as S3 is: the storage node serves both.
    AWS_ENDPOINT_URL_DYNAMODB: `http://${options.plan.storageAddress}:${DYNAMODB_PORT}`,
  });
  // Their per-call INFO lines would drown the rig's own progress.
  process.env.POWERTOOLS_LOG_LEVEL ??= 'WARN';
  // No CloudWatch here to read the metrics' EMF lines from stdout.
  process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
  // CloudFormation resolves what a document's defaults name (the backup bucket).
  const resources = rigResourceValues(options.plan, options.template, PSEUDO);
  for (const [, document] of resourcesOfType(options.template, 'AWS::SSM::Document')) {
    aws.ssm.registerDocument(
      String(document.Properties?.Name),
      resolveIntrinsics(document.Properties?.Content, resources, PSEUDO) as CommandDocument,
    );
  }
  for (const node of options.plan.nodes) {
    aws.ssm.registerInstance(node.instanceId, { env: { ...credentials, ...endpoints } });
  }
  const extra = options.pem ? [{ name: 'pem-ha/edb-repo-token', value: 'rig-token-not-used' }] : [];
  for (const secret of seedSecrets(options.template, extra))
    aws.seedSecret(secret.name, secret.value);
  return { shared };
}

/** Whether something accepts connections at address:port within a second. */
function answers(address: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: address, port, timeout: 1000 });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.once('timeout', () => done(false));
  });
}
