/**
 * The synthesized load balancer listeners with the target group each one
 * forwards to: what both load balancer stand-ins are generated from.
 */
import { resourcesOfType, SynthesizedTemplate } from './template';

export interface ListenerWithGroup {
  readonly listener: Record<string, unknown>;
  readonly group: Record<string, unknown>;
  /** The target group's attributes (stickiness, connection termination, ...). */
  readonly attributes: ReadonlyMap<string, string>;
  /** Logical id of the target group (its Ref is the group's ARN). */
  readonly groupLogicalId: string;
  /** Logical ids of the instances the target group names. */
  readonly targetLogicalIds: readonly string[];
}

export const refOf = (value: unknown): string => {
  const ref = (value as { Ref?: unknown } | undefined)?.Ref;
  if (typeof ref !== 'string')
    throw new Error(`expected a { Ref } in the template; got ${JSON.stringify(value)}`);
  return ref;
};

/** Every listener of `protocol` (TCP for the NLB, HTTPS for the ALB) and its default target group. */
export function listenersWithGroups(
  template: SynthesizedTemplate,
  protocol: 'TCP' | 'HTTPS',
): ListenerWithGroup[] {
  const groups = new Map(resourcesOfType(template, 'AWS::ElasticLoadBalancingV2::TargetGroup'));
  return resourcesOfType(template, 'AWS::ElasticLoadBalancingV2::Listener')
    .filter(([, listener]) => listener.Properties?.Protocol === protocol)
    .map(([, listener]) => {
      const actions = listener.Properties?.DefaultActions as { TargetGroupArn: unknown }[];
      const groupLogicalId = refOf(actions[0].TargetGroupArn);
      const group = groups.get(groupLogicalId)?.Properties ?? {};
      const attributes = new Map(
        ((group.TargetGroupAttributes ?? []) as { Key: string; Value: string }[]).map((a) => [
          a.Key,
          a.Value,
        ]),
      );
      return {
        listener: listener.Properties ?? {},
        group,
        attributes,
        groupLogicalId,
        targetLogicalIds: ((group.Targets ?? []) as { Id: unknown }[]).map((t) => refOf(t.Id)),
      };
    });
}
