import { EC2Client } from '@aws-sdk/client-ec2';
import { SSMClient } from '@aws-sdk/client-ssm';
import { logger, withLambdaContext } from '../lib/logger';
import { InvalidRequestError } from '../lib/ssm-run';
import { PollEvent, pollNodeCommand, StartEvent, startNodeCommand } from './command';

const ssm = new SSMClient({});
const ec2 = new EC2Client({});

/**
 * Step Functions task: `start` sends a node document, `poll` reports on it.
 * Errors keep their names (CommandFailedError, InstanceNotRunningError, ...) for Retry/Catch.
 */
export const handler = withLambdaContext(async (event: StartEvent | PollEvent) => {
  switch (event?.action) {
    case 'start': {
      const command = await startNodeCommand(ssm, event);
      logger.info('command sent', {
        node: event.node.name,
        document: event.document,
        commandId: command.commandId,
      });
      return command;
    }
    case 'poll': {
      const outcome = await pollNodeCommand(ssm, ec2, event);
      logger.info('command polled', {
        node: event.command.nodeName,
        commandId: event.command.commandId,
        state: outcome.state,
      });
      return outcome;
    }
    default:
      throw new InvalidRequestError(
        `action must be start or poll; given ${JSON.stringify((event as { action?: unknown })?.action)}`,
      );
  }
});
