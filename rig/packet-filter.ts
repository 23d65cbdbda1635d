/**
 * The synthesized security groups as each rig namespace's packet filter: an
 * nftables table per node, generated from the groups the template gives that
 * node's instance (or load balancer), ingress and egress, stateful like a
 * security group. Nothing is added by hand, so a flow the template forbids
 * fails on the rig as it would in the VPC.
 */
import { resourcesOfType, SynthesizedTemplate } from './template';
import { SecurityGroupPeer, SecurityGroupRule } from './security-groups';

/** One address on the rig network and the security groups it is a member of. */
export interface FilterMember {
  readonly name: string;
  readonly address: string;
  /** Logical ids of its security groups. */
  readonly groups: readonly string[];
}

const TABLE = 'pem_ha_security_groups';

const groupIdsOf = (value: unknown): string[] =>
  ((value as unknown[] | undefined) ?? [])
    .map((id) => (id as { 'Fn::GetAtt'?: [string] })['Fn::GetAtt']?.[0])
    .filter((id): id is string => id !== undefined);

/** The security groups of each EC2 instance, by logical id. */
export function instanceGroups(template: SynthesizedTemplate): Map<string, string[]> {
  return new Map(
    resourcesOfType(template, 'AWS::EC2::Instance').map(([id, instance]) => [
      id,
      groupIdsOf(instance.Properties?.SecurityGroupIds),
    ]),
  );
}

/** The security groups of the load balancer of `type` ('network' or 'application'). */
export function loadBalancerGroups(
  template: SynthesizedTemplate,
  type: 'network' | 'application',
): string[] {
  const balancer = resourcesOfType(template, 'AWS::ElasticLoadBalancingV2::LoadBalancer').find(
    ([, resource]) => (resource.Properties?.Type ?? 'application') === type,
  );
  return groupIdsOf(balancer?.[1].Properties?.SecurityGroups);
}

/** The security groups of every Lambda function in the VPC (the rig runs them all on the host). */
export function functionGroups(template: SynthesizedTemplate): string[] {
  const groups = resourcesOfType(template, 'AWS::Lambda::Function').flatMap(([, fn]) =>
    groupIdsOf((fn.Properties?.VpcConfig as { SecurityGroupIds?: unknown })?.SecurityGroupIds),
  );
  return [...new Set(groups)];
}

/** The addresses or CIDRs a peer stands for on the rig; empty when nothing there matches. */
function peerAddresses(peer: SecurityGroupPeer, members: readonly FilterMember[]): string[] {
  switch (peer.kind) {
    case 'group':
      return members.filter((m) => m.groups.includes(peer.group)).map((m) => m.address);
    case 'cidr':
      return [peer.cidr];
    // The S3 gateway endpoint's prefix list has no place on the rig network.
    case 'prefixList':
      return [];
  }
}

function matchProtocol(rule: SecurityGroupRule): string | undefined {
  const ports =
    rule.fromPort === rule.toPort ? `${rule.fromPort}` : `${rule.fromPort}-${rule.toPort}`;
  switch (rule.protocol) {
    case '-1':
      return '';
    case 'tcp':
    case '6':
      return `tcp dport ${ports} `;
    case 'udp':
    case '17':
      return `udp dport ${ports} `;
    case 'icmp':
    case '1':
      return 'meta l4proto icmp ';
    default:
      return undefined;
  }
}

function ruleLines(
  rules: readonly SecurityGroupRule[],
  direction: SecurityGroupRule['direction'],
  members: readonly FilterMember[],
): string[] {
  const field = direction === 'ingress' ? 'saddr' : 'daddr';
  return rules
    .filter((rule) => rule.direction === direction)
    .flatMap((rule) => {
      const addresses = peerAddresses(rule.peer, members);
      const protocol = matchProtocol(rule);
      if (addresses.length === 0 || protocol === undefined) return [];
      const comment = JSON.stringify(`${rule.group}: ${rule.description ?? ''}`.slice(0, 120));
      return [`    ip ${field} { ${addresses.join(', ')} } ${protocol}accept comment ${comment}`];
    });
}

/**
 * The nftables script for `self`: replaces the table, then admits what its
 * groups' rules admit. Stateful (replies of allowed flows pass) and blind to
 * the loopback interface, as security groups do not see traffic that never
 * leaves the instance.
 */
export function nftRuleset(
  self: FilterMember,
  members: readonly FilterMember[],
  rules: readonly SecurityGroupRule[],
): string {
  const own = rules.filter((rule) => self.groups.includes(rule.group));
  const chain = (name: string, hook: string, iface: string, lines: string[]) => [
    `  chain ${name} {`,
    `    type filter hook ${hook} priority filter; policy drop;`,
    '    ct state established,related accept',
    `    ${iface} lo accept`,
    ...lines,
    '  }',
  ];
  return [
    `# ${self.name} (${self.address}): security groups ${self.groups.join(', ') || 'none'}`,
    `table inet ${TABLE} {}`,
    `delete table inet ${TABLE}`,
    `table inet ${TABLE} {`,
    ...chain('ingress', 'input', 'iif', ruleLines(own, 'ingress', members)),
    ...chain('egress', 'output', 'oif', ruleLines(own, 'egress', members)),
    '}',
    '',
  ].join('\n');
}

/**
 * Everything with an address on the rig network and its groups: the nodes
 * (their instances' groups), the load balancers' stand-ins, and the host, where the
 * Lambda handlers run (their functions' groups) and the tests connect from
 * (a client network the rig synthesizes with).
 */
export function rigFilterMembers(
  template: SynthesizedTemplate,
  nodes: readonly { readonly name: string; readonly address: string; readonly logicalId: string }[],
  balancers: { readonly nlb: string; readonly alb: string },
  hostAddress: string,
): FilterMember[] {
  const byInstance = instanceGroups(template);
  return [
    ...nodes.map((node) => ({
      name: node.name,
      address: node.address,
      groups: byInstance.get(node.logicalId) ?? [],
    })),
    { name: 'nlb', address: balancers.nlb, groups: loadBalancerGroups(template, 'network') },
    { name: 'alb', address: balancers.alb, groups: loadBalancerGroups(template, 'application') },
    { name: 'host', address: hostAddress, groups: functionGroups(template) },
  ];
}
