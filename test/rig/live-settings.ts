/**
 * Settings that reach the running cluster, on the cluster suite's rig
 * (called from cluster.test.ts, which owns the rig): the deploy path run
 * again from a re-synthesized template with changed settings.
 */
import type { RigCluster } from '../../rig/cluster';
import { POSTGRESQL_17_PARAMETERS } from '../../infra/config/postgresql-17-parameters';
import {
  LAG_UNDER_WRITES,
  patroniGet,
  PatroniMember,
  waitForHealthyReplication,
} from '../../rig/patroni';
import {
  certificateOn,
  endpointQueryOn,
  eventually,
  lostWrites,
  nodeQueryOn,
  startEndpointWriter,
} from '../helpers/rig';

const BACKENDS = ['backend-1', 'backend-2', 'backend-3'];

export function liveSettingsTests(rig: () => RigCluster): void {
  const leaderOf = (members: readonly PatroniMember[]) => members.find((m) => m.role === 'leader')!;
  const postmasterStart = async (node: string) =>
    (await nodeQueryOn(rig(), node, 'SELECT pg_postmaster_start_time()::text')).trim();
  const everywhere = async (query: string) =>
    Promise.all(
      rig()
        .plan.nodes.filter((n) => n.tier === 'backend')
        .map((node) => nodeQueryOn(rig(), node.name, query)),
    );
  const pendingRestart = async () =>
    (
      (await patroniGet(rig(), '/cluster')) as {
        members: { name: string; pending_restart?: boolean }[];
      }
    ).members
      .filter((m) => m.pending_restart)
      .map((m) => m.name)
      .sort();
  const subjectOf = (node: string, identity: string) =>
    certificateOn(rig(), node, identity, 'subject');
  /** PATCH /config on a backend with the REST API's credentials, as an operator could. */
  const patchConfig = async (patch: Record<string, unknown>) => {
    const password = JSON.parse(rig().aws.secretValue('pem-ha/patroniRestApi') ?? '{}').password;
    const node = rig().plan.nodes.find((n) => n.name === 'backend-1')!;
    await rig().execOk(
      node.name,
      [
        'curl',
        '-fsS',
        '--cacert',
        '/etc/pem-ha/tls/current/ca.crt',
        '-K',
        '-',
        '-X',
        'PATCH',
        '-d',
        JSON.stringify(patch),
        `https://${node.address}:8008/config`,
      ],
      `user = "patroni_api:${password}"\n`,
    );
  };
  // A node's certificate serials and its Patroni's process (unchanged means not restarted).
  const nodeState = async (node: string) =>
    rig().execOk(node, [
      'sh',
      '-c',
      'for c in /etc/pem-ha/tls/current/*.crt; do printf "%s %s\\n" "$c" "$(openssl x509 -in "$c" -noout -serial)"; done; systemctl show -p MainPID --value patroni 2>/dev/null || true',
    ]);

  test("pem-ha's list of PostgreSQL 17 parameters and their contexts is the running PostgreSQL's", async () => {
    const rows = await nodeQueryOn(
      rig(),
      'backend-1',
      "SELECT context || ':' || string_agg(name, ' ' ORDER BY name COLLATE \"C\") FROM pg_settings WHERE context <> 'internal' GROUP BY context",
    );
    const running = Object.fromEntries(
      rows.split('\n').map((line) => {
        const [context, names] = line.split(':');
        return [context, names.split(' ')];
      }),
    );
    expect(running).toEqual(
      Object.fromEntries(
        Object.entries(POSTGRESQL_17_PARAMETERS).map(([context, names]) => [context, [...names]]),
      ),
    );
  });

  test("a deploy that adds a fourth backend and changes patroniTtl, a reload-only and a restart-only parameter: the bootstrap starts the new member as agent 4 and applies the first two with the leader, its PostgreSQL and every node's certificates and Patroni unchanged, PATCHing back a dynamic setting changed behind its back; then the rollout restarts one member at a time with one switchover at most, and no acknowledged write or row is lost", async () => {
    await endpointQueryOn(
      rig(),
      5432,
      'CREATE TABLE IF NOT EXISTS settings_writes (id int PRIMARY KEY)',
    );
    // Given the leader and when its PostgreSQL started, every node's certificates and
    // Patroni process, failsafe_mode turned off in etcd by hand, and a writer through the endpoint
    const before = leaderOf(await waitForHealthyReplication(rig()));
    const started = await postmasterStart(before.name);
    const existing = rig().plan.nodes.map((n) => n.name);
    const state = async () =>
      Object.fromEntries(
        await Promise.all(existing.map(async (node) => [node, await nodeState(node)] as const)),
      );
    const stateBefore = await state();
    const pemConfigurations = async () =>
      (
        await rig().execOk('backend-1', ['cat', '/var/lib/pem-ha/configure-pem-server.calls'])
      ).match(/^argv:/gm)?.length;
    const pemConfigurationsBefore = await pemConfigurations();
    await patchConfig({ failsafe_mode: false });
    const writer = startEndpointWriter(rig(), 'settings_writes', 6000);
    let ran: string[];
    try {
      // When the settings change and the deploy path runs again
      ({ ran } = await rig().redeploy(
        {
          backendNodeCount: '4',
          patroniTtl: '25',
          postgresqlParameters: JSON.stringify({
            log_min_duration_statement: '250ms',
            max_connections: 150,
          }),
        },
        async (run) => {
          if (!run.startsWith('BootstrapRun')) return;
          // Then, once the bootstrap ran: four members, the new one agent 4, the new ttl,
          // failsafe_mode back, the reload-only parameter everywhere, max_connections
          // waiting for a restart on the three that were running, and no restart yet
          // (the writer still runs)
          const members = await waitForHealthyReplication(rig(), 180_000, LAG_UNDER_WRITES);
          expect(members.map((m) => m.name).sort()).toEqual([...BACKENDS, 'backend-4']);
          expect(await subjectOf('backend-4', 'pem-agent')).toBe('subject=CN=agent4');
          const config = (await patroniGet(rig(), '/config')) as {
            ttl: number;
            failsafe_mode: boolean;
            postgresql: { parameters: Record<string, unknown> };
          };
          expect(config).toMatchObject({ ttl: 25, failsafe_mode: true });
          expect(config.postgresql.parameters).toMatchObject({
            log_min_duration_statement: '250ms',
            max_connections: 150,
          });
          await eventually(
            'every member to reload, and the older ones to wait for a restart',
            60_000,
            async () => {
              expect(new Set(await everywhere('SHOW log_min_duration_statement'))).toEqual(
                new Set(['250ms']),
              );
              expect(await pendingRestart()).toEqual(BACKENDS);
            },
          );
          const now = leaderOf(members);
          expect([now.name, now.timeline]).toEqual([before.name, before.timeline]);
          expect(await postmasterStart(before.name)).toBe(started);
          expect(await state()).toEqual(stateBefore);
        },
      ));
    } finally {
      await writer.stop();
    }
    // And the rollout ran after it: max_connections everywhere, nothing pending,
    // and still no certificate reissued and no Patroni restarted
    expect(ran.map((id) => id.replace(/[0-9A-F]{8}$/, ''))).toEqual([
      'BootstrapRun',
      'BootstrapSettingsRollout',
    ]);
    expect(new Set(await everywhere('SHOW max_connections'))).toEqual(new Set(['150']));
    expect(await pendingRestart()).toEqual([]);
    expect(await state()).toEqual(stateBefore);
    const after = leaderOf(await waitForHealthyReplication(rig()));
    expect(after.timeline! - before.timeline!).toBeLessThanOrEqual(1);
    expect(writer.acknowledged.length).toBeGreaterThan(10);
    expect(await lostWrites(rig(), 'settings_writes', writer.acknowledged)).toEqual([]);
    expect(await endpointQueryOn(rig(), 5432, 'SELECT count(*)::int AS n FROM rows_kept')).toEqual([
      { n: 100 },
    ]);
    // PEM's configuration did not run again on backend-1
    expect(await pemConfigurations()).toBe(pemConfigurationsBefore);
    console.log(
      `deployed: backend-4 added; ttl 25 and log_min_duration_statement by reload; max_connections 150 rolled out, leader ${before.name} (timeline ${before.timeline}) -> ${after.name} (timeline ${after.timeline}); ${writer.acknowledged.length} writes acknowledged, none lost`,
    );
  }, 900_000);
}
