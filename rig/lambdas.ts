/**
 * Binds a state machine's Lambda tasks to the bundles the cloud assembly
 * ships (`cdk.out/asset.<hash>/index.js`), so the code the rig runs is the
 * code a deploy uploads. Results come back in the shape the state's
 * integration returns; errors keep their names for Retry/Catch.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { StateMachineDefinition, SynthesizedTemplate } from './template';

export type Handler = (event: unknown, context: unknown) => Promise<unknown>;
export type LocalTaskHandlers = Record<string, (input: never) => Promise<never>>;

const LAMBDA_INVOKE = 'arn:aws:states:::lambda:invoke';

/** Every state, nested Map item processors included. */
export function allStates(
  states: StateMachineDefinition['States'],
): [string, Record<string, unknown>][] {
  return Object.entries(states).flatMap(([name, state]) => {
    const nested = (state.ItemProcessor ?? state.Iterator) as StateMachineDefinition | undefined;
    return [
      [name, state] as [string, Record<string, unknown>],
      ...(nested ? allStates(nested.States) : []),
    ];
  });
}

/**
 * What Lambda passes beside the event, as far as the handlers read it
 * (Powertools' logger puts it on every line): one request id per invocation.
 */
export function invocationContext(functionArn: string, properties: Record<string, unknown> = {}) {
  const deadline = Date.now() + Number(properties.Timeout ?? 3) * 1000;
  return {
    functionName: functionArn.split(':function:')[1],
    functionVersion: '$LATEST',
    invokedFunctionArn: functionArn,
    memoryLimitInMB: String(properties.MemorySize ?? 128),
    awsRequestId: randomUUID(),
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
  };
}

export interface BindOptions {
  /** The cloud assembly directory the template came from. */
  readonly assemblyDir: string;
  /** The function's environment, intrinsics resolved (the rig's resolver). */
  readonly resolveEnvironment: (variables: Record<string, unknown>) => Record<string, string>;
  /** Called around each invocation, for the rig's log. */
  readonly onInvoke?: (state: string, functionLogicalId: string) => void;
}

/**
 * A template function's handler, loaded fresh from its bundle in the cloud
 * assembly, its environment given to `setEnvironment` first (a bundle makes
 * its SDK clients when loaded, from the environment at that moment).
 */
export function bundledHandler(
  template: SynthesizedTemplate,
  logicalId: string,
  options: Pick<BindOptions, 'assemblyDir' | 'resolveEnvironment'> & {
    readonly setEnvironment?: (name: string, value: string) => void;
  },
): Handler {
  const resource = template.Resources[logicalId];
  const assetPath = resource?.Metadata?.['aws:asset:path'];
  const handlerName = String(resource?.Properties?.Handler ?? '');
  if (resource?.Type !== 'AWS::Lambda::Function' || typeof assetPath !== 'string') {
    throw new Error(`task function ${logicalId} is not a bundled Lambda function in the template`);
  }
  const variables = options.resolveEnvironment(
    ((resource.Properties?.Environment as { Variables?: Record<string, unknown> }) ?? {})
      .Variables ?? {},
  );
  const setEnvironment =
    options.setEnvironment ?? ((name: string, value: string) => (process.env[name] = value));
  for (const [name, value] of Object.entries(variables)) setEnvironment(name, value);
  const [file, exportName] = handlerName.split('.');
  const bundle = join(options.assemblyDir, assetPath, `${file}.js`);
  // A fresh instance per rig: bundles make their SDK clients when loaded.
  delete require.cache[require.resolve(bundle)];
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const module = require(bundle) as Record<string, Handler>;
  const handler = module[exportName];
  if (typeof handler !== 'function') {
    throw new Error(`${assetPath}/${file}.js exports no ${exportName}`);
  }
  return handler;
}

/**
 * Task handlers for aws-local-stepfunctions keyed by state name. The
 * functions' environments are merged into this process's: two functions
 * giving one variable different values is refused (they share a process here).
 */
export function bindLambdaTasks(
  definition: StateMachineDefinition,
  template: SynthesizedTemplate,
  options: BindOptions,
): LocalTaskHandlers {
  const handlers: LocalTaskHandlers = {};
  const environment = new Map<string, { value: string; from: string }>();
  const loaded = new Map<string, Handler>();
  const load = (logicalId: string): Handler => {
    const cached = loaded.get(logicalId);
    if (cached) return cached;
    const handler = bundledHandler(template, logicalId, {
      ...options,
      setEnvironment: (name, value) => {
        const earlier = environment.get(name);
        if (earlier && earlier.value !== value) {
          throw new Error(
            `functions ${earlier.from} and ${logicalId} set ${name} differently; the rig runs them in one process`,
          );
        }
        environment.set(name, { value, from: logicalId });
        process.env[name] = value;
      },
    });
    loaded.set(logicalId, handler);
    return handler;
  };
  for (const [name, state] of allStates(definition.States)) {
    if (state.Type !== 'Task') continue;
    // Two forms: the lambda:invoke integration ({ FunctionName, Payload } in,
    // { Payload } out) and a bare function ARN (payloadResponseOnly).
    const integration = state.Resource === LAMBDA_INVOKE;
    const functionArn = integration
      ? String((state.Parameters as { FunctionName?: string } | undefined)?.FunctionName ?? '')
      : String(state.Resource);
    const logicalId = functionArn.split(':function:')[1];
    if (!logicalId) {
      // Never fall through to the runner's default, which would call real AWS.
      throw new Error(
        `task ${name} is not a Lambda task the rig can run: ${String(state.Resource)}`,
      );
    }
    const handler = load(logicalId);
    handlers[name] = (async (input: { Payload?: unknown }) => {
      options.onInvoke?.(name, logicalId);
      const context = invocationContext(functionArn, template.Resources[logicalId]?.Properties);
      return integration
        ? { Payload: await handler(input.Payload, context) }
        : handler(input, context);
    }) as unknown as LocalTaskHandlers[string];
  }
  return handlers;
}
