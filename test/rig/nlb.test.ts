import { haproxyConfig, nlbListeners, parseTargetHealth } from '../../rig/nlb';
import { planCluster } from '../../rig/plan';
import type { SynthesizedTemplate } from '../../rig/template';
import { haproxyCheck } from '../helpers/haproxy';
import { synthStack } from '../helpers/synth';

function standIn(settings: Record<string, unknown> = {}) {
  const template = synthStack(settings).template.toJSON() as SynthesizedTemplate;
  const plan = planCluster(template);
  const targets = plan.nodes.map((node) => ({
    instanceLogicalId: node.logicalId,
    name: node.name,
    address: node.address,
  }));
  return { listeners: nlbListeners(template), plan, targets };
}

describe('NLB stand-in (HAProxy from the synthesized target groups)', () => {
  test('Given the default template, then 5432 checks GET /primary and 5433 GET /replica?lag= over HTTPS on 8008 with its timing', () => {
    const { listeners } = standIn();
    expect(listeners.map((l) => [l.port, l.healthCheck.path])).toEqual([
      [5432, '/primary'],
      [5433, '/replica?lag=16777216'],
    ]);
    for (const listener of listeners) {
      expect(listener.healthCheck).toMatchObject({
        protocol: 'HTTPS',
        port: 8008,
        intervalSeconds: 5,
        healthyThreshold: 2,
        unhealthyThreshold: 2,
      });
      expect(listener.terminateOnUnhealthy).toBe(true);
      expect(listener.targetLogicalIds).toHaveLength(3);
    }
  });

  test('Given other health-check settings, then the generated HAProxy follows them', () => {
    const { listeners, targets } = standIn({
      healthCheckIntervalSeconds: '10',
      healthCheckHealthyThreshold: '3',
      replicaMaxLagBytes: '1024',
    });
    const config = haproxyConfig(listeners, {
      bindAddress: '10.40.3.100',
      targets,
      statsSocket: '/run/haproxy.sock',
    });
    expect(config).toContain('http-check send meth GET uri /replica?lag=1024');
    expect(config).toMatch(
      /server backend-2 10\.40\.4\.20:5432 check check-ssl verify none port 8008 inter 10000ms fall 2 rise 3 on-marked-down shutdown-sessions/,
    );
  });

  test('Given every target unhealthy, then the same servers serve as backups (the NLB fails open), and HAProxy accepts the file', () => {
    const { listeners, targets } = standIn();
    const config = haproxyConfig(listeners, {
      bindAddress: '127.0.0.1',
      targets,
      statsSocket: '/tmp/x.sock',
    });
    expect(config).toContain('option allbackups');
    expect(config).toContain('server backend-1-fail-open 10.40.3.20:5432 backup');
    expect(haproxyCheck(config)).toContain('Configuration file is valid');
  });
});

describe('rig plan', () => {
  test('Given the template, then each instance becomes a node at its fixed address with stand-in ids', () => {
    const { plan } = standIn();
    expect(plan.nodes.map((n) => `${n.name}@${n.address}`)).toEqual([
      'etcd-1@10.40.3.10',
      'etcd-2@10.40.4.10',
      'etcd-3@10.40.5.10',
      'backend-1@10.40.3.20',
      'backend-2@10.40.4.20',
      'backend-3@10.40.5.20',
      'web-1@10.40.3.30',
      'web-2@10.40.4.30',
    ]);
    expect(plan.nodes.filter((n) => n.dataVolume).map((n) => n.name)).toEqual([
      'backend-1',
      'backend-2',
      'backend-3',
    ]);
    for (const node of plan.nodes) expect(node.instanceId).toMatch(/^i-[0-9a-f]{17}$/);
    expect(plan.nlbAddress).toBe('10.40.3.100');
  });
});

describe("reading HAProxy's statistics as target health", () => {
  test('Given show-stat rows, then each listener lists its targets and leaves out frontends, backends and fail-open twins', () => {
    const csv = [
      'port_5432,FRONTEND,OPEN',
      'port_5432,backend-1,UP',
      'port_5432,backend-2,DOWN 1/2',
      'port_5432,backend-1-fail-open,no check',
      'port_5432,BACKEND,UP',
      'port_5433,backend-2,UP',
    ].join('\n');
    expect(parseTargetHealth(csv)).toEqual({
      5432: { 'backend-1': 'UP', 'backend-2': 'DOWN' },
      5433: { 'backend-2': 'UP' },
    });
  });
});
