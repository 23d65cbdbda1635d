/**
 * One runbook at a time per cluster: a single DynamoDB item names the
 * execution that holds the cluster's runbook lock. It is taken with a
 * conditional put, so two runbooks started in the same second cannot both
 * win. A holder whose execution has ended (succeeded, failed, timed out,
 * aborted) holds nothing: the next runbook takes the lock over, so a run that
 * died before its release never blocks the cluster. The item's expiry (the
 * holder's own state machine timeout) is the last resort when Step Functions
 * cannot be asked.
 */
import {
  ConditionalCheckFailedException,
  DeleteItemCommand,
  type DynamoDBClient,
  PutItemCommand,
} from '@aws-sdk/client-dynamodb';
import {
  DescribeExecutionCommand,
  ExecutionDoesNotExist,
  type SFNClient,
} from '@aws-sdk/client-sfn';
import { ErrorName, messageError } from '../lib/errors';

export class RunbookAlreadyRunningError extends messageError(ErrorName.RunbookAlreadyRunning) {}

/** The one item every runbook of the cluster competes for (the table is the cluster's own). */
export const LOCK_ID = 'runbooks';

export interface LockClients {
  readonly dynamodb: DynamoDBClient;
  readonly sfn: SFNClient;
}

export interface LockHolder {
  /** The runbook's name as its state machine gives it (`rotation`, `upgrade`, ...). */
  readonly runbook: string;
  /** The holding execution's ARN (`$$.Execution.Id`). */
  readonly execution: string;
  /** When it took the lock (ISO 8601). */
  readonly since: string;
}

export interface AcquireRequest {
  readonly runbook: string;
  readonly execution: string;
  /** How long the lock lasts at most: the runbook's state machine timeout. */
  readonly holdSeconds: number;
}

export interface Acquired {
  readonly holder: LockHolder;
  /** The ended execution the lock was taken over from, and how it ended. */
  readonly tookOverFrom?: LockHolder & { readonly status: string };
}

/** How many times a takeover may lose a race to a third runbook before giving up. */
const TAKEOVER_ATTEMPTS = 3;

const executionName = (arn: string) => arn.split(':').pop() ?? arn;

function holderOf(item: Record<string, { S?: string }> | undefined): LockHolder | undefined {
  if (!item?.execution?.S) return undefined;
  return {
    runbook: item.runbook?.S ?? 'unknown',
    execution: item.execution.S,
    since: item.since?.S ?? 'unknown',
  };
}

/** The holder's execution status; `GONE` when Step Functions no longer knows it. */
async function executionStatus(sfn: SFNClient, executionArn: string): Promise<string> {
  try {
    const answer = await sfn.send(new DescribeExecutionCommand({ executionArn }));
    return answer.status ?? 'UNKNOWN';
  } catch (error) {
    if (error instanceof ExecutionDoesNotExist) return 'GONE';
    throw error;
  }
}

/**
 * Takes the cluster's runbook lock for `request.execution`, or throws
 * RunbookAlreadyRunningError naming the running holder. Taking it again from
 * the same execution (a retried task) succeeds.
 */
export async function acquireLock(
  clients: LockClients,
  table: string,
  request: AcquireRequest,
  now: Date = new Date(),
): Promise<Acquired> {
  const holder: LockHolder = {
    runbook: request.runbook,
    execution: request.execution,
    since: now.toISOString(),
  };
  const nowSeconds = Math.floor(now.getTime() / 1000);
  const item = {
    lockId: { S: LOCK_ID },
    runbook: { S: holder.runbook },
    execution: { S: holder.execution },
    since: { S: holder.since },
    expiresAt: { N: String(nowSeconds + request.holdSeconds) },
  };
  const put = async (condition: string, values: Record<string, { S: string } | { N: string }>) => {
    try {
      await clients.dynamodb.send(
        new PutItemCommand({
          TableName: table,
          Item: item,
          ConditionExpression: condition,
          ExpressionAttributeValues: values,
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      return undefined;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) {
        return holderOf(error.Item as Record<string, { S?: string }> | undefined) ?? null;
      }
      throw error;
    }
  };

  let current = await put('attribute_not_exists(lockId) OR execution = :me OR expiresAt < :now', {
    ':me': { S: request.execution },
    ':now': { N: String(nowSeconds) },
  });
  if (current === undefined) return { holder };
  for (let attempt = 1; attempt <= TAKEOVER_ATTEMPTS && current; attempt++) {
    const status = await executionStatus(clients.sfn, current.execution);
    if (status === 'RUNNING') break;
    const previous = current;
    // Only if the ended holder is still the one recorded: a third runbook may have taken it meanwhile.
    current = await put('execution = :previous', { ':previous': { S: previous.execution } });
    if (current === undefined) return { holder, tookOverFrom: { ...previous, status } };
  }
  const who = current
    ? `the ${current.runbook} runbook (execution ${executionName(current.execution)}, since ${current.since})`
    : 'another runbook';
  throw new RunbookAlreadyRunningError(
    `${who} holds the cluster's runbook lock; this ${request.runbook} run touched nothing. ` +
      'Wait for that run to end (or stop it), then start this one again.',
  );
}

/** Releases the lock if `execution` holds it; returns whether it did. */
export async function releaseLock(
  dynamodb: DynamoDBClient,
  table: string,
  execution: string,
): Promise<boolean> {
  try {
    await dynamodb.send(
      new DeleteItemCommand({
        TableName: table,
        Key: { lockId: { S: LOCK_ID } },
        ConditionExpression: 'execution = :me',
        ExpressionAttributeValues: { ':me': { S: execution } },
      }),
    );
    return true;
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return false;
    throw error;
  }
}
