/**
 * Runs a runbook (a state machine a stack output names) from the synthesized
 * template with aws-local-stepfunctions, its Lambda tasks bound to the cloud
 * assembly's bundles and its Wait states shortened to the rig's pace.
 */
import { randomUUID } from 'node:crypto';
import './polyfills';
import { StateMachine } from 'aws-local-stepfunctions';
import { allStates, bindLambdaTasks, LocalTaskHandlers } from './lambdas';
import type { ExecutionRecorder } from './local-aws/sfn';
import {
  outputResource,
  PseudoParameters,
  resolveIntrinsics,
  ResourceValues,
  stateMachineDefinition,
  SynthesizedTemplate,
} from './template';

type TaskHandler = LocalTaskHandlers[string];

export interface RunbookContext {
  readonly template: SynthesizedTemplate;
  readonly assemblyDir: string;
  readonly resources: ResourceValues;
  readonly pseudo: PseudoParameters;
  /** How long Wait states pause here. */
  readonly pollMs: number;
  /**
   * Where each execution is recorded while it runs (the LocalAws's
   * DescribeExecution); its ARN is the execution's `$$.Execution.Id`.
   */
  readonly executions?: ExecutionRecorder;
  readonly log?: (message: string) => void;
}

export interface RunbookRun {
  /** Execution input. @default {} */
  readonly input?: Record<string, unknown>;
  /**
   * Wraps one task's handler by state name (tests inject faults into a
   * step this way; the definition itself is never altered).
   */
  readonly wrapTask?: (state: string, handler: TaskHandler) => TaskHandler;
  /** States whose start is worth a log line. @default sends, signing and CA steps */
  readonly logStates?: RegExp;
}

/** Runs the runbook to its end; rejects with the execution's error (name and cause kept). */
export async function runRunbook(
  context: RunbookContext,
  output: string,
  run: RunbookRun = {},
): Promise<{ readonly durationMs: number; readonly output: unknown }> {
  const started = Date.now();
  const definition = stateMachineDefinition(
    context.template,
    output,
    context.resources,
    context.pseudo,
  );
  const logStates = run.logStates ?? /: send$|^Ensure|^Sign|^Plan|^Confirm/;
  const bound = bindLambdaTasks(definition, context.template, {
    assemblyDir: context.assemblyDir,
    resolveEnvironment: (variables) =>
      resolveIntrinsics(variables, context.resources, context.pseudo) as Record<string, string>,
    onInvoke: (state) => {
      if (logStates.test(state)) context.log?.(`  ${state}`);
    },
  });
  const handlers = Object.fromEntries(
    Object.entries(bound).map(([state, handler]) => [
      state,
      run.wrapTask ? run.wrapTask(state, handler) : handler,
    ]),
  );
  const waits = Object.fromEntries(
    allStates(definition.States)
      .filter(([, state]) => state.Type === 'Wait')
      .map(([state]) => [state, context.pollMs]),
  );
  const machine = new StateMachine(
    definition as never,
    { validationOptions: { checkPaths: false } } as never,
  );
  // $$.StateMachine and $$.Execution as Step Functions fills them: the machine's ARN is its Ref.
  const stateMachineArn = context.resources.ref(outputResource(context.template, output));
  const stateMachineName = stateMachineArn.split(':').pop()!;
  const name = randomUUID();
  const executionArn =
    context.executions?.start(stateMachineArn, name) ??
    stateMachineArn.replace(/:stateMachine:/, ':execution:') + `:${name}`;
  let status: 'SUCCEEDED' | 'FAILED' = 'FAILED';
  try {
    const result = await machine.run((run.input ?? {}) as never, {
      overrides: { taskResourceLocalHandlers: handlers as never, waitTimeOverrides: waits },
      context: {
        Execution: { Id: executionArn, Name: name },
        StateMachine: { Id: stateMachineArn, Name: stateMachineName },
      },
    }).result;
    status = 'SUCCEEDED';
    return { durationMs: Date.now() - started, output: result };
  } finally {
    context.executions?.stop(executionArn, status);
  }
}
