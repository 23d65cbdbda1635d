import { resourcesOf, synthStack } from '../helpers/synth';

type Statement = { Action: string | string[]; Resource: unknown };

describe('the failover runbook in the template', () => {
  const { template } = synthStack();
  const json = template.toJSON() as {
    Outputs: Record<string, { Value: unknown; Description?: string }>;
  };

  test('Given the defaults, then the stack outputs the failover runbook under a readable name and says what input it takes', () => {
    const output = json.Outputs.FailoverStateMachineArn;
    expect(output.Value).toEqual({ Ref: expect.stringMatching(/^PrimaryFailoverStateMachine/) });
    expect(output.Description).toContain('{"dryRun": true}');
    template.hasResourceProperties('AWS::StepFunctions::StateMachine', {
      StateMachineName: 'pem-ha-failover',
    });
  });

  test('Given the failover function, then it reads only the cluster roots and the REST API credentials, and calls no EC2 (beyond its network interface in the VPC), SSM or load balancer action', () => {
    const statements = Object.entries(resourcesOf(template, 'AWS::IAM::Policy'))
      .filter(([id]) => id.startsWith('PrimaryFailoverFailoverSteps'))
      .flatMap(([, p]) => (p.Properties.PolicyDocument as { Statement: Statement[] }).Statement);
    const actions = statements.flatMap((s) => [s.Action].flat());
    expect(
      actions.filter(
        (a) =>
          /^(ec2|ssm|elasticloadbalancing):/.test(a) &&
          !/NetworkInterface|PrivateIpAddresses/.test(a),
      ),
    ).toEqual([]);
    const secrets = statements
      .filter((s) => [s.Action].flat().includes('secretsmanager:GetSecretValue'))
      .map((s) => JSON.stringify(s.Resource));
    expect(secrets.join(' ')).toMatch(/trust/i);
    expect(secrets.join(' ')).toMatch(/patroniRestApi/);
    expect(secrets).toHaveLength(2);
  });

  test('Given the failover document, then it takes only an action (inspect or release-reserve) and the reserve size from the volume size', () => {
    const documents = resourcesOf(template, 'AWS::SSM::Document');
    const failover = Object.values(documents).find((d) => d.Properties.Name === 'pem-ha-failover');
    const content = failover?.Properties.Content as {
      parameters: Record<string, { allowedValues?: string[]; default?: string }>;
    };
    expect(content.parameters.Action.allowedValues).toEqual(['inspect', 'release-reserve']);
    // dataVolumeSizeGiB 100 by default: a fiftieth.
    expect(content.parameters.SpaceReserveMib.default).toBe('2048');
  });
});
