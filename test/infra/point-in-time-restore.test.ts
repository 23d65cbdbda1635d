import { resourcesOf, synthStack } from '../helpers/synth';

type Statement = { Action: string | string[]; Resource: unknown };

describe('point-in-time restore in the template', () => {
  const { template } = synthStack();
  const json = template.toJSON() as {
    Outputs: Record<string, { Value: unknown; Description?: string }>;
  };
  const restoreStatements = () =>
    Object.entries(resourcesOf(template, 'AWS::IAM::Policy'))
      .filter(([id]) => id.startsWith('PointInTimeRestoreRestoreStepsRole'))
      .flatMap(([, p]) => (p.Properties.PolicyDocument as { Statement: Statement[] }).Statement);

  test('Given the defaults, then the stack outputs the restore runbook and says it needs confirm', () => {
    const output = json.Outputs.RestoreStateMachineArn;
    expect(output.Value).toEqual({ Ref: expect.stringMatching(/^PointInTimeRestoreStateMachine/) });
    expect(output.Description).toContain('"confirm": "<clusterName>"');
    template.hasResourceProperties('AWS::StepFunctions::StateMachine', {
      StateMachineName: 'pem-ha-point-in-time-restore',
    });
  });

  test('Given the restore function, then it reads no secret and sends no command itself', () => {
    const actions = restoreStatements().flatMap((s) => [s.Action].flat());
    expect(
      actions.filter((a) => a.startsWith('secretsmanager:') || a === 'ssm:SendCommand'),
    ).toEqual([]);
  });
});
