import { Lazy, Token } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct, IConstruct } from 'constructs';
import { ValidationError } from './errors';

export interface NamedSecretProps extends secretsmanager.SecretProps {
  /** A fixed name, so functions and node documents can be told it at synth time. */
  readonly secretName: string;
  /**
   * A role that may read (and, with `guardWrites`, write) the secret besides
   * the roles granted it, for an operator's emergency access.
   * @default - none
   */
  readonly breakGlassRoleArn?: string;
  /**
   * Deny PutSecretValue to every role but those granted write (and the
   * break-glass role): for secrets whose value others trust, as the CA's.
   * @default false
   */
  readonly guardWrites?: boolean;
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
  private readonly readers: string[] = [];
  private readonly writers: string[] = [];

  constructor(scope: Construct, id: string, props: NamedSecretProps) {
    super(scope, id, props);
    this.literalName = props.secretName;
    // Any role of the account with secretsmanager:GetSecretValue on * would
    // otherwise read it: the resource policy admits only the roles granted it.
    const breakGlass = props.breakGlassRoleArn ? [props.breakGlassRoleArn] : [];
    const onlyThese = (action: string, roles: string[], sid: string) =>
      this.addToResourcePolicy(
        new iam.PolicyStatement({
          sid,
          effect: iam.Effect.DENY,
          principals: [new iam.AnyPrincipal()],
          actions: [action],
          resources: ['*'],
          conditions: {
            ArnNotEquals: {
              'aws:PrincipalArn': Lazy.list({
                produce: () => {
                  // An empty list would be refused at deploy time, after the secret exists.
                  if (roles.length + breakGlass.length === 0) {
                    throw new ValidationError(
                      this,
                      `no role is granted ${action} on ${props.secretName}: grant it to the role that needs it, or drop the secret`,
                    );
                  }
                  return [...roles, ...breakGlass];
                },
              }),
            },
          },
        }),
      );
    onlyThese('secretsmanager:GetSecretValue', this.readers, 'OnlyGrantedRolesRead');
    if (props.guardWrites)
      onlyThese('secretsmanager:PutSecretValue', this.writers, 'OnlyGrantedRolesWrite');
  }

  /** Also admits `grantee`'s role in the resource policy; `grantee` must be a role. */
  override grantRead(grantee: iam.IGrantable, versionStages?: string[]): iam.Grant {
    this.readers.push(roleArnOf(this, grantee));
    return super.grantRead(grantee, versionStages);
  }

  override grantWrite(grantee: iam.IGrantable): iam.Grant {
    this.writers.push(roleArnOf(this, grantee));
    return super.grantWrite(grantee);
  }
}

function roleArnOf(secret: NamedSecret, grantee: iam.IGrantable): string {
  const principal = grantee.grantPrincipal as Partial<iam.IRole>;
  if (typeof principal.roleArn !== 'string') {
    throw new ValidationError(
      secret,
      `grants go to roles only (the resource policy names each reader's role); got ${principal.constructor.name}`,
    );
  }
  return principal.roleArn;
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
