import { resourcesOf, synthStack } from '../helpers/synth';

type Statement = { Action: string | string[]; Resource: unknown };

describe('rolling upgrade in the template', () => {
  const { template } = synthStack();
  const json = template.toJSON() as {
    Outputs: Record<string, { Value: unknown; Description?: string }>;
  };
  const upgradeStatements = () =>
    Object.entries(resourcesOf(template, 'AWS::IAM::Policy'))
      .filter(([id]) => id.startsWith('RollingUpgradeUpgradeStepsRole'))
      .flatMap(([, p]) => (p.Properties.PolicyDocument as { Statement: Statement[] }).Statement);

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
    const readable = upgradeStatements()
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
});
