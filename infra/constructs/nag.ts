import { CfnElement, Stack, Token, Validations } from 'aws-cdk-lib';
import { IConstruct } from 'constructs';
import type { TaskFunction } from './task-function';

/** cdk-nag findings acknowledged with a reason: the resource as cdk-nag names it. */
export type Finding = readonly [resource: string, reason: string];

export function logicalIdOf(resource: IConstruct | undefined): string {
  if (!resource) throw new Error('a construct has no CloudFormation resource');
  return Stack.of(resource).getLogicalId(resource as CfnElement);
}

/** An ARN as cdk-nag prints it: literal region and account when the stack has them. */
export function arnOf(scope: IConstruct, service: string, resource: string): string {
  const { region, account } = Stack.of(scope);
  const literal = (value: string, token: string) => (Token.isUnresolved(value) ? token : value);
  return `arn:<AWS::Partition>:${service}:${literal(region, '<AWS::Region>')}:${literal(account, '<AWS::AccountId>')}:${resource}`;
}

/** The `<Function.Arn>:*` resource cdk-nag names when a role may invoke every version. */
export function functionVersions(fn: TaskFunction): string {
  return `Resource::<${logicalIdOf(fn.function.node.defaultChild)}.Arn>:*`;
}

/** Acknowledges IAM5 (wildcard) findings on one role's policy, each resource with its reason. */
export function acknowledge(role: IConstruct, findings: readonly Finding[]): void {
  for (const [resource, reason] of findings) {
    Validations.of(role).acknowledge({
      id: `AwsSolutions::AwsSolutions-IAM5[${resource}]`,
      reason,
    });
  }
}
