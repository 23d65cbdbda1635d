import { Annotations, CustomResource } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { needsRestart, PostgresqlParameters } from '../config/postgresql-parameters';
import type { BootstrapFlow } from './bootstrap-flow';
import type { RollingUpgrade } from './rolling-upgrade';

export interface LiveSettingsProps {
  /** Its runs converge Patroni's dynamic settings (PATCH /config on the primary). */
  readonly bootstrap: BootstrapFlow;
  /** Its `settings` component restarts the members that wait for a restart. */
  readonly upgrade: RollingUpgrade;
  readonly postgresqlParameters: PostgresqlParameters;
}

/**
 * Settings that reach the running cluster. The bootstrap applies dynamic
 * settings and reload-only parameters on every deploy that changes them;
 * after it, a deploy that changed postgresqlParameters runs the upgrade
 * runbook's `settings` component, which restarts each member Patroni reports
 * pending_restart: replicas one at a time, the primary after one switchover.
 * Synth says which parameters need that restart.
 */
export class LiveSettings extends Construct {
  /** The deploy-time run of the rolling restart. */
  readonly rollout: CustomResource;

  constructor(scope: Construct, id: string, props: LiveSettingsProps) {
    super(scope, id);
    const names = Object.keys(props.postgresqlParameters);
    const restart = names.filter((name) => needsRestart(name) === 'yes');
    const unknown = names.filter((name) => needsRestart(name) === 'unknown');
    if (restart.length) {
      Annotations.of(this).addInfo(
        `postgresqlParameters ${restart.join(', ')} need a PostgreSQL restart: a deploy that changes them ends with a rolling restart (replicas one at a time, then one switchover)`,
      );
    }
    if (unknown.length) {
      Annotations.of(this).addInfo(
        `postgresqlParameters ${unknown.join(', ')}: not PostgreSQL 17 parameters pem-ha knows, so whether they need a restart is not known here; the deploy restarts whichever members Patroni reports pending_restart`,
      );
    }
    this.rollout = props.bootstrap.runAfterBootstrap('SettingsRollout', {
      stateMachine: props.upgrade.stateMachine,
      input: { component: 'settings', version: 'latest' },
      revision: JSON.stringify(props.postgresqlParameters),
      resourceType: 'Custom::PemHaSettingsRollout',
      // A new cluster starts with its settings: nothing waits for a restart.
      skipCreate: true,
    });
  }
}
