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

/** The runbook's execution ended without success; its error and cause are in the message. */
export class BootstrapFailedError extends PemHaError {
  constructor(executionArn: string, status: string, error?: string, cause?: string) {
    super(
      ErrorName.BootstrapFailed,
      `runbook execution ${executionArn} ended ${status}` +
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

/** The execution input a resource asks for (a JSON object as text), `{}` when none. */
function inputOf(event: CdkCustomResourceEvent): string {
  const input = event.ResourceProperties.Input ?? '{}';
  const parsed: unknown = typeof input === 'string' ? JSON.parse(input) : undefined;
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new Error(`Input must be a JSON object as text; given ${JSON.stringify(input)}`);
  }
  return input as string;
}

/** A resource with SkipCreate 'true' runs only on updates (a new cluster has nothing to apply). */
const skipped = (event: CdkCustomResourceEvent | CdkCustomResourceIsCompleteEvent) =>
  event.RequestType === 'Create' && event.ResourceProperties.SkipCreate === 'true';

/**
 * Create and Update start an execution of the resource's runbook (the
 * bootstrap: every step is idempotent, so an update that changed nothing on
 * the nodes changes nothing there); Delete leaves the nodes alone.
 */
export async function onEvent(
  event: CdkCustomResourceEvent,
  sfn: SFNClient,
): Promise<CdkCustomResourceResponse> {
  if (event.RequestType === 'Delete') return { PhysicalResourceId: event.PhysicalResourceId };
  const physicalId = event.ResourceProperties.PhysicalId ?? PHYSICAL_ID;
  if (skipped(event)) return { PhysicalResourceId: physicalId };
  const started = await sfn.send(
    new StartExecutionCommand({
      stateMachineArn: stateMachineArnOf(event),
      // One execution per CloudFormation request, also when the request is retried.
      name: `deploy-${event.RequestId}`.replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 80),
      input: inputOf(event),
    }),
  );
  return { PhysicalResourceId: physicalId, Data: { ExecutionArn: started.executionArn } };
}

export async function isComplete(
  event: CdkCustomResourceIsCompleteEvent,
  sfn: SFNClient,
): Promise<CdkCustomResourceIsCompleteResponse> {
  if (event.RequestType === 'Delete' || skipped(event)) return { IsComplete: true };
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
