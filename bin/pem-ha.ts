#!/usr/bin/env node
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { ConfigError } from '../infra/config/setting';
import { loadConfig } from '../infra/config/load-config';
import { PemHaStack } from '../infra/stacks/pem-ha-stack';

const app = new App();
try {
  const config = loadConfig((key) => app.node.tryGetContext(key));
  new PemHaStack(app, config.stackName, {
    config,
    env: { account: config.account, region: config.region },
    description: 'pem-ha: highly available Postgres Enterprise Manager (Patroni, etcd, NLB)',
    terminationProtection: true,
  });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  console.error(error.message);
  process.exit(1);
}
