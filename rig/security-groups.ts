/**
 * The synthesized security groups as data: every ingress and egress rule,
 * inline or standalone, with its peer resolved to a group's logical id or a
 * literal CIDR. The rig's packet filters and the template's flow test both
 * read the groups from here, so neither keeps a copy of the rules.
 */
import { resourcesOfType, SynthesizedTemplate } from './template';

export type SecurityGroupPeer =
  | { readonly kind: 'group'; readonly group: string }
  | { readonly kind: 'cidr'; readonly cidr: string }
  | { readonly kind: 'prefixList'; readonly prefixList: string };

export interface SecurityGroupRule {
  readonly direction: 'ingress' | 'egress';
  /** Logical id of the group the rule belongs to. */
  readonly group: string;
  /** 'tcp', 'udp', 'icmp' or '-1' (every protocol). */
  readonly protocol: string;
  readonly fromPort?: number;
  readonly toPort?: number;
  readonly peer: SecurityGroupPeer;
  readonly description?: string;
}

export interface SecurityGroup {
  readonly logicalId: string;
  readonly description: string;
}

type RawRule = Record<string, unknown>;

/** The logical id a `{ Fn::GetAtt: [id, 'GroupId'] }` or `{ Ref: id }` names. */
function groupOf(value: unknown): string | undefined {
  const v = value as { 'Fn::GetAtt'?: [string, string]; Ref?: string } | undefined;
  return v?.['Fn::GetAtt']?.[0] ?? v?.Ref;
}

/**
 * CDK's placeholder for a group with no egress at all (ICMP type 252 code 86
 * to 255.255.255.255/32) matches no real packet: it is dropped here.
 */
function isNoTrafficPlaceholder(rule: RawRule): boolean {
  return rule.CidrIp === '255.255.255.255/32' && rule.IpProtocol === 'icmp';
}

function toRule(
  direction: SecurityGroupRule['direction'],
  group: string,
  raw: RawRule,
  where: string,
): SecurityGroupRule | undefined {
  if (isNoTrafficPlaceholder(raw)) return undefined;
  const peerGroup = groupOf(
    direction === 'ingress' ? raw.SourceSecurityGroupId : raw.DestinationSecurityGroupId,
  );
  const cidr = typeof raw.CidrIp === 'string' ? raw.CidrIp : undefined;
  const prefixList = (raw.SourcePrefixListId ?? raw.DestinationPrefixListId) as unknown;
  let peer: SecurityGroupPeer;
  if (peerGroup) peer = { kind: 'group', group: peerGroup };
  else if (cidr) peer = { kind: 'cidr', cidr };
  else if (prefixList) peer = { kind: 'prefixList', prefixList: JSON.stringify(prefixList) };
  else throw new Error(`${where}: a ${direction} rule with no peer the rig understands`);
  const port = (value: unknown) => (value === undefined ? undefined : Number(value));
  return {
    direction,
    group,
    protocol: String(raw.IpProtocol),
    fromPort: port(raw.FromPort),
    toPort: port(raw.ToPort),
    peer,
    description: raw.Description as string | undefined,
  };
}

export function securityGroups(template: SynthesizedTemplate): SecurityGroup[] {
  return resourcesOfType(template, 'AWS::EC2::SecurityGroup').map(([logicalId, group]) => ({
    logicalId,
    description: String(group.Properties?.GroupDescription ?? logicalId),
  }));
}

/** Every rule of every group in the template. */
export function securityGroupRules(template: SynthesizedTemplate): SecurityGroupRule[] {
  const rules: SecurityGroupRule[] = [];
  const add = (rule: SecurityGroupRule | undefined) => rule && rules.push(rule);
  for (const [id, group] of resourcesOfType(template, 'AWS::EC2::SecurityGroup')) {
    for (const raw of (group.Properties?.SecurityGroupIngress as RawRule[] | undefined) ?? [])
      add(toRule('ingress', id, raw, id));
    for (const raw of (group.Properties?.SecurityGroupEgress as RawRule[] | undefined) ?? [])
      add(toRule('egress', id, raw, id));
  }
  for (const type of ['AWS::EC2::SecurityGroupIngress', 'AWS::EC2::SecurityGroupEgress'] as const) {
    const direction = type.endsWith('Ingress') ? 'ingress' : 'egress';
    for (const [id, resource] of resourcesOfType(template, type)) {
      const properties = (resource.Properties ?? {}) as RawRule;
      const group = groupOf(properties.GroupId);
      if (!group) throw new Error(`${id}: ${type} with no GroupId the rig understands`);
      add(toRule(direction, group, properties, id));
    }
  }
  return rules;
}

/** True if the rule admits TCP to `port`. */
export function admitsTcp(rule: SecurityGroupRule, port: number): boolean {
  if (rule.protocol === '-1') return true;
  if (rule.protocol !== 'tcp' && rule.protocol !== '6') return false;
  return (rule.fromPort ?? 0) <= port && port <= (rule.toPort ?? 65535);
}

/**
 * The TCP flows between groups that both ends allow: the source's egress
 * names the destination group and the destination's ingress names the source,
 * as `source -> destination:port`, one per port a rule pair opens.
 */
export function groupToGroupFlows(rules: readonly SecurityGroupRule[]): string[] {
  const flows = new Set<string>();
  const ingress = rules.filter((r) => r.direction === 'ingress' && r.peer.kind === 'group');
  const egress = rules.filter((r) => r.direction === 'egress');
  for (const rule of ingress) {
    const source = (rule.peer as { group: string }).group;
    for (let port = rule.fromPort ?? 0; port <= (rule.toPort ?? 65535); port++) {
      const sent = egress.some(
        (out) =>
          out.group === source &&
          admitsTcp(out, port) &&
          ((out.peer.kind === 'group' && out.peer.group === rule.group) ||
            (out.peer.kind === 'cidr' && out.peer.cidr === '0.0.0.0/0')),
      );
      if (sent && admitsTcp(rule, port)) flows.add(`${source} -> ${rule.group}:${port}`);
      if (rule.toPort === undefined) break;
    }
  }
  return [...flows].sort();
}
