import { SSMClient } from '@aws-sdk/client-ssm';
import { setting } from '../lib/env';
import { logger, withLambdaContext } from '../lib/logger';
import { type CommandRef, InvalidRequestError } from '../lib/ssm-run';
import { parseRestoreRequest, type RestoreRequest } from './request';
import { planRestore, readRepositoryBackups, type RestorePlan } from './target';

const ssm = new SSMClient({});

export type RestoreEvent =
  | {
      /** Checks the execution input. */
      readonly action: 'request';
      readonly input: unknown;
    }
  | {
      /** Checks the target against the backups the info command listed. */
      readonly action: 'plan';
      readonly request: RestoreRequest;
      readonly command: CommandRef;
    };

/** Step Functions task of the point-in-time restore: its checks before any node is touched. */
export const handler = withLambdaContext(
  async (event: RestoreEvent): Promise<RestoreRequest | RestorePlan> => {
    switch (event?.action) {
      case 'request': {
        const request = parseRestoreRequest(event.input, setting('CLUSTER_NAME'));
        logger.info('restore requested', { request });
        return request;
      }
      case 'plan': {
        const plan = planRestore(event.request, await readRepositoryBackups(ssm, event.command));
        logger.info('restore planned', { plan });
        return plan;
      }
      default:
        throw new InvalidRequestError(
          `action must be request or plan; given ${JSON.stringify((event as { action?: unknown })?.action)}`,
        );
    }
  },
);
