/**
 * The runbooks a deploy runs: the template's pem-ha custom resources
 * (Custom::PemHa*), each naming a state machine and an execution input. The
 * rig runs them as CloudFormation would: a new resource on create (unless it
 * skips creates), an existing one when its properties changed, in the order
 * their DependsOn sets.
 */
import type { SynthesizedTemplate, TemplateResource } from './template';

export interface DeployRun {
  readonly logicalId: string;
  readonly type: string;
  /** The logical id of the state machine it starts. */
  readonly stateMachine: string;
  readonly input: Record<string, unknown>;
}

const isDeployRun = ([, resource]: [string, TemplateResource]) =>
  resource.Type.startsWith('Custom::PemHa');

const dependsOn = (resource: TemplateResource): string[] => {
  const value = (resource as { DependsOn?: string | string[] }).DependsOn;
  return value === undefined ? [] : [value].flat();
};

/** Properties as CloudFormation compares them (the provider's token aside). */
const compared = (resource: TemplateResource | undefined) =>
  JSON.stringify({ ...resource?.Properties, ServiceToken: undefined });

/** The runs a deploy from `before` (undefined: a first deploy) to `after` makes, in order. */
export function runsOfDeploy(
  before: SynthesizedTemplate | undefined,
  after: SynthesizedTemplate,
): DeployRun[] {
  const resources = Object.entries(after.Resources).filter(isDeployRun);
  const ids = new Set(resources.map(([id]) => id));
  const ordered: [string, TemplateResource][] = [];
  const placed = new Set<string>();
  // Bounded: each pass places at least one resource, or the order is broken.
  for (let pass = 0; pass < resources.length && ordered.length < resources.length; pass++) {
    for (const [id, resource] of resources) {
      if (placed.has(id)) continue;
      if (
        dependsOn(resource).every((dependency) => !ids.has(dependency) || placed.has(dependency))
      ) {
        ordered.push([id, resource]);
        placed.add(id);
      }
    }
  }
  if (ordered.length < resources.length)
    throw new Error('the deploy runs depend on each other in a circle');
  return ordered.flatMap(([logicalId, resource]) => {
    const previous = before?.Resources[logicalId];
    const properties = resource.Properties ?? {};
    const runs = previous
      ? compared(previous) !== compared(resource)
      : properties.SkipCreate !== 'true';
    if (!runs) return [];
    const arn = properties.StateMachineArn as { Ref?: string } | undefined;
    if (typeof arn?.Ref !== 'string') {
      throw new Error(`${logicalId}: StateMachineArn must be a Ref to a state machine`);
    }
    return [
      {
        logicalId,
        type: resource.Type,
        stateMachine: arn.Ref,
        input: JSON.parse(String(properties.Input ?? '{}')) as Record<string, unknown>,
      },
    ];
  });
}
