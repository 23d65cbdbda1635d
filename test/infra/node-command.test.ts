import type { Template } from 'aws-cdk-lib/assertions';
import { resourcesOf, synthStack } from '../helpers/synth';

type Statement = { Effect: string; Action: string | string[]; Resource: unknown };

/** The statements of every policy attached to the role of the function with this description. */
function statementsOfFunction(template: Template, description: string): Statement[] {
  const functions = Object.values(resourcesOf(template, 'AWS::Lambda::Function')).filter(
    (fn) => fn.Properties.Description === description,
  );
  expect(functions).toHaveLength(1);
  const [roleId] = (functions[0].Properties.Role as { 'Fn::GetAtt': [string, string] })[
    'Fn::GetAtt'
  ];
  return Object.values(resourcesOf(template, 'AWS::IAM::Policy'))
    .filter((policy) =>
      (policy.Properties.Roles as unknown[]).some(
        (role) => JSON.stringify(role) === JSON.stringify({ Ref: roleId }),
      ),
    )
    .flatMap(
      (policy) => (policy.Properties.PolicyDocument as { Statement: Statement[] }).Statement,
    );
}

const allows = (statements: Statement[], action: string) =>
  statements.filter((s) => s.Effect === 'Allow' && [s.Action].flat().includes(action));

describe('node command function in the template', () => {
  const { template } = synthStack();

  test('Given the node command function, then its role may ask EC2 whether an instance still runs', () => {
    // Given the synthesized stack, When the node command function's role policies are read
    const statements = statementsOfFunction(
      template,
      'pem-ha: sends a node document through SSM and polls it',
    );

    // Then ec2:DescribeInstances is allowed, on '*' (the action takes no resource ARN)
    const describe = allows(statements, 'ec2:DescribeInstances');
    expect(describe).toHaveLength(1);
    expect(describe[0].Resource).toBe('*');
    // And it may cancel a command it gives up on (so a returning node never runs it late)
    expect(allows(statements, 'ssm:CancelCommand')).toHaveLength(1);
  });

  test('Given the certificate signer, then it is not given DescribeInstances along the way', () => {
    const statements = statementsOfFunction(
      template,
      "pem-ha: checks nodes' certificate requests and signs them",
    );
    expect(allows(statements, 'ec2:DescribeInstances')).toEqual([]);
    expect(allows(statements, 'ssm:CancelCommand')).toEqual([]);
  });
});
