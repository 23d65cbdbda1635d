import {
  ConditionalCheckFailedException,
  DeleteItemCommand,
  DynamoDBClient,
  PutItemCommand,
} from '@aws-sdk/client-dynamodb';
import { DescribeExecutionCommand, ExecutionDoesNotExist, SFNClient } from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import { acquireLock, LockHolder, releaseLock } from '../../functions/runbook-lock/lock';
import { handler } from '../../functions/runbook-lock/handler';

const dynamodb = new DynamoDBClient({ region: 'local-1' });
const sfn = new SFNClient({ region: 'local-1' });
const table = mockClient(dynamodb);
const stepFunctions = mockClient(sfn);
const NOW = new Date('2026-12-03T12:00:00Z');
const execution = (name: string) =>
  `arn:aws:states:local-1:000000000000:execution:pem-ha-${name.split('-')[0]}:${name}`;
const ROTATION: LockHolder = {
  runbook: 'rotation',
  execution: execution('rotation-1'),
  since: '2026-12-03T11:58:00.000Z',
};
const refusedBecause = (holder: LockHolder) =>
  new ConditionalCheckFailedException({
    message: 'The conditional request failed',
    $metadata: {},
    Item: {
      lockId: { S: 'runbooks' },
      runbook: { S: holder.runbook },
      execution: { S: holder.execution },
      since: { S: holder.since },
    },
  });
const UPGRADE = { runbook: 'upgrade', execution: execution('upgrade-7'), holdSeconds: 21600 };

beforeEach(() => {
  table.reset();
  stepFunctions.reset();
});

describe('taking the runbook lock', () => {
  test('Given the lock free, when an upgrade takes it, then one conditional put records the upgrade until its state machine timeout', async () => {
    table.on(PutItemCommand).resolves({});

    const acquired = await acquireLock({ dynamodb, sfn }, 'lock-table', UPGRADE, NOW);

    expect(acquired).toEqual({
      holder: { runbook: 'upgrade', execution: UPGRADE.execution, since: NOW.toISOString() },
    });
    const puts = table.commandCalls(PutItemCommand);
    expect(puts).toHaveLength(1);
    expect(puts[0].args[0].input).toMatchObject({
      TableName: 'lock-table',
      ConditionExpression: 'attribute_not_exists(lockId) OR execution = :me OR expiresAt < :now',
      Item: { expiresAt: { N: String(NOW.getTime() / 1000 + 21600) } },
    });
  });

  test('Given a running rotation holding it, then the upgrade is refused with RunbookAlreadyRunningError naming the rotation, and the lock is left as it was', async () => {
    table.on(PutItemCommand).rejects(refusedBecause(ROTATION));
    stepFunctions.on(DescribeExecutionCommand).resolves({ status: 'RUNNING' });

    const refusal = acquireLock({ dynamodb, sfn }, 'lock-table', UPGRADE, NOW);

    await expect(refusal).rejects.toMatchObject({
      name: 'RunbookAlreadyRunningError',
      message: expect.stringContaining(
        'the rotation runbook (execution rotation-1, since 2026-12-03T11:58:00.000Z) holds',
      ),
    });
    expect(table.commandCalls(PutItemCommand)).toHaveLength(1);
    expect(table.commandCalls(DeleteItemCommand)).toHaveLength(0);
  });

  test.each([['FAILED'], ['TIMED_OUT'], ['ABORTED'], ['SUCCEEDED']])(
    'Given the holder ended %s without releasing it, then the lock is taken over only if that holder is still the one recorded',
    async (status) => {
      table.on(PutItemCommand).rejectsOnce(refusedBecause(ROTATION)).resolves({});
      stepFunctions.on(DescribeExecutionCommand).resolves({ status: status as never });

      const acquired = await acquireLock({ dynamodb, sfn }, 'lock-table', UPGRADE, NOW);

      expect(acquired.tookOverFrom).toEqual({ ...ROTATION, status });
      expect(table.commandCalls(PutItemCommand)[1].args[0].input).toMatchObject({
        ConditionExpression: 'execution = :previous',
        ExpressionAttributeValues: { ':previous': { S: ROTATION.execution } },
      });
    },
  );

  test('Given the holder gone from Step Functions, then it is taken over', async () => {
    table.on(PutItemCommand).rejectsOnce(refusedBecause(ROTATION)).resolves({});
    stepFunctions
      .on(DescribeExecutionCommand)
      .rejects(new ExecutionDoesNotExist({ message: 'gone', $metadata: {} }));

    const acquired = await acquireLock({ dynamodb, sfn }, 'lock-table', UPGRADE, NOW);

    expect(acquired.tookOverFrom?.status).toBe('GONE');
  });

  test('Given a backup takes over the ended holder first, then the upgrade is refused naming the backup', async () => {
    const backup = {
      runbook: 'backup',
      execution: execution('backup-3'),
      since: NOW.toISOString(),
    };
    table
      .on(PutItemCommand)
      .rejectsOnce(refusedBecause(ROTATION))
      .rejectsOnce(refusedBecause(backup));
    stepFunctions
      .on(DescribeExecutionCommand, { executionArn: ROTATION.execution })
      .resolves({ status: 'FAILED' })
      .on(DescribeExecutionCommand, { executionArn: backup.execution })
      .resolves({ status: 'RUNNING' });

    await expect(acquireLock({ dynamodb, sfn }, 'lock-table', UPGRADE, NOW)).rejects.toThrow(
      'the backup runbook (execution backup-3',
    );
  });

  test('Given DynamoDB fails otherwise, then the error is not mistaken for a refusal', async () => {
    table.on(PutItemCommand).rejects(new Error('ProvisionedThroughputExceededException'));
    await expect(acquireLock({ dynamodb, sfn }, 'lock-table', UPGRADE, NOW)).rejects.toThrow(
      'ProvisionedThroughputExceededException',
    );
  });
});

describe('releasing the runbook lock', () => {
  test('Given the execution holds it, then it is deleted on that condition', async () => {
    table.on(DeleteItemCommand).resolves({});
    await expect(releaseLock(dynamodb, 'lock-table', ROTATION.execution)).resolves.toBe(true);
    expect(table.commandCalls(DeleteItemCommand)[0].args[0].input).toMatchObject({
      ConditionExpression: 'execution = :me',
      ExpressionAttributeValues: { ':me': { S: ROTATION.execution } },
    });
  });

  test('Given another execution holds it, then nothing is released', async () => {
    table.on(DeleteItemCommand).rejects(refusedBecause(ROTATION));
    await expect(releaseLock(dynamodb, 'lock-table', UPGRADE.execution)).resolves.toBe(false);
  });
});

describe('the lock function', () => {
  test.each([
    [{ action: 'take' }, 'action must be acquire or release; given "take"'],
    [
      { action: 'acquire', runbook: 'upgrade', execution: 'self', holdSeconds: 60 },
      'execution must be a Step Functions execution ARN; given "self"',
    ],
    [
      { action: 'acquire', runbook: 'upgrade', execution: UPGRADE.execution, holdSeconds: 0 },
      'holdSeconds must be a whole number of seconds above 0; given 0',
    ],
    [{ action: 'release' }, 'execution must be a Step Functions execution ARN; given undefined'],
  ])(
    'Given the event %j, then it fails with InvalidRequestError naming the field, touching no lock',
    async (event, message) => {
      process.env.LOCK_TABLE = 'lock-table';
      await expect(handler(event as never)).rejects.toMatchObject({
        name: 'InvalidRequestError',
        message,
      });
      expect(table.calls()).toHaveLength(0);
    },
  );
});
