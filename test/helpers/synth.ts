import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { buildApp } from '../../infra/app';
import type { PemHaStack } from '../../infra/stacks/pem-ha-stack';
import { cdkOutdir } from './cdk-out';

/**
 * A new App with settings given as context (strings, as on the command line,
 * or JSON values as in cdk.json), writing into a directory the test run
 * removes (./cdk-out.ts). Lambda bundling is skipped: the tests read the
 * templates, not the bundles.
 */
function testApp(settings: Record<string, unknown>): App {
  return new App({
    outdir: cdkOutdir(),
    context: { ...settings, 'aws:cdk:bundling-stacks': [] },
  });
}

/**
 * Synthesizes the app as bin/pem-ha.ts builds it (infra/app.ts), without
 * running cdk-nag (nagReport does).
 */
export function synthStack(settings: Record<string, unknown> = {}): {
  app: App;
  stack: PemHaStack;
  template: Template;
} {
  const app = testApp(settings);
  const { stack } = buildApp(app, { nag: false });
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
 * Runs cdk-nag AwsSolutions and CDK's CloudFormation validation over the app
 * as `cdk synth` does and returns the validation report they write.
 * Synthesis throws on any unacknowledged nag finding.
 */
export function nagReport(settings: Record<string, unknown> = {}): ValidationReport {
  const app = testApp(settings);
  buildApp(app);
  // With CDK's built-in CloudFormation validation too, as `cdk synth` runs it
  // (test/helpers/setup.ts turns it off for every other synthesis).
  const validation = process.env.CDK_VALIDATION;
  delete process.env.CDK_VALIDATION;
  try {
    const assembly = app.synth();
    return JSON.parse(readFileSync(join(assembly.directory, 'validation-report.json'), 'utf8'));
  } finally {
    if (validation !== undefined) process.env.CDK_VALIDATION = validation;
  }
}

/** Resources of one type, by logical id. */
export function resourcesOf(
  template: Template,
  type: string,
): Record<string, { Properties: Record<string, unknown> }> {
  return template.findResources(type) as Record<string, { Properties: Record<string, unknown> }>;
}

/** Logical ids (prefix before the hash) of the roles whose own policies let them read a secret. */
export function readersOf(template: Template, secretLogicalIdPrefix: string): string[] {
  const secretId = Object.keys(resourcesOf(template, 'AWS::SecretsManager::Secret')).find((id) =>
    id.startsWith(secretLogicalIdPrefix),
  );
  if (!secretId) throw new Error(`no secret whose logical id starts with ${secretLogicalIdPrefix}`);
  type Statement = { Action: string | string[]; Resource: unknown };
  const readers = Object.values(resourcesOf(template, 'AWS::IAM::Policy')).filter((policy) =>
    (policy.Properties.PolicyDocument as { Statement: Statement[] }).Statement.some(
      (statement) =>
        [statement.Action].flat().includes('secretsmanager:GetSecretValue') &&
        JSON.stringify(statement.Resource).includes(`"Ref":"${secretId}"`),
    ),
  );
  return readers
    .flatMap((policy) => policy.Properties.Roles as { Ref: string }[])
    .map((role) => role.Ref.replace(/[0-9A-F]{8}$/, ''))
    .sort();
}
