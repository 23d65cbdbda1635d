import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SFNClient } from '@aws-sdk/client-sfn';
import { setting } from '../lib/env';
import { logger, withLambdaContext } from '../lib/logger';
import { check, InvalidRequestError } from '../lib/ssm-run';
import { acquireLock, releaseLock } from './lock';

const dynamodb = new DynamoDBClient({});
const sfn = new SFNClient({});

export type RunbookLockEvent =
  | {
      /** The first state of every runbook. */
      readonly action: 'acquire';
      readonly runbook: string;
      readonly execution: string;
      readonly holdSeconds: number;
    }
  | {
      /** From the EventBridge rule when an execution ends, however it ended. */
      readonly action: 'release';
      readonly execution: string;
    };

const EXECUTION_ARN = /^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:execution:[^:]+:[^:]+$/;

/** The execution ARN an event names, checked. */
function executionOf(event: { readonly execution?: unknown }): string {
  const { execution } = event;
  check(
    'execution',
    typeof execution === 'string' && EXECUTION_ARN.test(execution),
    'a Step Functions execution ARN',
    execution,
  );
  return execution as string;
}

/** Takes the cluster's runbook lock for an execution, or releases it when the execution ends. */
export const handler = withLambdaContext(async (event: RunbookLockEvent) => {
  const table = setting('LOCK_TABLE');
  switch (event?.action) {
    case 'acquire': {
      const { runbook, holdSeconds } = event;
      check(
        'runbook',
        typeof runbook === 'string' && /^[a-z-]+$/.test(runbook),
        'a runbook name',
        runbook,
      );
      const execution = executionOf(event);
      check(
        'holdSeconds',
        Number.isInteger(holdSeconds) && holdSeconds > 0,
        'a whole number of seconds above 0',
        holdSeconds,
      );
      const acquired = await acquireLock({ dynamodb, sfn }, table, {
        runbook,
        execution,
        holdSeconds,
      });
      logger.info('runbook lock taken', { ...acquired });
      return acquired;
    }
    case 'release': {
      const released = await releaseLock(dynamodb, table, executionOf(event));
      logger.info(released ? 'runbook lock released' : 'runbook lock not held by this execution', {
        execution: event.execution,
      });
      return { released };
    }
    default:
      throw new InvalidRequestError(
        `action must be acquire or release; given ${JSON.stringify((event as { action?: unknown })?.action)}`,
      );
  }
});
