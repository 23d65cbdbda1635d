import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';

export const logger = new Logger({ serviceName: 'pem-ha' });

/** As Lambda calls it; callers without a context (tests) get Middy's empty one. */
export type LambdaHandler<TEvent, TResult> = (event: TEvent, context?: Context) => Promise<TResult>;

/**
 * `middy(handler).use(injectLambdaContext(logger))`, as Powertools' examples wrap a handler: every
 * log line carries the request id, function and cold start. The event, the result and any error
 * (its name intact) pass through unchanged. Middy's early timeout is off: it would fail the task
 * while the handler's calls go on in the sandbox, for a later invocation to resume.
 */
export function withLambdaContext<TEvent, TResult>(
  handler: (event: TEvent) => Promise<TResult>,
): LambdaHandler<TEvent, TResult> {
  // Middy's type wants a context and a callback; tests call handlers with the event alone.
  return middy(handler, { timeoutEarlyInMillis: 0 }).use(
    injectLambdaContext(logger),
  ) as LambdaHandler<TEvent, TResult>;
}
