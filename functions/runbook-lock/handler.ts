import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SFNClient } from '@aws-sdk/client-sfn';
import { setting } from '../lib/env';
import { logger, withLambdaContext } from '../lib/logger';
import { InvalidRequestError } from '../lib/ssm-run';
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

function field<T>(event: object, name: string, ok: (value: unknown) => boolean, allowed: string) {
  const value = (event as Record<string, unknown>)[name];
  if (!ok(value)) {
    throw new InvalidRequestError(`${name} must be ${allowed}; given ${JSON.stringify(value)}`);
  }
  return value as T;
}

const execution = (event: object) =>
  field<string>(
    event,
    'execution',
    (v) => typeof v === 'string' && EXECUTION_ARN.test(v),
    'a Step Functions execution ARN',
  );

/** Takes the cluster's runbook lock for an execution, or releases it when the execution ends. */
export const handler = withLambdaContext(async (event: RunbookLockEvent) => {
  const table = setting('LOCK_TABLE');
  switch (event?.action) {
    case 'acquire': {
      const acquired = await acquireLock({ dynamodb, sfn }, table, {
        runbook: field<string>(
          event,
          'runbook',
          (v) => typeof v === 'string' && /^[a-z-]+$/.test(v),
          'a runbook name',
        ),
        execution: execution(event),
        holdSeconds: field<number>(
          event,
          'holdSeconds',
          (v) => Number.isInteger(v) && (v as number) > 0,
          'a whole number of seconds above 0',
        ),
      });
      logger.info('runbook lock taken', { ...acquired });
      return acquired;
    }
    case 'release': {
      const released = await releaseLock(dynamodb, table, execution(event));
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
