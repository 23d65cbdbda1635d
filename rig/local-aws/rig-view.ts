/**
 * The rig as EC2 and ELBv2 describe it: the plan's nodes as instances with
 * their template tags (running while the node's init lives), and the
 * template's target groups with the health the NLB's and the ALB's HAProxy
 * check; the ALB's web targets can be deregistered and registered again.
 */
import { join } from 'node:path';
import type { RigHost } from '../host/host';
import { nlbListeners, readTargetHealth } from '../nlb';
import { RigNodePlan, RigPlan, rigResourceValues } from '../plan';
import { resolveIntrinsics, resourcesOfType, SynthesizedTemplate } from '../template';
import type { LocalInstance } from './ec2';
import { listenersWithGroups } from '../listeners';
import { AlbServer, albTargetHealth, changeAlbRegistration, readAlbServers } from './alb-targets';
import type { TargetHealthDescription, TargetHealthLookup, TargetRegistration } from './elbv2';
import { AwsError } from './ssm';
import { ACCOUNT, LocalAws, LocalAwsOptions, REGION } from './server';

export interface RigState {
  /** Whether a node is up (its init alive). */
  readonly isRunning: (node: string) => boolean;
  /** HAProxy's view: listener port -> node -> UP / DOWN / NOLB / MAINT… */
  readonly haproxyHealth: () => Promise<Record<number, Record<string, string>>>;
  /** The ALB stand-in's servers of a listener port, and their (de)registration. @default no ALB */
  readonly alb?: {
    readonly servers: (port: number) => Promise<Record<string, AlbServer>>;
    readonly register: (port: number, nodes: RigNodePlan[], registered: boolean) => Promise<void>;
  };
}

const PSEUDO = { region: REGION, accountId: ACCOUNT };

/**
 * The LocalAws of a rig: its secrets file in `stateDir`, its nodes and NLB as
 * EC2 and ELBv2 see them, and `replaceRoot` as EC2's root volume replacement.
 */
export function rigLocalAws(
  host: RigHost,
  plan: RigPlan,
  template: SynthesizedTemplate,
  stateDir: string,
  replaceRoot?: (node: string) => Promise<void>,
): LocalAws {
  const nodeOf = (instanceId: string) => plan.nodes.find((n) => n.instanceId === instanceId)!.name;
  return new LocalAws({
    secretsFile: join(stateDir, 'secrets.json'),
    parametersFile: join(stateDir, 'parameters.json'),
    executionsFile: join(stateDir, 'executions.jsonl'),
    ...(replaceRoot && {
      replaceRootVolume: (instance) => replaceRoot(nodeOf(instance.instanceId)),
    }),
    ...rigView(plan, template, {
      isRunning: (node) => host.nodeNames.includes(node) && host.isRunning(node),
      haproxyHealth: () => readTargetHealth(host.exec),
      alb: {
        servers: (port) => readAlbServers(host.exec, port),
        register: (port, nodes, registered) =>
          changeAlbRegistration(host.exec, port, nodes, registered),
      },
    }),
  });
}

/** DescribeInstances' and DescribeTargetHealth's sources for a plan and its template. */
export function rigView(
  plan: RigPlan,
  template: SynthesizedTemplate,
  state: RigState,
): Required<Pick<LocalAwsOptions, 'instances' | 'targetHealth' | 'targetRegistration'>> {
  const resources = rigResourceValues(plan, template, PSEUDO);
  const described = plan.nodes.map((node) => {
    const properties = template.Resources[node.logicalId]?.Properties ?? {};
    const tags = (properties.Tags ?? []) as { Key: string; Value: unknown }[];
    const value = (v: unknown) =>
      typeof v === 'string' ? v : String(resolveIntrinsics(v, resources, PSEUDO));
    return {
      node,
      instanceType:
        typeof properties.InstanceType === 'string' ? properties.InstanceType : undefined,
      tags: Object.fromEntries(tags.map((tag) => [tag.Key, value(tag.Value)])),
    };
  });
  const instances = () =>
    described.map(({ node, instanceType, tags }): LocalInstance => ({
      instanceId: node.instanceId,
      privateIpAddress: node.address,
      ...(instanceType && { instanceType }),
      tags,
      state: state.isRunning(node.name) ? 'running' : 'stopped',
    }));

  const listeners = nlbListeners(template);
  const nodes = new Map(plan.nodes.map((node) => [node.logicalId, node]));
  const groups = new Map(
    resourcesOfType(template, 'AWS::ElasticLoadBalancingV2::TargetGroup').map(
      ([logicalId, group]) => {
        const properties = group.Properties ?? {};
        const listener = listeners.find((l) => l.targetGroupLogicalId === logicalId);
        const targets = (properties.Targets ?? []) as { Id: { Ref?: string }; Port?: number }[];
        const registered = targets.flatMap((target) => {
          const node = nodes.get(String(target.Id.Ref));
          const port = Number(target.Port ?? properties.Port);
          const configured = properties.HealthCheckPort;
          const checked =
            listener?.healthCheck.port ??
            (configured === undefined || configured === 'traffic-port' ? port : configured);
          return node ? [{ node, port, healthCheckPort: String(checked) }] : [];
        });
        return [resources.ref(logicalId), { listenerPort: listener?.port, registered }];
      },
    ),
  );
  const web = albGroup(plan, template, resources.ref);
  const targetHealth: TargetHealthLookup = async (arn) => {
    if (arn === web?.arn) return describeAlbGroup(web, state);
    const group = groups.get(arn);
    if (!group) return undefined;
    const { listenerPort } = group;
    const health =
      listenerPort === undefined
        ? undefined
        : await state.haproxyHealth().then(
            (ports) => ports[listenerPort] ?? {},
            (error: Error) => error,
          );
    return group.registered.map(({ node, port, healthCheckPort }) => {
      const described = !state.isRunning(node.name)
        ? UNHEALTHY.stopped
        : health === undefined
          ? UNHEALTHY.noLoadBalancer
          : health instanceof Error
            ? UNHEALTHY.unavailable
            : fromHaproxy(health[node.name]);
      return { id: node.instanceId, port, healthCheckPort, ...described };
    });
  };
  const targetRegistration: TargetRegistration = async (arn, instanceIds, registered) => {
    if (arn !== web?.arn) {
      if (!groups.has(arn)) return false;
      throw new AwsError(
        'UnsupportedOperation',
        `the rig registers and deregisters targets in the ALB's web target group only, not ${arn}`,
      );
    }
    const nodes = instanceIds.map((id) => {
      const node = web.nodes.find((n) => n.instanceId === id);
      if (!node) throw new AwsError('InvalidTarget', `${id} is not a web host of ${arn}`);
      return node;
    });
    if (!state.alb) throw new AwsError('UnsupportedOperation', 'this rig has no ALB stand-in');
    await state.alb.register(web.port, nodes, registered);
    return true;
  };
  return { instances, targetHealth, targetRegistration };
}

interface AlbGroup {
  readonly arn: string;
  /** The listener's port (HAProxy's backend port_<port>) and the targets' port. */
  readonly port: number;
  readonly targetPort: number;
  readonly deregistrationDelaySeconds: number;
  readonly nodes: RigNodePlan[];
}

/** The web target group behind the ALB's HTTPS listener, when the template has one. */
function albGroup(
  plan: RigPlan,
  template: SynthesizedTemplate,
  ref: (logicalId: string) => string,
): AlbGroup | undefined {
  const [listener] = listenersWithGroups(template, 'HTTPS');
  if (!listener) return undefined;
  return {
    arn: ref(listener.groupLogicalId),
    port: Number(listener.listener.Port),
    targetPort: Number(listener.group.Port),
    // CloudFormation's default is 300 s.
    deregistrationDelaySeconds: Number(
      listener.attributes.get('deregistration_delay.timeout_seconds') ?? 300,
    ),
    nodes: plan.nodes.filter((n) => listener.targetLogicalIds.includes(n.logicalId)),
  };
}

/** The web target group's registered targets as ELBv2 lists them (deregistered ones are gone). */
async function describeAlbGroup(group: AlbGroup, state: RigState) {
  const servers = state.alb ? await state.alb.servers(group.port).catch(() => undefined) : {};
  return group.nodes.flatMap((node): TargetHealthDescription[] => {
    const port = group.targetPort;
    const described = !state.isRunning(node.name)
      ? UNHEALTHY.stopped
      : servers === undefined
        ? UNHEALTHY.unavailable
        : albTargetHealth(servers[node.name], group.deregistrationDelaySeconds);
    return described
      ? [{ id: node.instanceId, port, healthCheckPort: String(port), ...described }]
      : [];
  });
}

type Health = Pick<TargetHealthDescription, 'state' | 'reason' | 'description'>;

const UNHEALTHY = {
  stopped: {
    state: 'unused',
    reason: 'Target.InvalidState',
    description: 'Target is in the stopped state',
  },
  noLoadBalancer: {
    state: 'unused',
    reason: 'Target.NotInUse',
    description: 'Target group is not configured to receive traffic from the load balancer',
  },
  unavailable: {
    state: 'unavailable',
    reason: 'Elb.InternalError',
    description: 'Target health is unavailable',
  },
} satisfies Record<string, Health>;

/** An HAProxy server status as the NLB's target health. */
function fromHaproxy(status: string | undefined): Health {
  switch (status) {
    case 'UP':
      return { state: 'healthy' };
    case 'DOWN':
    case 'NOLB':
      return {
        state: 'unhealthy',
        reason: 'Target.FailedHealthChecks',
        description: 'Health checks failed',
      };
    case 'MAINT':
    case 'DRAIN':
      return {
        state: 'draining',
        reason: 'Target.DeregistrationInProgress',
        description: 'Target deregistration is in progress',
      };
    default:
      // Not checked yet (or not listed yet): an NLB's newly registered target.
      return {
        state: 'initial',
        reason: 'Elb.RegistrationInProgress',
        description: 'Target registration is in progress',
      };
  }
}
