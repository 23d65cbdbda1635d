import { CfnElement, Stack, Token, Validations } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as cr from 'aws-cdk-lib/custom-resources';
import { IConstruct } from 'constructs';
import { ValidationError } from './errors';
import type { TaskFunction } from './task-function';

/** cdk-nag findings acknowledged with a reason: the resource as cdk-nag names it. */
export type Finding = readonly [resource: string, reason: string];

/** Logical ID of a CloudFormation element, or of a construct's default child. */
export function logicalIdOf(construct: IConstruct): string {
  const resource = CfnElement.isCfnElement(construct) ? construct : construct.node.defaultChild;
  if (!resource || !CfnElement.isCfnElement(resource)) {
    throw new ValidationError(construct, 'has no CloudFormation resource to name in a finding');
  }
  return Stack.of(resource).getLogicalId(resource);
}

/** An ARN as cdk-nag prints it: literal region and account when the stack has them. */
export function arnOf(scope: IConstruct, service: string, resource: string): string {
  const { region, account } = Stack.of(scope);
  const literal = (value: string, token: string) => (Token.isUnresolved(value) ? token : value);
  return `arn:<AWS::Partition>:${service}:${literal(region, '<AWS::Region>')}:${literal(account, '<AWS::AccountId>')}:${resource}`;
}

/** The `<Function.Arn>:*` resource cdk-nag names when a role may invoke every version. */
export function functionVersions(fn: TaskFunction | lambda.IFunction): string {
  return `Resource::<${logicalIdOf('function' in fn ? fn.function : fn)}.Arn>:*`;
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

/**
 * Acknowledges what cdk-nag finds on any CDK Provider's own functions: their
 * managed log policy, and their roles invoking any version of the custom
 * resource's handlers. On the provider, so they cover its children, whose ids
 * are the framework's business; the IAM5 ones still name their exact resource.
 */
export function acknowledgeProvider(
  provider: cr.Provider,
  handlers: readonly TaskFunction[],
): void {
  Validations.of(provider).acknowledge({
    id: 'AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
    reason: "The CDK Provider framework's own functions write their logs with this policy.",
  });
  acknowledge(
    provider,
    handlers.map((fn) => [
      functionVersions(fn),
      "The CDK Provider framework's roles may invoke any version of the custom resource's own functions.",
    ]),
  );
}

/**
 * The framework functions a Provider's waiter state machine invokes
 * (isComplete, onTimeout): every Lambda function it made but its entry point.
 * Found by type, not by the framework's construct ids.
 */
export function providerWaitedFunctions(provider: cr.Provider): lambda.Function[] {
  return provider.node
    .findAll()
    .filter((c): c is lambda.Function => c instanceof lambda.Function)
    .filter((fn) => fn.functionArn !== provider.serviceToken);
}
