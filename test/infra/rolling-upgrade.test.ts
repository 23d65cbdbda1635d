import type { Template } from 'aws-cdk-lib/assertions';
import { resourcesOf, synthStack } from '../helpers/synth';

type Statement = { Action: string | string[]; Resource: unknown };

/** The statements of the upgrade function's role policy in `template`. */
const upgradeStatements = (template: Template) =>
  Object.entries(resourcesOf(template, 'AWS::IAM::Policy'))
    .filter(([id]) => id.startsWith('RollingUpgradeUpgradeStepsRole'))
    .flatMap(([, p]) => (p.Properties.PolicyDocument as { Statement: Statement[] }).Statement);

describe('rolling upgrade in the template', () => {
  const { template } = synthStack();
  const json = template.toJSON() as {
    Outputs: Record<string, { Value: unknown; Description?: string }>;
  };

  test('Given the defaults, then the stack outputs the upgrade state machine and tells how to start it', () => {
    const output = json.Outputs.UpgradeStateMachineArn;
    expect(output.Value).toEqual({ Ref: expect.stringMatching(/^RollingUpgradeStateMachine/) });
    expect(output.Description).toContain('"component": "postgresql"');
    template.hasResourceProperties('AWS::StepFunctions::StateMachine', {
      StateMachineName: 'pem-ha-rolling-upgrade',
    });
  });

  test('Given the upgrade function, then it reads the REST API credentials and the trust roots, and no database password', () => {
    const secrets = Object.keys(resourcesOf(template, 'AWS::SecretsManager::Secret'));
    const readable = upgradeStatements(template)
      .filter((s) => [s.Action].flat().includes('secretsmanager:GetSecretValue'))
      .flatMap((s) => secrets.filter((id) => JSON.stringify(s.Resource).includes(`"${id}"`)))
      .map((id) => id.replace(/[0-9A-F]{8}$/, ''))
      .sort();
    expect(readable).toEqual(['PkiTrust', 'SecretspatroniRestApi']);
  });

  test('Given the upgrade function, then it is told the REST API secret and the trust roots by name', () => {
    const [fn] = Object.entries(resourcesOf(template, 'AWS::Lambda::Function'))
      .filter(([id]) => id.startsWith('RollingUpgradeUpgradeSteps'))
      .map(([, f]) => f.Properties.Environment as { Variables: Record<string, unknown> });
    expect(fn.Variables).toMatchObject({
      REST_API_SECRET: 'pem-ha/patroniRestApi',
      TRUST_SECRET: 'pem-ha/pki/trust',
    });
  });

  test('Given the upgrade function, then every task of the runbook has a timeout', () => {
    const [machine] = Object.values(
      resourcesOf(template, 'AWS::StepFunctions::StateMachine'),
    ).filter((m) => m.Properties.StateMachineName === 'pem-ha-rolling-upgrade');
    const definition = JSON.stringify(machine.Properties.DefinitionString);
    const tasks = definition.match(/\\"Type\\":\\"Task\\"/g) ?? [];
    const timeouts = definition.match(/\\"TimeoutSeconds\\":90/g) ?? [];
    expect(tasks.length).toBeGreaterThan(20);
    expect(timeouts.length).toBe(tasks.length);
  });

  const registrationActions = [
    'elasticloadbalancing:DeregisterTargets',
    'elasticloadbalancing:RegisterTargets',
  ];

  test("Given PEM, then the upgrade function may take targets out of the web tier's ALB target group and put them back, in that group alone", () => {
    const [webGroup] = Object.entries(
      resourcesOf(template, 'AWS::ElasticLoadBalancingV2::TargetGroup'),
    ).filter(([, g]) => g.Properties.Protocol === 'HTTPS');
    const registering = upgradeStatements(template).filter((s) =>
      [s.Action].flat().some((a) => registrationActions.includes(a)),
    );
    expect(registering).toEqual([
      expect.objectContaining({ Action: registrationActions, Resource: { Ref: webGroup[0] } }),
    ]);
    const [fn] = Object.entries(resourcesOf(template, 'AWS::Lambda::Function'))
      .filter(([id]) => id.startsWith('RollingUpgradeUpgradeSteps'))
      .map(([, f]) => f.Properties.Environment as { Variables: Record<string, unknown> });
    expect(fn.Variables.WEB_TARGET_GROUP_ARN).toEqual({ Ref: webGroup[0] });
  });

  test('Given PEM disabled, then the upgrade function cannot register or deregister any target, and is not told a web target group', () => {
    const plain = synthStack({ pemEnabled: 'false' }).template;
    const actions = upgradeStatements(plain).flatMap((s) => [s.Action].flat());
    expect(actions.filter((a) => registrationActions.includes(a))).toEqual([]);
    const [fn] = Object.entries(resourcesOf(plain, 'AWS::Lambda::Function'))
      .filter(([id]) => id.startsWith('RollingUpgradeUpgradeSteps'))
      .map(([, f]) => f.Properties.Environment as { Variables: Record<string, unknown> });
    expect(fn.Variables.WEB_TARGET_GROUP_ARN).toBeUndefined();
  });

  test("Given PEM, then the upgrade document takes the pem component and checks a web host on the ALB target group's own health check path", () => {
    const [webGroup] = Object.values(
      resourcesOf(template, 'AWS::ElasticLoadBalancingV2::TargetGroup'),
    ).filter((g) => g.Properties.Protocol === 'HTTPS');
    const [upgrade] = Object.values(resourcesOf(template, 'AWS::SSM::Document')).filter(
      (d) => d.Properties.Name === 'pem-ha-upgrade',
    );
    const content = upgrade.Properties.Content as {
      parameters: Record<string, { allowedValues?: string[] }>;
      mainSteps: { inputs: { runCommand: string[] } }[];
    };
    expect(content.parameters.Component.allowedValues).toContain('pem');
    expect(content.mainSteps[0].inputs.runCommand.join('\n')).toContain(
      `PEM_HEALTH_PATH=${String(webGroup.Properties.HealthCheckPath)}\n`,
    );
  });
});
