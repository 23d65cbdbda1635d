import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { loadConfig, type PemHaConfig } from './config/load-config';
import { PemHaStack } from './stacks/pem-ha-stack';

export const STACK_DESCRIPTION =
  'pem-ha: highly available Postgres Enterprise Manager (Patroni, etcd, NLB)';

export interface BuildAppOptions {
  /**
   * Adds the cdk-nag AwsSolutions pack as a validation plugin: every
   * synthesis (`cdk synth`, `app.synth()`, `Template.fromStack`) runs it and
   * throws on any unacknowledged finding. Tests that only read the template
   * turn it off; test/infra/nag.test.ts keeps it.
   * @default true
   */
  readonly nag?: boolean;
}

/**
 * The app as `cdk synth` and `cdk deploy` build it (bin/pem-ha.ts): settings
 * from the app's context, one PemHaStack, cdk-nag. Tests and the rig build it
 * through here too. Throws ConfigError on a bad setting.
 */
export function buildApp(
  app: App,
  { nag = true }: BuildAppOptions = {},
): { stack: PemHaStack; config: PemHaConfig } {
  const config = loadConfig((key) => app.node.tryGetContext(key));
  const stack = new PemHaStack(app, config.stackName, {
    config,
    env: { account: config.account, region: config.region },
    description: STACK_DESCRIPTION,
    terminationProtection: true,
  });
  if (nag) Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return { stack, config };
}
