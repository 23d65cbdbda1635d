import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import { NamedSecret } from '../../infra/constructs/named-secret';
import { readersOf, resourcesOf, synthStack } from '../helpers/synth';

type Json = Record<string, unknown>;
const withoutHash = (logicalId: string) => logicalId.replace(/[0-9A-F]{8}$/, '');

/** Every secret the stack makes: its name, who may read and write it, and its deletion policy. */
function secretAccess(settings: Record<string, unknown> = {}) {
  const { template } = synthStack(settings);
  const json = template.toJSON() as { Resources: Record<string, Json & { Properties: Json }> };
  const secrets = resourcesOf(template, 'AWS::SecretsManager::Secret');
  const access: Record<string, { read: string[]; write?: string[]; deletion?: unknown }> = {};
  for (const [id, secret] of Object.entries(secrets)) {
    access[String(secret.Properties.Name)] = {
      read: [],
      deletion: json.Resources[id].DeletionPolicy,
    };
  }
  for (const policy of Object.values(
    resourcesOf(template, 'AWS::SecretsManager::ResourcePolicy'),
  )) {
    const secretId = (policy.Properties.SecretId as { Ref: string }).Ref;
    const entry = access[String(secrets[secretId].Properties.Name)];
    const statements = (policy.Properties.ResourcePolicy as { Statement: Json[] }).Statement;
    for (const statement of statements) {
      // Given a deny for every principal but those named
      expect(statement).toMatchObject({ Effect: 'Deny', Principal: { AWS: '*' }, Resource: '*' });
      const allowed = (
        statement.Condition as { ArnNotEquals: { 'aws:PrincipalArn': unknown[] } }
      ).ArnNotEquals['aws:PrincipalArn'].map((arn) => {
        const getAtt = (arn as { 'Fn::GetAtt'?: [string, string] })['Fn::GetAtt'];
        return getAtt ? withoutHash(getAtt[0]) : String(arn);
      });
      if (statement.Action === 'secretsmanager:GetSecretValue') entry.read = allowed.sort();
      else if (statement.Action === 'secretsmanager:PutSecretValue') entry.write = allowed.sort();
      else throw new Error(`unexpected action ${JSON.stringify(statement.Action)}`);
    }
  }
  // Every role whose own policy lets it read a secret, by secret
  const identityReaders = Object.fromEntries(
    Object.entries(secrets).map(([id, secret]) => [
      String(secret.Properties.Name),
      readersOf(template, id),
    ]),
  );
  return { access, identityReaders };
}

describe("who can read the cluster's secrets", () => {
  test('Given the default topology, then each secret admits exactly the roles it is made for, every other principal is denied, and the CA secrets outlive the stack', () => {
    const { access, identityReaders } = secretAccess();

    expect(access).toEqual({
      'pem-ha/patroniSuperuser': { read: ['BackendNodesRole'], deletion: 'Delete' },
      'pem-ha/patroniReplication': { read: ['BackendNodesRole'], deletion: 'Delete' },
      'pem-ha/patroniRewind': { read: ['BackendNodesRole'], deletion: 'Delete' },
      'pem-ha/patroniRestApi': {
        read: [
          'BackendNodesRole',
          'PrimaryFailoverFailoverStepsRole',
          'RollingUpgradeUpgradeStepsRole',
        ],
        deletion: 'Delete',
      },
      'pem-ha/patroniEtcd': { read: ['BackendNodesRole', 'EtcdNodesRole'], deletion: 'Delete' },
      'pem-ha/pemSuperuser': { read: ['BackendNodesRole', 'WebNodesRole'], deletion: 'Delete' },
      'pem-ha/pki/root': {
        read: ['RunbooksClusterCaRole'],
        write: ['RunbooksClusterCaRole'],
        deletion: 'Retain',
      },
      'pem-ha/pki/intermediate': {
        read: ['RunbooksClusterCaRole', 'RunbooksSignCertificatesRole'],
        write: ['RunbooksClusterCaRole'],
        deletion: 'Retain',
      },
      'pem-ha/pki/trust': {
        read: [
          'MonitoringPublisherRole',
          'PrimaryFailoverFailoverStepsRole',
          'RollingUpgradeUpgradeStepsRole',
          'RunbooksClusterCaRole',
          'RunbooksClusterStatusRole',
          'RunbooksRecordExpiryRole',
        ],
        write: ['RunbooksClusterCaRole'],
        deletion: 'Retain',
      },
    });
    // And the roles whose own policies grant the read are the same ones
    expect(identityReaders).toEqual(
      Object.fromEntries(Object.entries(access).map(([name, { read }]) => [name, read])),
    );
  });

  test('Given a break-glass role, then every secret admits it too, and no one else', () => {
    const breakGlass = 'arn:aws:iam::123456789012:role/break-glass';
    const { access } = secretAccess({ secretsBreakGlassRoleArn: breakGlass });
    const { access: plain } = secretAccess();
    for (const [name, { read, write }] of Object.entries(access)) {
      expect({ name, read }).toEqual({ name, read: [...plain[name].read, breakGlass].sort() });
      if (write)
        expect({ name, write }).toEqual({
          name,
          write: [...plain[name].write!, breakGlass].sort(),
        });
    }
  });
});

describe('NamedSecret', () => {
  const secretIn = (stack: Stack) =>
    new NamedSecret(stack, 'Unread', { secretName: 'pem-ha/unread' });

  test('Given a secret no role is granted, then synth fails naming it, before anything is deployed', () => {
    const stack = new Stack(new App());
    secretIn(stack);
    expect(() => Template.fromStack(stack)).toThrow(
      'no role is granted secretsmanager:GetSecretValue on pem-ha/unread',
    );
  });

  test('Given a grant to a principal that is not a role, then it is refused by name', () => {
    const stack = new Stack(new App());
    const secret = secretIn(stack);
    expect(() => secret.grantRead(new iam.AccountRootPrincipal())).toThrow(
      "grants go to roles only (the resource policy names each reader's role); got AccountRootPrincipal",
    );
  });
});
