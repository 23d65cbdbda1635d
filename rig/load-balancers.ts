/**
 * The load balancers' stand-ins, each HAProxy in a rig node of its own with
 * the load balancer's security groups: the NLB from the synthesized TCP
 * listeners and target groups, the ALB from the HTTPS listener and the web
 * target group. Their target health is the rig's DescribeTargetHealth.
 */
import type { RigCluster } from './cluster';
import { albHaproxyConfig, albListeners } from './alb';
import { haproxyConfig, nlbListeners, readTargetHealth } from './nlb';

/** Where HAProxy's admin socket is (READ_HAPROXY_STATS reads it). */
const STATS_SOCKET = '/run/haproxy-admin.sock';

export type TargetHealth = Record<number, Record<string, string>>;

function haproxyUnit(description: string, config: string): string {
  return [
    '[Unit]',
    `Description=${description}`,
    '[Service]',
    'Type=simple',
    `ExecStart=/usr/sbin/haproxy -W -db -f ${config}`,
    'KillMode=control-group',
    '',
  ].join('\n');
}

const targetsOf = (rig: RigCluster) =>
  rig.plan.nodes.map((n) => ({ instanceLogicalId: n.logicalId, name: n.name, address: n.address }));

/** Creates (or finds) a load balancer's node, with its packet filter and an HAProxy unit. */
async function addBalancerNode(
  rig: RigCluster,
  node: 'nlb' | 'alb',
  address: string,
  description: string,
): Promise<void> {
  // Idempotent: `bootstrap` on an existing rig finds the node made by an earlier run.
  if (!rig.host.nodeNames.includes(node)) {
    await rig.host.addNode({ name: node, address, lowerDir: rig.family.lowerDir });
  } else if (!rig.host.isRunning(node)) {
    await rig.host.restart(node);
  }
  // The other nodes' filters already name its address: only its own is new.
  await rig.applySecurityGroups(rig.template, [node]);
  await rig.writeFile(
    node,
    `/etc/systemd/system/pem-ha-${node}.service`,
    haproxyUnit(description, `/etc/haproxy/pem-ha-${node}.cfg`),
  );
}

/**
 * Writes a load balancer's HAProxy configuration and (re)starts it, unless it
 * runs with that configuration already: a restarted HAProxy counts every
 * server healthy until its first check fails, and would send writes to the
 * replicas for a moment, which a load balancer that a stack update leaves in
 * place never does.
 */
async function runHaproxy(rig: RigCluster, node: 'nlb' | 'alb', config: string): Promise<void> {
  const path = `/etc/haproxy/pem-ha-${node}.cfg`;
  const unit = `pem-ha-${node}`;
  const running = await rig.host.exec(node, {
    argv: ['sh', '-c', 'systemctl is-active --quiet "$1" && cat "$2"', 'running', unit, path],
    timeoutMs: 15_000,
  });
  if (running.exitCode === 0 && running.stdout === config) {
    rig.log(`the ${node} stand-in runs with this configuration already`);
    return;
  }
  await rig.writeFile(node, path, config);
  await rig.execOk(node, ['systemctl', 'restart', unit]);
}

/** The NLB stand-in, started with the template's check timing scaled by `scale`. */
export async function startNlb(rig: RigCluster, scale: number): Promise<void> {
  await addBalancerNode(rig, 'nlb', rig.plan.nlbAddress, 'pem-ha NLB stand-in');
  await configureNlb(rig, scale);
}

/**
 * (Re)generates the NLB's HAProxy with every health-check interval scaled
 * (1 = the template's timing), restarts it and waits for the endpoints.
 */
export async function configureNlb(rig: RigCluster, scale: number): Promise<void> {
  const config = haproxyConfig(nlbListeners(rig.template), {
    bindAddress: rig.plan.nlbAddress,
    targets: targetsOf(rig),
    intervalScale: scale,
    statsSocket: STATS_SOCKET,
  });
  await runHaproxy(rig, 'nlb', config);
  rig.log('waiting for the NLB stand-in to find the primary and the replicas');
  await rig.waitForEndpoints();
}

/**
 * The ALB stand-in, when the template has a web tier: a self-signed
 * certificate in the ACM certificate's place, then HAProxy, then a wait
 * until every web target passes its health check.
 */
export async function startAlb(rig: RigCluster): Promise<void> {
  const listeners = albListeners(rig.template);
  if (listeners.length === 0) return;
  const address = rig.plan.albAddress;
  await addBalancerNode(rig, 'alb', address, 'pem-ha ALB stand-in');
  const pem = '/etc/haproxy/pem-ha-alb.pem';
  await rig.execOk('alb', [
    'sh',
    '-c',
    'openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj "/CN=$1" -addext "subjectAltName=IP:$1" -keyout "$2.key" -out "$2.crt" 2>/dev/null && cat "$2.crt" "$2.key" > "$2" && rm "$2.key" && chmod 600 "$2"',
    'certificate',
    address,
    pem,
  ]);
  const config = albHaproxyConfig(listeners, {
    bindAddress: address,
    targets: targetsOf(rig),
    certificatePem: pem,
    statsSocket: STATS_SOCKET,
  });
  await runHaproxy(rig, 'alb', config);
  rig.log('waiting for the ALB stand-in to find the web hosts healthy');
  const webNodes = rig.plan.nodes.filter((n) => n.tier === 'web').length;
  await waitForTargets(rig, 'alb', (health) => upCount(health[listeners[0].port]) === webNodes);
}

const upCount = (targets: Record<string, string> | undefined) =>
  Object.values(targets ?? {}).filter((state) => state === 'UP').length;

/**
 * Waits (bounded) until `settled` holds for a view seen twice in a row:
 * HAProxy lists servers UP until their first checks fail, while a load
 * balancer starts targets unhealthy, so only a repeated view is a fair start.
 */
export async function waitForTargets(
  rig: RigCluster,
  node: 'nlb' | 'alb',
  settled: (health: TargetHealth) => boolean,
  timeoutMs = 120_000,
): Promise<TargetHealth> {
  const deadline = Date.now() + timeoutMs;
  let health: TargetHealth = {};
  let previous: string | undefined;
  while (Date.now() < deadline) {
    // Until HAProxy has opened its socket there is nothing to read yet.
    health = await readTargetHealth(rig.host.exec, node).catch(() => ({}));
    const ok = settled(health);
    if (ok && JSON.stringify(health) === previous) return health;
    previous = ok ? JSON.stringify(health) : undefined;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  throw new Error(
    `the ${node} stand-in's targets did not settle in ${timeoutMs / 1000} s: ${JSON.stringify(health)}`,
  );
}

/** The write endpoint with exactly one healthy target and the read endpoint every other backend. */
export function endpointsSettled(rig: RigCluster): (health: TargetHealth) => boolean {
  const backends = rig.plan.nodes.filter((n) => n.tier === 'backend').length;
  return (health) => upCount(health[5432]) === 1 && upCount(health[5433]) === backends - 1;
}
