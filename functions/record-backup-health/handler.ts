import { SSMClient } from '@aws-sdk/client-ssm';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { setting } from '../lib/env';
import { logger, withLambdaContext } from '../lib/logger';
import { BACKUP_METRICS } from '../lib/metric-names';
import { CommandRef, InvalidRequestError } from '../lib/ssm-run';
import { BackupHealth, publishBackupHealth, readBackupHealth } from './health';

const ssm = new SSMClient({});
const metrics = new Metrics({
  namespace: BACKUP_METRICS.namespace,
  serviceName: BACKUP_METRICS.service,
});

export interface RecordBackupHealthEvent {
  /** The backup document's status command on the primary. */
  readonly command: CommandRef;
}

/** Step Functions task: publishes the primary's archive and backup health. */
export const handler = withLambdaContext(
  async (event: RecordBackupHealthEvent): Promise<BackupHealth> => {
    if (typeof event?.command?.commandId !== 'string') {
      throw new InvalidRequestError(
        `command must be the status command's reference; given ${JSON.stringify(event?.command)}`,
      );
    }
    const health = await readBackupHealth(ssm, event.command);
    publishBackupHealth(metrics, setting('CLUSTER_NAME'), health);
    logger.info('backup health recorded', { health });
    return health;
  },
);
