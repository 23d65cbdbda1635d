/**
 * Run Command as SSM does it: SendCommand queues an invocation per
 * instance, and each node's agent (rig/host/ssm-agent.sh) fetches it over
 * the node's own link and reports every step back. GetCommandInvocation
 * reports status, exit code and the first 24,000 characters of stdout and
 * stderr. An invocation no agent picks up within SendCommand's
 * TimeoutSeconds ends TimedOut (DeliveryTimedOut), as on AWS.
 */
import { randomUUID } from 'node:crypto';
import { CommandDocument, resolveParameters, substitute } from './documents';

const OUTPUT_LIMIT = 24_000;
const DEFAULT_STEP_TIMEOUT_SECONDS = 3600;
/** SendCommand's default TimeoutSeconds: how long a command waits to be delivered. */
const DEFAULT_DELIVERY_SECONDS = 3600;
/** An offered command that no report acknowledged within this is offered again. */
const REOFFER_MS = 15_000;

export class AwsError extends Error {
  constructor(
    readonly awsType: string,
    message: string,
  ) {
    super(message);
  }
}

export interface ManagedInstance {
  /** What the agent's scripts see: region, endpoints, credentials of the instance role. */
  readonly env: Readonly<Record<string, string>>;
}

type Status = 'Pending' | 'InProgress' | 'Success' | 'Failed' | 'TimedOut' | 'Cancelled';
const FINAL: readonly Status[] = ['Success', 'Failed', 'TimedOut', 'Cancelled'];

interface Invocation {
  readonly commandId: string;
  readonly instanceId: string;
  readonly documentName: string;
  readonly pluginName: string;
  status: Status;
  statusDetails: string;
  responseCode: number;
  stdout: string;
  stderr: string;
  startedAt?: Date;
  endedAt?: Date;
}

/** What an agent receives: the steps with parameters substituted, and the instance's environment. */
export interface AgentMessage {
  readonly commandId: string;
  readonly documentName: string;
  readonly steps: readonly {
    readonly name: string;
    readonly script: string;
    readonly workingDirectory?: string;
    readonly timeoutSeconds: number;
  }[];
  readonly env: Readonly<Record<string, string>>;
}

interface Delivery {
  readonly instanceId: string;
  readonly message: AgentMessage;
  readonly deliverBy: number;
  offeredAt?: number;
}

/** One step's report from an agent. */
export interface AgentReport {
  readonly instanceId: string;
  readonly commandId: string;
  readonly step: string;
  readonly status: Status;
  readonly responseCode?: number;
  readonly stdout?: string;
  readonly stderr?: string;
}

export class LocalSsm {
  private readonly documents = new Map<string, CommandDocument>();
  private readonly instances = new Map<string, ManagedInstance>();
  private readonly invocations = new Map<string, Invocation[]>();
  private readonly queue: Delivery[] = [];
  /** Agents' held polls, woken when a command is queued or the endpoint closes. */
  private readonly waiting = new Set<() => void>();
  private closed = false;

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
    TimeoutSeconds?: number;
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
    const documentName = String(input.DocumentName);
    const deliverBy = Date.now() + (input.TimeoutSeconds ?? DEFAULT_DELIVERY_SECONDS) * 1000;
    const steps = document.mainSteps.map((step) => {
      if (step.action !== 'aws:runShellScript')
        throw new AwsError(
          'InvalidDocument',
          `the rig runs only aws:runShellScript steps, not ${step.action}`,
        );
      return {
        name: step.name,
        script: substitute(step.inputs.runCommand.join('\n'), values),
        ...(step.inputs.workingDirectory && { workingDirectory: step.inputs.workingDirectory }),
        timeoutSeconds: Number(step.inputs.timeoutSeconds ?? DEFAULT_STEP_TIMEOUT_SECONDS),
      };
    });
    for (const instanceId of instanceIds) {
      this.invocations.set(
        `${commandId}/${instanceId}`,
        steps.map((step) => ({
          commandId,
          instanceId,
          documentName,
          pluginName: step.name,
          status: 'Pending',
          statusDetails: 'Pending',
          responseCode: -1,
          stdout: '',
          stderr: '',
        })),
      );
      const { env } = this.instances.get(instanceId)!;
      this.queue.push({ instanceId, deliverBy, message: { commandId, documentName, steps, env } });
    }
    for (const wake of this.waiting) wake();
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
    this.expireDeliveries();
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
      StatusDetails: step.statusDetails,
      ExecutionStartDateTime: step.startedAt?.toISOString() ?? '',
      ExecutionEndDateTime: step.endedAt?.toISOString() ?? '',
      StandardOutputContent: step.stdout.slice(0, OUTPUT_LIMIT),
      StandardErrorContent: step.stderr.slice(0, OUTPUT_LIMIT),
    };
  }

  /**
   * CancelCommand: an invocation no agent has taken is cancelled at once; one
   * already running is left to end (the rig's agent takes no cancel signal).
   */
  cancelCommand(input: { CommandId?: string; InstanceIds?: string[] }): unknown {
    const keys = [...this.invocations.keys()].filter((key) =>
      key.startsWith(`${input.CommandId}/`),
    );
    if (keys.length === 0)
      throw new AwsError('InvalidCommandId', `The command ID ${input.CommandId} is not valid`);
    for (let index = this.queue.length - 1; index >= 0; index--) {
      const { message, instanceId } = this.queue[index];
      const chosen = !input.InstanceIds?.length || input.InstanceIds.includes(instanceId);
      if (message.commandId !== input.CommandId || !chosen) continue;
      this.queue.splice(index, 1);
      for (const step of this.invocations.get(`${message.commandId}/${instanceId}`) ?? []) {
        step.status = 'Cancelled';
        step.statusDetails = 'Cancelled';
        step.endedAt = new Date();
      }
    }
    return {};
  }

  /**
   * An agent's poll: the oldest command for its instance that is not taken
   * yet, waiting up to `holdMs` for one; undefined when none came.
   */
  async nextFor(
    instanceId: string,
    holdMs: number,
    gone: AbortSignal,
  ): Promise<AgentMessage | undefined> {
    const deadline = Date.now() + holdMs;
    for (;;) {
      // An agent that hung up (its node stopped) must not be handed a command.
      if (this.closed || gone.aborted) return undefined;
      this.expireDeliveries();
      const now = Date.now();
      const delivery = this.queue.find(
        (d) =>
          d.instanceId === instanceId &&
          (d.offeredAt === undefined || now - d.offeredAt > REOFFER_MS),
      );
      if (delivery) {
        delivery.offeredAt = now;
        return delivery.message;
      }
      const left = deadline - now;
      if (left <= 0) return undefined;
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          this.waiting.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, Math.min(left, REOFFER_MS));
        this.waiting.add(wake);
        gone.addEventListener('abort', wake, { once: true });
      });
    }
  }

  /** An agent's report on one step; its first report takes the command off the queue. */
  report(report: AgentReport): void {
    const steps = this.invocations.get(`${report.commandId}/${report.instanceId}`);
    const step = steps?.find((s) => s.pluginName === report.step);
    if (!step)
      throw new AwsError(
        'InvocationDoesNotExist',
        `no invocation ${report.commandId} step ${report.step} on ${report.instanceId}`,
      );
    if (![...FINAL, 'InProgress'].includes(report.status))
      throw new AwsError('InvalidParameters', `status ${report.status} is not a step status`);
    const taken = this.queue.findIndex(
      (d) => d.instanceId === report.instanceId && d.message.commandId === report.commandId,
    );
    if (taken >= 0) this.queue.splice(taken, 1);
    if (FINAL.includes(step.status)) return;
    step.status = report.status;
    step.statusDetails = report.status === 'TimedOut' ? 'ExecutionTimedOut' : report.status;
    step.responseCode = report.responseCode ?? -1;
    step.stdout = report.stdout ?? '';
    step.stderr = report.stderr ?? '';
    if (report.status === 'InProgress') step.startedAt = new Date();
    else step.endedAt = new Date();
  }

  /** Releases the agents' held polls (the endpoint is closing). */
  close(): void {
    this.closed = true;
    for (const wake of this.waiting) wake();
  }

  /** Commands no agent took in time end as SSM ends them: TimedOut, DeliveryTimedOut. */
  private expireDeliveries(): void {
    const now = Date.now();
    for (let index = this.queue.length - 1; index >= 0; index--) {
      const delivery = this.queue[index];
      if (delivery.deliverBy > now) continue;
      this.queue.splice(index, 1);
      const key = `${delivery.message.commandId}/${delivery.instanceId}`;
      for (const step of this.invocations.get(key) ?? []) {
        step.status = 'TimedOut';
        step.statusDetails = 'DeliveryTimedOut';
        step.endedAt = new Date();
      }
    }
  }
}
