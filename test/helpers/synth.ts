import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { loadConfig } from '../../infra/config/load-config';
import { PemHaStack } from '../../infra/stacks/pem-ha-stack';

/**
 * Synthesizes the app the way bin/pem-ha.ts does, from settings given as
 * context (strings, as on the command line, or JSON values as in cdk.json).
 */
export function synthStack(settings: Record<string, unknown> = {}): {
  app: App;
  stack: PemHaStack;
  template: Template;
} {
  const app = new App({ context: { ...settings, 'aws:cdk:bundling-stacks': [] } });
  const config = loadConfig((key) => app.node.tryGetContext(key));
  const stack = new PemHaStack(app, config.stackName, {
    config,
    env: { account: config.account, region: config.region },
  });
  return { app, stack, template: Template.fromStack(stack) };
}

export interface ValidationReport {
  pluginReports: Array<{
    pluginName: string;
    conclusion: string;
    violations: unknown[];
    suppressedViolations: Array<{
      ruleName: string;
      violatingConstructs: Array<{ constructPath: string; acknowledgement?: { reason?: string } }>;
    }>;
  }>;
}

/**
 * Runs cdk-nag AwsSolutions over the app as `cdk synth` does and returns the
 * validation report it writes. Synthesis throws on any unacknowledged finding.
 */
export function nagReport(settings: Record<string, unknown> = {}): ValidationReport {
  const app = new App({ context: { ...settings, 'aws:cdk:bundling-stacks': [] } });
  const config = loadConfig((key) => app.node.tryGetContext(key));
  new PemHaStack(app, config.stackName, {
    config,
    env: { account: config.account, region: config.region },
  });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  const assembly = app.synth();
  return JSON.parse(readFileSync(join(assembly.directory, 'validation-report.json'), 'utf8'));
}

/** Resources of one type, by logical id. */
export function resourcesOf(
  template: Template,
  type: string,
): Record<string, { Properties: Record<string, unknown> }> {
  return template.findResources(type) as Record<string, { Properties: Record<string, unknown> }>;
}
