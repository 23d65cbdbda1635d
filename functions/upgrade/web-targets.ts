import {
  DeregisterTargetsCommand,
  RegisterTargetsCommand,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import { targetHealth, UpgradeClients, UpgradeInventory, UpgradeNode } from './cluster';
import { ClusterUnhealthyError } from '../lib/cluster-errors';
import { InvalidInputError, TargetHealthTimedOutError } from './errors';
import { BOUNDS_SECONDS, look, Poll } from './poll';

/** The ALB's web target group; the pem component cannot run without it. */
function webGroup(clients: UpgradeClients): string {
  const arn = clients.targetGroups.web;
  if (!arn) {
    throw new InvalidInputError(
      'this stack has no PEM web tier (no ALB target group): the pem component needs PEM',
    );
  }
  return arn;
}

/** Web host instance id -> its state in the ALB's target group (absent: not registered). */
async function webTargetStates(clients: UpgradeClients): Promise<Map<string, string>> {
  webGroup(clients);
  return targetHealth(clients, 'web');
}

/** Registered and not leaving: what the ALB may route to. */
const inService = (state: string | undefined) =>
  state !== undefined && state !== 'draining' && state !== 'unused';

/**
 * Web hosts out of the ALB's target group, or on their way out: a run that
 * halted between deregistering and registering a host leaves it there.
 */
export async function webHostsOutOfService(
  clients: UpgradeClients,
  inventory: UpgradeInventory,
): Promise<UpgradeNode[]> {
  if (!clients.targetGroups.web || inventory.web.length === 0) return [];
  const states = await webTargetStates(clients);
  return inventory.web.filter((node) => !inService(states.get(node.instanceId)));
}

/**
 * Takes a web host out of the ALB (`registered` false: no new requests, those in
 * flight finish while it drains) or puts it back (it serves once it passes
 * the health check).
 */
export async function setWebHostInService(
  clients: UpgradeClients,
  inventory: UpgradeInventory,
  node: UpgradeNode,
  registered: boolean,
) {
  if (!registered && inventory.web.length > 1) {
    // Never the last server PEM's users have: another host must be serving.
    const states = await webTargetStates(clients);
    const others = inventory.web.filter((n) => n.name !== node.name);
    const serving = inService(states.get(node.instanceId));
    if (serving && !others.some((n) => states.get(n.instanceId) === 'healthy')) {
      const seen = others.map((n) => `${n.name} ${states.get(n.instanceId) ?? 'unregistered'}`);
      throw new ClusterUnhealthyError(
        `no other web host is healthy in the ALB's target group (${seen.join(', ')}): taking ${node.name} out would leave PEM's users without a server; ${node.name} was left in service`,
      );
    }
  }
  const target = { TargetGroupArn: webGroup(clients), Targets: [{ Id: node.instanceId }] };
  await clients.elb.send(
    registered ? new RegisterTargetsCommand(target) : new DeregisterTargetsCommand(target),
  );
  return { node: node.name, registered };
}

/**
 * Waits until the ALB has let go of a web host (draining over: the target is
 * no longer registered) or routes to it again (healthy).
 */
export async function awaitWebTarget(
  clients: UpgradeClients,
  node: UpgradeNode,
  want: 'out' | 'healthy',
  deadline?: number,
): Promise<Poll> {
  const state = (await webTargetStates(clients)).get(node.instanceId) ?? 'unregistered';
  const ready = want === 'healthy' ? state === 'healthy' : state === 'unregistered';
  return look(
    (clients.now ?? Date.now)(),
    deadline,
    BOUNDS_SECONDS.target,
    ready,
    `web host ${node.name} is ${state} in the ALB's target group, waiting for ${want === 'out' ? 'its draining to end' : 'healthy'}`,
    (message) => new TargetHealthTimedOutError(message),
  );
}
