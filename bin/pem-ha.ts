#!/usr/bin/env node
import { App } from 'aws-cdk-lib';
import { buildApp } from '../infra/app';
import { ConfigError } from '../infra/config/setting';

const app = new App();
try {
  buildApp(app);
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  console.error(error.message);
  process.exit(1);
}
