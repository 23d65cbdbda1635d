/**
 * EC2's root volume replacement (CreateReplaceRootVolumeTask and
 * DescribeReplaceRootVolumeTasks) over the EC2 query protocol: the rig gives
 * the node a fresh root layer at the same address with its data volume kept,
 * which is what EC2 does to a running instance's root volume.
 */
import { randomBytes } from 'node:crypto';
import { EC2_VERSION, LocalInstance } from './ec2';
import { element, indexedValues, listOf } from './query';
import { AwsError } from './ssm';

/** Gives the instance a fresh root from its launch state; resolves once it has booted. */
export type RootVolumeReplacer = (instance: LocalInstance) => Promise<void>;

type TaskState = 'pending' | 'in-progress' | 'succeeded' | 'failed';

interface Task {
  readonly id: string;
  readonly instanceId: string;
  readonly clientToken: string;
  readonly startTime: string;
  state: TaskState;
  completeTime?: string;
}

export class LocalRootVolumes {
  private readonly tasks: Task[] = [];

  constructor(
    private readonly instances: () => readonly LocalInstance[],
    private readonly replacer?: RootVolumeReplacer,
  ) {}

  /** Starts a task, or returns the one the same client token started. */
  create(params: URLSearchParams, requestId: string): string {
    const instanceId = params.get('InstanceId') ?? '';
    const clientToken = params.get('ClientToken') ?? randomBytes(8).toString('hex');
    const instance = this.instances().find((i) => i.instanceId === instanceId);
    if (!instance) {
      throw new AwsError(
        'InvalidInstanceID.NotFound',
        `The instance ID '${instanceId}' does not exist`,
      );
    }
    let task = this.tasks.find((t) => t.clientToken === clientToken);
    if (task && task.instanceId !== instanceId) {
      throw new AwsError(
        'IdempotentParameterMismatch',
        'The client token was already used with other parameters',
      );
    }
    if (!task) {
      if (instance.state !== 'running') {
        throw new AwsError(
          'IncorrectState',
          `The instance '${instanceId}' is not in the 'running' state`,
        );
      }
      if (!this.replacer) {
        throw new AwsError('UnsupportedOperation', 'this rig cannot replace root volumes');
      }
      task = {
        id: `replacevol-${randomBytes(8).toString('hex')}`,
        instanceId,
        clientToken,
        startTime: new Date().toISOString(),
        state: 'pending',
      };
      this.tasks.push(task);
      this.run(task, instance, this.replacer);
    }
    return (
      `<CreateReplaceRootVolumeTaskResponse xmlns="http://ec2.amazonaws.com/doc/${EC2_VERSION}/">` +
      element('requestId', requestId) +
      element('replaceRootVolumeTask', taskXml(task)) +
      '</CreateReplaceRootVolumeTaskResponse>'
    );
  }

  describe(params: URLSearchParams, requestId: string): string {
    const ids = indexedValues(params, 'ReplaceRootVolumeTaskId');
    const selected = this.tasks.filter((t) => ids.length === 0 || ids.includes(t.id));
    return (
      `<DescribeReplaceRootVolumeTasksResponse xmlns="http://ec2.amazonaws.com/doc/${EC2_VERSION}/">` +
      element('requestId', requestId) +
      element(
        'replaceRootVolumeTaskSet',
        listOf(
          'item',
          selected.map((t) => taskXml(t).join('')),
        ),
      ) +
      '</DescribeReplaceRootVolumeTasksResponse>'
    );
  }

  private run(task: Task, instance: LocalInstance, replacer: RootVolumeReplacer): void {
    task.state = 'in-progress';
    const end = (state: TaskState) => {
      task.state = state;
      task.completeTime = new Date().toISOString();
    };
    replacer(instance).then(
      () => end('succeeded'),
      (error: Error) => {
        console.error(`rig: replacing ${instance.instanceId}'s root failed: ${error.message}`);
        end('failed');
      },
    );
  }
}

/** A task's fields, as children of its element. */
function taskXml(task: Task): string[] {
  return [
    element('replaceRootVolumeTaskId', task.id),
    element('instanceId', task.instanceId),
    element('taskState', task.state),
    element('startTime', task.startTime),
    ...(task.completeTime ? [element('completeTime', task.completeTime)] : []),
    element('deleteReplacedRootVolume', 'true'),
  ];
}
