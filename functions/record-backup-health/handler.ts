import { SSMClient } from '@aws-sdk/client-ssm';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { setting } from '../lib/env';
import { logger, withLambdaContext } from '../lib/logger';
import { BACKUP_METRICS } from '../lib/metric-names';
import { CommandRef, InvalidRequestError } from '../lib/ssm-run';
import {
  BackupHealth,
  parseBackupStatus,
  parseDataVolume,
  publishBackupHealth,
  publishDataVolume,
  readStatusOutput,
} from './health';

const ssm = new SSMClient({});
const metrics = new Metrics({
  namespace: BACKUP_METRICS.namespace,
  serviceName: BACKUP_METRICS.service,
});

export interface RecordBackupHealthEvent {
  /** The backup document's status command on the primary. */
  readonly command: CommandRef;
}

/** Step Functions task: publishes the primary's data volume, archive and backup health. */
export const handler = withLambdaContext(
  async (event: RecordBackupHealthEvent): Promise<BackupHealth> => {
    if (typeof event?.command?.commandId !== 'string') {
      throw new InvalidRequestError(
        `command must be the status command's reference; given ${JSON.stringify(event?.command)}`,
      );
    }
    const clusterName = setting('CLUSTER_NAME');
    const stdout = await readStatusOutput(ssm, event.command);
    const volume = parseDataVolume(stdout);
    if (volume) publishDataVolume(metrics, clusterName, volume);
    const health = parseBackupStatus(event.command.nodeName, stdout);
    publishBackupHealth(metrics, clusterName, health);
    logger.info('backup health recorded', { health });
    return health;
  },
);
