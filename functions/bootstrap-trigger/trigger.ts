import {
  DescribeExecutionCommand,
  type SFNClient,
  StartExecutionCommand,
} from '@aws-sdk/client-sfn';
import type {
  CdkCustomResourceEvent,
  CdkCustomResourceIsCompleteEvent,
  CdkCustomResourceIsCompleteResponse,
  CdkCustomResourceResponse,
} from 'aws-lambda';
import { ErrorName, PemHaError } from '../lib/errors';

const PHYSICAL_ID = 'pem-ha-bootstrap';

/** The bootstrap execution ended without success; its error and cause are in the message. */
export class BootstrapFailedError extends PemHaError {
  constructor(executionArn: string, status: string, error?: string, cause?: string) {
    super(
      ErrorName.BootstrapFailed,
      `bootstrap execution ${executionArn} ended ${status}` +
        (error ? `: ${error}` : '') +
        (cause ? `\n${cause}` : ''),
    );
  }
}

function stateMachineArnOf(event: CdkCustomResourceEvent): string {
  const arn = event.ResourceProperties.StateMachineArn;
  if (typeof arn !== 'string' || !arn.startsWith('arn:')) {
    throw new Error(`StateMachineArn must be a state machine ARN; given ${JSON.stringify(arn)}`);
  }
  return arn;
}

/**
 * Create and Update start a bootstrap execution (every step is idempotent,
 * so an update that changed nothing on the nodes changes nothing there);
 * Delete leaves the nodes alone.
 */
export async function onEvent(
  event: CdkCustomResourceEvent,
  sfn: SFNClient,
): Promise<CdkCustomResourceResponse> {
  if (event.RequestType === 'Delete') return { PhysicalResourceId: event.PhysicalResourceId };
  const started = await sfn.send(
    new StartExecutionCommand({
      stateMachineArn: stateMachineArnOf(event),
      // One execution per CloudFormation request, also when the request is retried.
      name: `deploy-${event.RequestId}`.replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 80),
      input: '{}',
    }),
  );
  return { PhysicalResourceId: PHYSICAL_ID, Data: { ExecutionArn: started.executionArn } };
}

export async function isComplete(
  event: CdkCustomResourceIsCompleteEvent,
  sfn: SFNClient,
): Promise<CdkCustomResourceIsCompleteResponse> {
  if (event.RequestType === 'Delete') return { IsComplete: true };
  const executionArn = event.Data?.ExecutionArn;
  if (typeof executionArn !== 'string') {
    throw new Error('the onEvent response carried no ExecutionArn');
  }
  const execution = await sfn.send(new DescribeExecutionCommand({ executionArn }));
  switch (execution.status) {
    case 'RUNNING':
    case 'PENDING_REDRIVE':
      return { IsComplete: false };
    case 'SUCCEEDED':
      return { IsComplete: true, Data: { ExecutionArn: executionArn } };
    default:
      throw new BootstrapFailedError(
        executionArn,
        execution.status ?? 'UNKNOWN',
        execution.error,
        execution.cause,
      );
  }
}
