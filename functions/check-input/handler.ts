import { InvalidRequestError } from '../lib/ssm-run';
import { logger, withLambdaContext } from '../lib/logger';
import { checkRunbookInput } from '../lib/runbook-inputs';

export interface CheckInputEvent {
  /** Which runbook's rules apply (functions/lib/runbook-inputs.ts). */
  readonly runbook: string;
  /** The execution's input, as given. */
  readonly input: unknown;
}

/**
 * Step Functions task, a runbook's first state: throws InvalidInputError
 * when the execution input has a field the runbook does not take or a value
 * it does not allow; returns nothing otherwise.
 */
export const handler = withLambdaContext(async (event: CheckInputEvent) => {
  if (typeof event !== 'object' || event === null || typeof event.runbook !== 'string') {
    throw new InvalidRequestError(
      `the event must be {"runbook": <name>, "input": <execution input>}; got ${JSON.stringify(event)}`,
    );
  }
  checkRunbookInput(event.runbook, event.input);
  logger.info('runbook input accepted', { runbook: event.runbook });
  return {};
});
