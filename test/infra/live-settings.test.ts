import { Annotations, Match } from 'aws-cdk-lib/assertions';
import { resourcesOf, synthStack } from '../helpers/synth';

/**
 * The inventory the bootstrap's deploy-time resource carries (the node list
 * every runbook gets), deploy-time values (instance ids) left as "?".
 */
function inventoryOf(settings: Record<string, unknown>) {
  const { template } = synthStack({ pemEnabled: true, ...settings });
  const [run] = Object.values(resourcesOf(template, 'Custom::PemHaBootstrap'));
  const nodes = run.Properties.Nodes as { 'Fn::Join': [string, unknown[]] };
  const text = nodes['Fn::Join'][1].map((part) => (typeof part === 'string' ? part : '?')).join('');
  return JSON.parse(text) as Record<string, { name: string; agentId: string }[]>;
}

describe('settings that reach the running cluster', () => {
  test('Given postgresqlParameters, then the patroni document carries them and synth names the ones needing a restart', () => {
    // Given one restart-only, one reload-only and one extension parameter
    const { stack, template } = synthStack({
      postgresqlParameters: {
        max_connections: 300,
        log_min_duration_statement: '250ms',
        'pg_stat_statements.max': 5000,
      },
    });
    // Then the patroni document's default is exactly them, as base64 JSON
    const [patroni] = Object.values(resourcesOf(template, 'AWS::SSM::Document')).filter((d) =>
      String(d.Properties.Name).endsWith('-patroni'),
    );
    const content = patroni.Properties.Content as {
      parameters: Record<string, { default: string }>;
    };
    expect(
      JSON.parse(Buffer.from(content.parameters.PostgresqlParameters.default, 'base64').toString()),
    ).toEqual({
      log_min_duration_statement: '250ms',
      max_connections: 300,
      'pg_stat_statements.max': 5000,
    });
    // And synth says which need a restart, and which it cannot tell
    const infos = Annotations.fromStack(stack)
      .findInfo('*', Match.anyValue())
      .map((m) => String(m.entry.data));
    expect(infos).toContainEqual(
      expect.stringMatching(
        /^postgresqlParameters max_connections need a PostgreSQL restart: a deploy that changes them ends with a rolling restart/,
      ),
    );
    expect(infos).toContainEqual(
      expect.stringMatching(
        /^postgresqlParameters pg_stat_statements.max: not PostgreSQL 17 parameters pem-ha knows/,
      ),
    );
    expect(infos.join('\n')).not.toContain('log_min_duration_statement');
  });

  test('Given changed parameters, then the deploy runs the settings rollout after the bootstrap, and not on the first deploy', () => {
    const rollout = (parameters: Record<string, unknown>) => {
      const { template } = synthStack({ postgresqlParameters: parameters });
      const resources = template.findResources('Custom::PemHaSettingsRollout');
      expect(Object.keys(resources)).toHaveLength(1);
      return Object.values(resources)[0] as {
        Properties: Record<string, unknown>;
        DependsOn: string[];
      };
    };
    const before = rollout({ max_connections: 200 });
    const after = rollout({ max_connections: 300 });
    // Then it starts the upgrade runbook's settings component, after the bootstrap
    expect(JSON.parse(String(before.Properties.Input))).toEqual({
      component: 'settings',
      version: 'latest',
    });
    expect(before.Properties.SkipCreate).toBe('true');
    expect(before.DependsOn.some((id) => id.startsWith('BootstrapRun'))).toBe(true);
    // And a change of the parameters changes its properties (CloudFormation updates it)
    expect(after.Properties.Revision).not.toEqual(before.Properties.Revision);
    expect({ ...after.Properties, Revision: undefined }).toEqual({
      ...before.Properties,
      Revision: undefined,
    });
  });
});

describe('stable identities', () => {
  test('Given a fourth backend, then it gets agent 4 and no existing node changes its agent number', () => {
    const agents = (backendNodeCount: number) =>
      Object.fromEntries(
        Object.values(inventoryOf({ backendNodeCount, webNodeCount: 2 }))
          .flat()
          .map((node) => [node.name, Number(node.agentId)]),
      );
    const three = agents(3);
    const four = agents(4);
    expect(three).toEqual({
      'etcd-1': 0,
      'etcd-2': 0,
      'etcd-3': 0,
      'backend-1': 1,
      'backend-2': 2,
      'backend-3': 3,
      'web-1': 101,
      'web-2': 102,
    });
    expect(four).toEqual({ ...three, 'backend-4': 4 });
  });
});

describe('settings a running cluster cannot take', () => {
  const env = { account: '123456789012', region: 'eu-west-1' };
  const key =
    'ssm:account=123456789012:parameterName=/pem-ha/stacks/PemHa/deployed-settings:region=eu-west-1';
  const deployed = {
    clusterName: 'pem-ha',
    postgresMajorVersion: 17,
    etcdNodeCount: 3,
    amiFamily: 'ubuntu-24.04',
    network: '10.40.0.0/16',
    backendNodeCount: 3,
    dataVolumeSizeGiB: 100,
  };
  const synthOver = (record: unknown, settings: Record<string, unknown>) => () =>
    synthStack({
      ...env,
      [key]: typeof record === 'string' ? record : JSON.stringify(record),
      ...settings,
    });

  test('Given a deployed cluster, then synth refuses a new clusterName, a lower backend count and a smaller volume, naming both values and the reason', () => {
    expect(
      synthOver(deployed, { clusterName: 'pem-ha2', backendNodeCount: 2, dataVolumeSizeGiB: 50 }),
    ).toThrow(
      [
        'Invalid pem-ha configuration:',
        '  - clusterName: cannot change from "pem-ha" (deployed) to "pem-ha2" on a running cluster: it names the Patroni scope, the data directory and every secret, so a new name would start an empty cluster beside the old data',
        '  - backendNodeCount: cannot change from 3 (deployed) to 2 on a running cluster: removing a backend deletes its instance and data volume; a deploy only adds backends (take a member out by hand: README, Day two)',
        '  - dataVolumeSizeGiB: cannot change from 100 (deployed) to 50 on a running cluster: an EBS volume can grow online but never shrink',
      ].join('\n'),
    );
  });

  test('Given a deployed cluster, then growing it (a fourth backend, a bigger volume) and live settings synthesize', () => {
    const { template } = synthOver(deployed, {
      backendNodeCount: 4,
      dataVolumeSizeGiB: 200,
      patroniTtl: 40,
    })();
    // And the record the next synth reads is this deploy's
    const [record] = Object.values(resourcesOf(template, 'AWS::SSM::Parameter')).filter(
      (p) => p.Properties.Name === '/pem-ha/stacks/PemHa/deployed-settings',
    );
    expect(JSON.parse(String(record.Properties.Value))).toEqual({
      ...deployed,
      backendNodeCount: 4,
      dataVolumeSizeGiB: 200,
    });
  });

  test('Given no deployed record yet, then synth says how to check later deploys against it', () => {
    const { stack } = synthOver('not-deployed', {})();
    const infos = Annotations.fromStack(stack)
      .findInfo('*', Match.anyValue())
      .map((m) => String(m.entry.data));
    expect(infos).toContainEqual(
      expect.stringContaining(`After the first deploy, run: npx cdk context --reset "${key}"`),
    );
  });
});
