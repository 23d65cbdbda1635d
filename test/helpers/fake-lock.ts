/**
 * The runbook lock's acquire task for the fake runbooks: the real lock logic
 * over mocked DynamoDB and Step Functions clients, the lock free or held by a
 * running execution.
 */
import {
  ConditionalCheckFailedException,
  DynamoDBClient,
  PutItemCommand,
} from '@aws-sdk/client-dynamodb';
import { DescribeExecutionCommand, SFNClient } from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import { AcquireRequest, acquireLock, LockHolder } from '../../functions/runbook-lock/lock';

export function fakeLock(heldBy?: LockHolder) {
  const dynamodb = new DynamoDBClient({ region: 'local-1' });
  const sfn = new SFNClient({ region: 'local-1' });
  const table = mockClient(dynamodb);
  if (heldBy) {
    table.on(PutItemCommand).rejects(
      new ConditionalCheckFailedException({
        message: 'The conditional request failed',
        $metadata: {},
        Item: {
          runbook: { S: heldBy.runbook },
          execution: { S: heldBy.execution },
          since: { S: heldBy.since },
        },
      }),
    );
  } else {
    table.on(PutItemCommand).resolves({});
  }
  mockClient(sfn).on(DescribeExecutionCommand).resolves({ status: 'RUNNING' });
  return (request: AcquireRequest) => acquireLock({ dynamodb, sfn }, 'runbook-lock', request);
}

/** A running rotation holding the lock. */
export const ROTATION_HOLDS_LOCK: LockHolder = {
  runbook: 'rotation',
  execution: 'arn:aws:states:local-1:000000000000:execution:rotation:daily-1',
  since: '2026-12-03T01:00:00.000Z',
};
