/**
 * Run Command as the SSM agent does it on Linux: each `aws:runShellScript`
 * step's lines go to `_script.sh` on the node and run with `sh`, and
 * GetCommandInvocation reports status, exit code and the first 24,000
 * characters of stdout and stderr.
 */
import { randomUUID } from 'node:crypto';
import type { NodeExec } from '../types';
import { CommandDocument, resolveParameters, substitute } from './documents';

const OUTPUT_LIMIT = 24_000;
const DEFAULT_STEP_TIMEOUT_SECONDS = 3600;

export class AwsError extends Error {
  constructor(
    readonly awsType: string,
    message: string,
  ) {
    super(message);
  }
}

export interface ManagedInstance {
  readonly nodeName: string;
  /** What the agent's scripts see: region, endpoints, credentials of the instance role. */
  readonly env: Readonly<Record<string, string>>;
}

interface Invocation {
  commandId: string;
  instanceId: string;
  documentName: string;
  pluginName: string;
  status: 'Pending' | 'InProgress' | 'Success' | 'Failed' | 'TimedOut' | 'Cancelled';
  responseCode: number;
  stdout: string;
  stderr: string;
  startedAt?: Date;
  endedAt?: Date;
}

export class LocalSsm {
  private readonly documents = new Map<string, CommandDocument>();
  private readonly instances = new Map<string, ManagedInstance>();
  private readonly invocations = new Map<string, Invocation[]>();
  private readonly running = new Set<Promise<void>>();

  constructor(private readonly exec: NodeExec) {}

  registerDocument(name: string, content: CommandDocument): void {
    this.documents.set(name, content);
  }

  registerInstance(instanceId: string, instance: ManagedInstance): void {
    this.instances.set(instanceId, instance);
  }

  sendCommand(input: {
    DocumentName?: string;
    InstanceIds?: string[];
    Parameters?: Record<string, string[]>;
    Comment?: string;
  }): unknown {
    const document = this.documents.get(String(input.DocumentName));
    if (!document)
      throw new AwsError('InvalidDocument', `Document ${input.DocumentName} does not exist`);
    const instanceIds = input.InstanceIds ?? [];
    const unknown = instanceIds.filter((id) => !this.instances.has(id));
    if (instanceIds.length === 0 || unknown.length > 0) {
      throw new AwsError(
        'InvalidInstanceId',
        `Instances [${unknown.join(', ')}] not in a valid state for account`,
      );
    }
    let values: Record<string, string>;
    try {
      values = resolveParameters(document, input.Parameters ?? {});
    } catch (error) {
      throw new AwsError('InvalidParameters', (error as Error).message);
    }
    const commandId = randomUUID();
    for (const instanceId of instanceIds) {
      const steps = document.mainSteps.map((step) => ({
        commandId,
        instanceId,
        documentName: String(input.DocumentName),
        pluginName: step.name,
        status: 'Pending' as const,
        responseCode: -1,
        stdout: '',
        stderr: '',
      }));
      this.invocations.set(`${commandId}/${instanceId}`, steps);
      const run = this.execute(document, values, steps, this.instances.get(instanceId)!);
      this.running.add(run);
      void run.finally(() => this.running.delete(run));
    }
    return {
      Command: {
        CommandId: commandId,
        DocumentName: input.DocumentName,
        InstanceIds: instanceIds,
        Comment: input.Comment,
        Status: 'Pending',
        Parameters: input.Parameters,
      },
    };
  }

  getCommandInvocation(input: {
    CommandId?: string;
    InstanceId?: string;
    PluginName?: string;
  }): unknown {
    const steps = this.invocations.get(`${input.CommandId}/${input.InstanceId}`);
    if (!steps)
      throw new AwsError(
        'InvocationDoesNotExist',
        'The command ID and instance ID you specified did not match any invocations',
      );
    if (!input.PluginName && steps.length > 1) {
      throw new AwsError(
        'InvalidPluginName',
        'PluginName is required for a document with several steps',
      );
    }
    const step = input.PluginName ? steps.find((s) => s.pluginName === input.PluginName) : steps[0];
    if (!step)
      throw new AwsError('InvalidPluginName', `The plugin name ${input.PluginName} is not valid`);
    return {
      CommandId: step.commandId,
      InstanceId: step.instanceId,
      DocumentName: step.documentName,
      PluginName: step.pluginName,
      ResponseCode: step.responseCode,
      Status: step.status,
      StatusDetails: step.status,
      ExecutionStartDateTime: step.startedAt?.toISOString() ?? '',
      ExecutionEndDateTime: step.endedAt?.toISOString() ?? '',
      StandardOutputContent: step.stdout.slice(0, OUTPUT_LIMIT),
      StandardErrorContent: step.stderr.slice(0, OUTPUT_LIMIT),
    };
  }

  /** Resolves when every command sent so far has ended (bounded by their step timeouts). */
  async settle(): Promise<void> {
    await Promise.allSettled([...this.running]);
  }

  private async execute(
    document: CommandDocument,
    values: Record<string, string>,
    steps: Invocation[],
    instance: ManagedInstance,
  ): Promise<void> {
    let failed = false;
    for (const [index, step] of document.mainSteps.entries()) {
      const invocation = steps[index];
      if (failed) {
        invocation.status = 'Cancelled';
        continue;
      }
      invocation.status = 'InProgress';
      invocation.startedAt = new Date();
      const dir = `/var/lib/amazon/ssm/${invocation.instanceId}/document/orchestration/${invocation.commandId}/${step.name}`;
      const script = substitute(step.inputs.runCommand.join('\n'), values);
      const timeoutMs = Number(step.inputs.timeoutSeconds ?? DEFAULT_STEP_TIMEOUT_SECONDS) * 1000;
      try {
        if (step.action !== 'aws:runShellScript')
          throw new Error(`the rig runs only aws:runShellScript steps, not ${step.action}`);
        const written = await this.exec(instance.nodeName, {
          argv: ['sh', '-c', 'mkdir -p "$1" && cat > "$1/_script.sh"', 'write', dir],
          stdin: script,
          timeoutMs: 30_000,
        });
        if (written.exitCode !== 0) throw new Error(`cannot write the script: ${written.stderr}`);
        const result = await this.exec(instance.nodeName, {
          argv: [
            'sh',
            '-c',
            `cd "${step.inputs.workingDirectory ?? dir}" && exec sh "$0"`,
            `${dir}/_script.sh`,
          ],
          env: instance.env,
          timeoutMs,
        });
        invocation.stdout = result.stdout;
        invocation.stderr = result.stderr;
        invocation.responseCode = result.timedOut ? -1 : (result.exitCode ?? -1);
        invocation.status = result.timedOut
          ? 'TimedOut'
          : result.exitCode === 0
            ? 'Success'
            : 'Failed';
      } catch (error) {
        invocation.stderr = `${invocation.stderr}${(error as Error).message}\n`;
        invocation.status = 'Failed';
        invocation.responseCode = 1;
      }
      invocation.endedAt = new Date();
      failed = invocation.status !== 'Success';
    }
  }
}
