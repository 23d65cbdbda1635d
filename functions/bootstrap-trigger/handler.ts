import { SFNClient } from '@aws-sdk/client-sfn';
import type { CdkCustomResourceEvent, CdkCustomResourceIsCompleteEvent } from 'aws-lambda';
import { logger, withLambdaContext } from '../lib/logger';
import * as trigger from './trigger';

const sfn = new SFNClient({});

/** Custom resource onEvent: starts the bootstrap execution on create and update. */
export const onEvent = withLambdaContext(async (event: CdkCustomResourceEvent) => {
  logger.info('bootstrap request', { requestType: event.RequestType, requestId: event.RequestId });
  return trigger.onEvent(event, sfn);
});

/** Custom resource isComplete: done when the execution succeeded; its failure fails the deploy. */
export const isComplete = withLambdaContext(async (event: CdkCustomResourceIsCompleteEvent) => {
  const result = await trigger.isComplete(event, sfn);
  logger.info('bootstrap progress', {
    requestType: event.RequestType,
    complete: result.IsComplete,
  });
  return result;
});
