import { Token } from 'aws-cdk-lib';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct, IConstruct } from 'constructs';
import { ValidationError } from './errors';

export interface NamedSecretProps extends secretsmanager.SecretProps {
  /** A fixed name, so functions and node documents can be told it at synth time. */
  readonly secretName: string;
}

/**
 * A secret created under a fixed name that stays readable as a plain string.
 * The inherited `secretName` of a created secret is a token CloudFormation
 * parses out of the ARN at deploy time; Lambda environments and node
 * documents need the literal name instead (the handlers and the local rig
 * look secrets up by name).
 */
export class NamedSecret extends secretsmanager.Secret {
  /** The name the secret was created with, as a plain string. */
  readonly literalName: string;

  constructor(scope: Construct, id: string, props: NamedSecretProps) {
    super(scope, id, props);
    this.literalName = props.secretName;
  }
}

/**
 * The name of `secret` as a plain string: a NamedSecret's `literalName`, or
 * the `secretName` of a secret imported by name (`Secret.fromSecretNameV2`).
 * Throws, naming `prop`, for a secret whose name is known only at deploy time.
 */
export function literalNameOf(
  scope: IConstruct,
  prop: string,
  secret: secretsmanager.ISecret,
): string {
  if (secret instanceof NamedSecret) return secret.literalName;
  if (!Token.isUnresolved(secret.secretName)) return secret.secretName;
  throw new ValidationError(
    scope,
    `${prop} must be a secret whose name is known at synth time (a NamedSecret, or one imported with Secret.fromSecretNameV2); got ${secret.node.path}, named only at deploy time`,
  );
}
