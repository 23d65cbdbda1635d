import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SSMClient } from '@aws-sdk/client-ssm';
import { ClusterCaSettings, ensureClusterCa, NodeTrust } from '../lib/ca-store';
import { objectAt, textAt } from '../lib/event-shape';
import { setting } from '../lib/env';
import { logger, withLambdaContext } from '../lib/logger';
import { publishRoots } from '../lib/roots-parameter';
import { beginRootRollover, finishRootRollover } from '../lib/root-rollover';
import { InvalidRequestError } from '../lib/ssm-run';

const secrets = new SecretsManagerClient({});
const ssm = new SSMClient({});

export interface ClusterCaEvent {
  /** @default 'ensure' */
  readonly action?: 'ensure' | 'begin-root-rollover' | 'finish-root-rollover';
  /**
   * With `ensure`: each node's preparation output, whose `trusted-root=`
   * lines name the roots it trusts. @default - no node reported
   */
  readonly nodes?: readonly { readonly node: string; readonly output: string }[];
}

const EVENT_FIELDS = ['action', 'nodes'];
const ACTIONS = ['ensure', 'begin-root-rollover', 'finish-root-rollover'] as const;
type Action = (typeof ACTIONS)[number];

/** The action and the roots each node reported, or InvalidRequestError naming the field. */
export function parseCaEvent(raw: unknown): { action: Action; nodeTrust: NodeTrust[] } {
  const event = objectAt(raw === undefined ? {} : raw, 'the event') as ClusterCaEvent;
  const unknown = Object.keys(event).filter((key) => !EVENT_FIELDS.includes(key));
  if (unknown.length > 0) {
    throw new InvalidRequestError(
      `the event may hold ${EVENT_FIELDS.join(' and ')}; got also ${unknown.join(', ')}`,
    );
  }
  const action = event.action ?? 'ensure';
  if (!ACTIONS.includes(action)) {
    throw new InvalidRequestError(
      `action must be ${ACTIONS.join(', ')}; got ${JSON.stringify(event.action)}`,
    );
  }
  if (event.nodes === undefined) return { action, nodeTrust: [] };
  if (!Array.isArray(event.nodes)) {
    throw new InvalidRequestError(`nodes must be a list; got ${JSON.stringify(event.nodes)}`);
  }
  const nodeTrust = event.nodes.map((entry, index) => {
    const fields = objectAt(entry, `nodes[${index}]`);
    const node = textAt(fields, 'node', `nodes[${index}]`);
    if (typeof fields.output !== 'string') {
      throw new InvalidRequestError(
        `nodes[${index}].output must be the node's output text; got ${fields.output === undefined ? 'nothing' : JSON.stringify(fields.output)}`,
      );
    }
    const roots = [...fields.output.matchAll(/^trusted-root=([0-9a-f]{64})$/gm)].map((m) => m[1]);
    return { node, roots };
  });
  return { action, nodeTrust };
}

/**
 * Step Functions task over the CA secrets: make the CA once (`ensure`, the
 * bootstrap's step), or the two halves of a root rollover; then publishes the
 * trusted roots for clients. Logs no key material.
 */
export const handler = withLambdaContext(async (raw: unknown) => {
  const { action, nodeTrust } = parseCaEvent(raw);
  const result = await changeCa(action, nodeTrust);
  const published = await publishRoots(
    ssm,
    secrets,
    setting('TRUST_SECRET'),
    setting('ROOTS_PARAMETER'),
  );
  logger.info('trusted roots published', { ...published });
  return result;
});

async function changeCa(action: Action, nodeTrust: NodeTrust[]) {
  const settings: ClusterCaSettings = {
    clusterName: setting('CLUSTER_NAME'),
    rootSecretId: setting('ROOT_CA_SECRET'),
    intermediateSecretId: setting('INTERMEDIATE_CA_SECRET'),
    trustSecretId: setting('TRUST_SECRET'),
  };
  switch (action) {
    case 'ensure': {
      const { created } = await ensureClusterCa(secrets, settings, nodeTrust);
      logger.info(created ? 'cluster CA created' : 'cluster CA already exists');
      return { created };
    }
    case 'begin-root-rollover': {
      const step = await beginRootRollover(secrets, settings);
      logger.info('root rollover begun: both roots trusted, new issuing CA', { roots: step.roots });
      return step;
    }
    case 'finish-root-rollover': {
      const step = await finishRootRollover(secrets, settings);
      logger.info('root rollover finished: only the new root trusted', { roots: step.roots });
      return step;
    }
  }
}
