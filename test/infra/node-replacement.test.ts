import { resourcesOf, synthStack } from '../helpers/synth';

type Statement = {
  Action: string | string[];
  Resource: unknown;
  Condition?: Record<string, Record<string, unknown>>;
};

describe('node replacement in the template', () => {
  const { template } = synthStack();
  const json = template.toJSON() as {
    Outputs: Record<string, { Value: unknown; Description?: string }>;
  };
  const statements = () =>
    Object.entries(resourcesOf(template, 'AWS::IAM::Policy'))
      .filter(([id]) => id.startsWith('NodeReplacementReplaceNodeRole'))
      .flatMap(([, p]) => (p.Properties.PolicyDocument as { Statement: Statement[] }).Statement);

  test('Given the defaults, then the stack outputs the replacement runbook under a readable name and says what input it takes', () => {
    const output = json.Outputs.ReplacementStateMachineArn;
    expect(output.Value).toEqual({ Ref: expect.stringMatching(/^NodeReplacementStateMachine/) });
    expect(output.Description).toContain('{"node": "<name>"}');
    template.hasResourceProperties('AWS::StepFunctions::StateMachine', {
      StateMachineName: 'pem-ha-node-replacement',
    });
  });

  test("Given the replacement function, then it may swap the root volume of the cluster's own instances only, and reads no secret and sends no command", () => {
    const all = statements();
    const actions = all.flatMap((s) => [s.Action].flat());
    expect(actions.filter((a) => a.startsWith('secretsmanager:') || a.startsWith('ssm:'))).toEqual(
      [],
    );
    expect(actions.filter((a) => a.startsWith('ec2:')).sort()).toEqual([
      'ec2:CreateReplaceRootVolumeTask',
      'ec2:CreateReplaceRootVolumeTask',
      'ec2:DescribeReplaceRootVolumeTasks',
    ]);
    const onInstances = all.find((s) => JSON.stringify(s.Resource).includes(':instance/*'));
    expect(onInstances?.Condition).toEqual({
      StringEquals: { 'aws:ResourceTag/pem-ha:cluster': 'pem-ha' },
    });
    // Nothing else it may call names an instance.
    expect(
      all.filter((s) => s !== onInstances && JSON.stringify(s.Resource).includes('instance')),
    ).toEqual([]);
  });

  test('Given the etcd quorum check, then it is a document of its own that runs etcdctl only against the other members', () => {
    const documents = resourcesOf(template, 'AWS::SSM::Document');
    const quorum = Object.values(documents).find((d) => d.Properties.Name === 'pem-ha-etcd-quorum');
    const content = quorum?.Properties.Content as {
      parameters: Record<string, { allowedPattern?: string }>;
    };
    expect(Object.keys(content.parameters).sort()).toEqual(['InitialCluster', 'LeavingMember']);
    expect(content.parameters.LeavingMember.allowedPattern).toBe('^[a-z][a-z0-9-]{0,62}$');
  });
});
