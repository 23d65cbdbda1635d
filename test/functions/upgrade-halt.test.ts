import { DescribeTargetHealthCommand } from '@aws-sdk/client-elastic-load-balancing-v2';
import type { PatroniMember } from '../../functions/lib/patroni';
import { halt, haltReport } from '../../functions/upgrade/steps';
import {
  ec2,
  elb,
  HEALTHY as healthy,
  INVENTORY as inventory,
  upgradeClients as clients,
} from '../helpers/upgrade-clients';

afterEach(() => {
  elb.reset();
  ec2.reset();
});

const DRAIN_TAGS = { noloadbalance: true, nosync: true };
const tagged = (members: PatroniMember[], name: string, tags: Record<string, unknown>) =>
  members.map((m) => (m.name === name ? { ...m, tags } : m));

describe('halt', () => {
  test('Given a paused cluster with a scheduled switchover, when halting, then both are undone and one healthy primary is reported', async () => {
    const { value, sent } = clients(healthy, {
      cluster: { pause: true, scheduled_switchover: { at: 'x' } },
    });
    const result = await halt(value, inventory);
    expect(sent).toEqual([
      'DELETE 10.0.0.1/switchover null',
      'PATCH 10.0.0.1/config {"pause":false}',
    ]);
    expect(result).toEqual({
      healthyPrimary: true,
      summary:
        'cancelled the scheduled switchover; resumed Patroni; one healthy primary, backend-1',
      actions: ['cancelled the scheduled switchover', 'resumed Patroni'],
      primary: 'one healthy primary, backend-1',
      drained: [],
      unknown: [],
    });
  });

  test('Given the write endpoint routes to no one, when halting, then it says so', async () => {
    const { value } = clients(healthy);
    elb.on(DescribeTargetHealthCommand).resolves({ TargetHealthDescriptions: [] });
    const result = await halt(value, inventory);
    expect(result.healthyPrimary).toBe(false);
    expect(result.summary).toContain('NO single healthy primary');
  });

  test('Given backend-3 drained and backend-2 missing from /cluster, when halting, then drained lists the inventory node and unknown lists backend-2 with its EC2 state', async () => {
    const members = tagged(healthy, 'backend-3', DRAIN_TAGS).filter((m) => m.name !== 'backend-2');
    const { value } = clients(members, {
      down: ['backend-2'],
      ec2States: { 'backend-2': 'stopped' },
    });
    const result = await halt(value, inventory);
    expect(result.drained).toEqual([inventory.backend[2]]);
    expect(result.unknown).toEqual([{ name: 'backend-2', ec2State: 'stopped' }]);
  });

  test('Given only nosync is set, when halting, then the node counts as drained', async () => {
    const { value } = clients(tagged(healthy, 'backend-2', { nosync: true, noloadbalance: false }));
    const result = await halt(value, inventory);
    expect(result.drained.map((n) => n.name)).toEqual(['backend-2']);
  });

  test('Given /cluster cannot be read at all, when halting, then it reports so rather than throwing and every backend is unknown', async () => {
    const { value, sent } = clients(healthy, { clusterDown: true });
    const result = await halt(value, inventory);
    expect(sent).toEqual([]);
    expect(result.healthyPrimary).toBe(false);
    expect(result.actions).toEqual([
      "could not read Patroni's /cluster (no backend's Patroni REST API answered GET /cluster: " +
        '10.0.0.1:8008/cluster answered 503; 10.0.0.2:8008/cluster answered 503; 10.0.0.3:8008/cluster answered 503)',
    ]);
    expect(result.primary).toMatch(/^NO single healthy primary: no backend's Patroni REST API/);
    expect(result.unknown.map((u) => `${u.name} ${u.ec2State}`)).toEqual([
      'backend-1 running',
      'backend-2 running',
      'backend-3 running',
    ]);
  });
});

describe('haltReport', () => {
  const earlier = {
    healthyPrimary: true,
    summary: 'resumed Patroni; one healthy primary, backend-1',
    actions: ['resumed Patroni'],
    primary: 'one healthy primary, backend-1',
    drained: [inventory.backend[1], inventory.backend[2]],
    unknown: [],
  };

  test('Given the drain tags were cleared since the halt, then the report says so on one line', async () => {
    const { value } = clients(healthy);
    await expect(haltReport(value, inventory, earlier)).resolves.toEqual({
      summary:
        'resumed Patroni; one healthy primary, backend-1; drain tags cleared on backend-2, backend-3',
    });
  });

  test('Given one node still drained and one whose Patroni is down, then the report names each and what to do', async () => {
    const members = tagged(healthy, 'backend-2', { nosync: true }).filter(
      (m) => m.name !== 'backend-3',
    );
    const { value } = clients(members, {
      down: ['backend-3'],
      ec2States: { 'backend-3': 'stopped' },
    });
    const { summary } = await haltReport(value, inventory, earlier);
    expect(summary).toBe(
      'resumed Patroni; one healthy primary, backend-1; ' +
        "backend-2 still has nosync set (out of the read endpoint): the next upgrade run clears them first, or run the upgrade document's undrain action on it; " +
        'backend-3 (EC2 stopped) is not answering: if this run drained it, noloadbalance and nosync stay set in its patroni.yml; the next upgrade run clears them first',
    );
    expect(summary).not.toContain('\n');
  });
});
