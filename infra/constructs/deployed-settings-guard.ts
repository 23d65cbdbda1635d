import { Annotations, Stack, Token } from 'aws-cdk-lib';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct } from 'constructs';
import {
  DeployedSettings,
  deployedSettingsOf,
  deployedSettingsProblems,
} from '../config/deployed-settings';
import type { PemHaConfig } from '../config/load-config';
import { ConfigError } from '../config/setting';

export interface DeployedSettingsGuardProps {
  readonly config: PemHaConfig;
}

/** What a lookup gives before the first deploy has written the parameter. */
const NOT_DEPLOYED = 'not-deployed';

/**
 * Refuses, at synth, settings a deployed cluster cannot take (clusterName,
 * postgresMajorVersion, ...), against what the last deploy recorded in an SSM
 * parameter named after the stack. The deployed value is known when the
 * stack has an account and region: CDK looks the parameter up and keeps the
 * answer in cdk.context.json. Construct it first: it throws before anything
 * else is built.
 */
export class DeployedSettingsGuard extends Construct {
  readonly parameterName: string;

  constructor(scope: Construct, id: string, props: DeployedSettingsGuardProps) {
    super(scope, id);
    const stack = Stack.of(this);
    this.parameterName = `/pem-ha/stacks/${stack.stackName}/deployed-settings`;
    const wanted = deployedSettingsOf(props.config);
    if (!Token.isUnresolved(stack.account) && !Token.isUnresolved(stack.region)) {
      this.check(stack, wanted);
    }
    new ssm.StringParameter(this, 'Record', {
      parameterName: this.parameterName,
      description: `pem-ha ${props.config.clusterName}: settings the next deploy may not change (read at synth)`,
      stringValue: JSON.stringify(wanted),
    });
  }

  private check(stack: Stack, wanted: DeployedSettings): void {
    const text = ssm.StringParameter.valueFromLookup(this, this.parameterName, NOT_DEPLOYED);
    if (text === NOT_DEPLOYED || text.startsWith('dummy-value-for-')) {
      Annotations.of(this).addInfo(
        `No deployed settings of stack ${stack.stackName} were found when ${this.parameterName} was looked up (answer kept in cdk.context.json). After the first deploy, run: npx cdk context --reset "ssm:account=${stack.account}:parameterName=${this.parameterName}:region=${stack.region}", so later synths check clusterName and the other fixed settings against it.`,
      );
      return;
    }
    let deployed: Partial<DeployedSettings>;
    try {
      deployed = JSON.parse(text) as Partial<DeployedSettings>;
    } catch {
      throw new ConfigError([
        `${this.parameterName}: the deployed settings record is not JSON (${JSON.stringify(text.slice(0, 80))}); reset it with npx cdk context --reset`,
      ]);
    }
    const problems = deployedSettingsProblems(deployed, wanted);
    if (problems.length) throw new ConfigError(problems);
  }
}
