/**
 * Reading a synthesized CloudFormation template the way CloudFormation
 * would: resources, outputs, and the intrinsic functions CDK emits, resolved
 * against values the caller (the rig, a test) chooses for each resource.
 */
import { readFileSync } from 'node:fs';

export interface TemplateResource {
  readonly Type: string;
  readonly Properties?: Record<string, unknown>;
  readonly Metadata?: Record<string, unknown>;
}

export interface SynthesizedTemplate {
  readonly Resources: Record<string, TemplateResource>;
  readonly Outputs?: Record<string, { readonly Value: unknown }>;
  readonly Parameters?: Record<string, { readonly Default?: unknown }>;
}

/** What `Ref` and `Fn::GetAtt` of a resource are; pseudo parameters come from `pseudo`. */
export interface ResourceValues {
  ref(logicalId: string): string;
  getAtt(logicalId: string, attribute: string): string;
}

export interface PseudoParameters {
  readonly region: string;
  readonly accountId: string;
  readonly partition?: string;
  readonly stackName?: string;
}

export function readTemplate(path: string): SynthesizedTemplate {
  return JSON.parse(readFileSync(path, 'utf8')) as SynthesizedTemplate;
}

/** Resources of one type, by logical id. */
export function resourcesOfType(
  template: SynthesizedTemplate,
  type: string,
): [string, TemplateResource][] {
  return Object.entries(template.Resources).filter(([, resource]) => resource.Type === type);
}

/**
 * The logical id an output's `{ Ref }` or `{ Fn::GetAtt }` names; a resource's
 * own logical id names itself (a deploy's custom resources Ref their runbooks).
 */
export function outputResource(template: SynthesizedTemplate, output: string): string {
  if (template.Outputs?.[output] === undefined && template.Resources[output]) return output;
  const value = template.Outputs?.[output]?.Value as Record<string, unknown> | undefined;
  const ref = value?.Ref ?? (value?.['Fn::GetAtt'] as unknown[] | undefined)?.[0];
  if (typeof ref !== 'string') {
    throw new Error(
      `template output ${output} must reference a resource; got ${JSON.stringify(value)}`,
    );
  }
  return ref;
}

/** Resolves Ref, Fn::GetAtt, Fn::Join, Fn::Select, Fn::Split and Fn::Sub throughout `value`. */
export function resolveIntrinsics(
  value: unknown,
  resources: ResourceValues,
  pseudo: PseudoParameters,
): unknown {
  const resolve = (v: unknown): unknown => resolveIntrinsics(v, resources, pseudo);
  if (Array.isArray(value)) return value.map(resolve);
  if (value === null || typeof value !== 'object') return value;
  const entries = Object.entries(value);
  if (entries.length === 1) {
    const [key, argument] = entries[0];
    switch (key) {
      case 'Ref':
        return refOf(argument as string, resources, pseudo);
      case 'Fn::GetAtt': {
        const [logicalId, attribute] = argument as [string, string];
        return resources.getAtt(logicalId, attribute);
      }
      case 'Fn::Join': {
        const [separator, parts] = argument as [string, unknown[]];
        return (resolve(parts) as unknown[]).join(separator);
      }
      case 'Fn::Select': {
        const [index, list] = argument as [number | string, unknown];
        return (resolve(list) as unknown[])[Number(index)];
      }
      case 'Fn::Split': {
        const [separator, source] = argument as [string, unknown];
        return String(resolve(source)).split(separator);
      }
      case 'Fn::Sub': {
        const [text, variables = {}] = (typeof argument === 'string' ? [argument] : argument) as [
          string,
          Record<string, unknown>?,
        ];
        return text.replace(/\$\{([^}!]+)\}/g, (_, name: string) => {
          if (name in variables) return String(resolve(variables[name]));
          const [logicalId, attribute] = name.split('.');
          return attribute
            ? resources.getAtt(logicalId, attribute)
            : refOf(logicalId, resources, pseudo);
        });
      }
    }
    if (key.startsWith('Fn::')) throw new Error(`resolveIntrinsics: ${key} is not supported`);
  }
  return Object.fromEntries(entries.map(([k, v]) => [k, resolve(v)]));
}

function refOf(name: string, resources: ResourceValues, pseudo: PseudoParameters): string {
  switch (name) {
    case 'AWS::Region':
      return pseudo.region;
    case 'AWS::AccountId':
      return pseudo.accountId;
    case 'AWS::Partition':
      return pseudo.partition ?? 'aws';
    case 'AWS::URLSuffix':
      return 'amazonaws.com';
    case 'AWS::StackName':
      return pseudo.stackName ?? 'PemHa';
    default:
      return resources.ref(name);
  }
}

/** The ASL of the state machine a stack output names, with intrinsics resolved. */
export function stateMachineDefinition(
  template: SynthesizedTemplate,
  output: string,
  resources: ResourceValues,
  pseudo: PseudoParameters,
): StateMachineDefinition {
  const logicalId = outputResource(template, output);
  const resource = template.Resources[logicalId];
  if (resource?.Type !== 'AWS::StepFunctions::StateMachine') {
    throw new Error(`template output ${output} must name a state machine; it names ${logicalId}`);
  }
  const text = resolveIntrinsics(resource.Properties?.DefinitionString, resources, pseudo);
  return JSON.parse(String(text)) as StateMachineDefinition;
}

export interface StateMachineDefinition {
  readonly StartAt: string;
  readonly States: Record<string, Record<string, unknown>>;
  readonly [field: string]: unknown;
}
