/**
 * Rig nodes: one network namespace per node on a private bridge, and inside
 * it a PID/mount/UTS namespace whose init gives the node its own filesystem
 * (an overlay over the host's /). Everything created is recorded in a state
 * file first, so `destroy` works from another process and after a crash.
 */
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { ExecRequest, ExecResult, NodeExec } from '../types';
import { host, hostQuietly, isAlive, runBounded, waitFor } from './commands';
import { assertFree, attachNode, contains, createBridge } from './network';

const NODE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const RIG_NAME = /^[a-z][a-z0-9]{0,5}$/;

export interface RigNodeSpec {
  readonly name: string;
  readonly address: string;
  /** The operating system's files under the node's own layer. @default '/' (the host's) */
  readonly lowerDir?: string;
  /** An EBS-like data volume: a loop device shown under its volume id. */
  readonly dataDisk?: { readonly volumeId: string; readonly sizeMiB: number };
}

interface NodeRecord extends RigNodeSpec {
  readonly netns: string;
  readonly veth: string;
  readonly dir: string;
  initPid?: number;
  loopDevice?: string;
}

interface HostState {
  readonly rigName: string;
  readonly bridge: string;
  readonly cidr: string;
  readonly hostAddress: string;
  readonly nodes: NodeRecord[];
}

export type Log = (message: string) => void;

export class RigHost {
  private constructor(
    private readonly stateDir: string,
    private readonly state: HostState,
    private readonly log: Log,
  ) {}

  /** Creates the bridge of a new rig; refuses a CIDR the host already routes. */
  static async create(
    stateDir: string,
    network: { readonly rigName: string; readonly cidr: string; readonly hostAddress: string },
    log: Log = () => undefined,
  ): Promise<RigHost> {
    if (!RIG_NAME.test(network.rigName)) {
      throw new Error(
        `rig name must be 1-6 lowercase letters and digits, starting with a letter; got ${network.rigName}`,
      );
    }
    if (existsSync(join(stateDir, 'host.json'))) {
      throw new Error(`a rig already exists in ${stateDir}; run down first`);
    }
    const bridge = `phr${network.rigName}`;
    await assertFree(network.cidr, bridge);
    const prefix = Number(network.cidr.split('/')[1]);
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    const rig = new RigHost(stateDir, { ...network, bridge, nodes: [] }, log);
    rig.save();
    log(`creating bridge ${bridge} (${network.hostAddress}/${prefix})`);
    await createBridge(bridge, network.hostAddress, prefix);
    return rig;
  }

  /** The rig recorded in `stateDir`, for status and teardown from another process. */
  static load(stateDir: string, log: Log = () => undefined): RigHost | undefined {
    const file = join(stateDir, 'host.json');
    if (!existsSync(file)) return undefined;
    return new RigHost(stateDir, JSON.parse(readFileSync(file, 'utf8')) as HostState, log);
  }

  get hostAddress(): string {
    return this.state.hostAddress;
  }

  get nodeNames(): string[] {
    return this.state.nodes.map((node) => node.name);
  }

  initPid(name: string): number | undefined {
    return this.record(name).initPid;
  }

  isRunning(name: string): boolean {
    const pid = this.record(name).initPid;
    return pid !== undefined && isAlive(pid);
  }

  async addNode(spec: RigNodeSpec): Promise<void> {
    const { state } = this;
    if (!contains(state.cidr, spec.address)) {
      throw new Error(
        `node ${spec.name}: address ${spec.address} is outside the rig network ${state.cidr}`,
      );
    }
    const index = state.nodes.length + 1;
    const node: NodeRecord = {
      ...spec,
      netns: `pemha-${state.rigName}-${spec.name}`,
      veth: `ph${state.rigName}${index}`,
      dir: join(this.stateDir, 'nodes', spec.name),
    };
    state.nodes.push(node);
    this.save();
    this.log(`creating node ${spec.name} (${spec.address})`);
    this.makeRootLayer(node);
    if (spec.dataDisk) await this.makeDataVolume(node);
    await host('ip', ['netns', 'add', node.netns]);
    await attachNode(
      state.bridge,
      node.netns,
      node.veth,
      spec.address,
      Number(state.cidr.split('/')[1]),
      state.hostAddress,
    );
    await this.startInit(node);
  }

  private async startInit(node: NodeRecord, withDataVolume = true): Promise<void> {
    const args = [
      'netns',
      'exec',
      node.netns,
      'unshare',
      '--mount',
      '--uts',
      '--ipc',
      '--pid',
      '--fork',
      '--propagation',
      'private',
      join(__dirname, 'node-init.sh'),
      node.name,
      node.dir,
      node.lowerDir ?? '/',
      ...(withDataVolume && node.loopDevice && node.dataDisk
        ? [node.loopDevice, node.dataDisk.volumeId]
        : []),
    ];
    const log = join(node.dir, 'init.log');
    writeFileSync(log, '');
    const { openSync } = await import('node:fs');
    const out = openSync(log, 'a');
    const unshare = spawn('ip', args, { detached: true, stdio: ['ignore', out, out] });
    unshare.unref();
    const ready = await waitFor(() => {
      node.initPid = childOf(unshare.pid!);
      return (
        node.initPid !== undefined && existsSync(`/proc/${node.initPid}/root/run/rig-node-ready`)
      );
    }, 15_000);
    this.save();
    if (!ready) {
      throw new Error(
        `node ${node.name} did not come up in 15 s: ${readFileSync(log, 'utf8').trim() || 'no output'}`,
      );
    }
  }

  /**
   * `nsenter` arguments that run `argv` inside a node (all its namespaces)
   * with a clean environment: PATH, HOME and `env` only.
   */
  enterArgs(
    name: string,
    argv: readonly string[],
    env: Readonly<Record<string, string>> = {},
  ): string[] {
    const pid = this.record(name).initPid;
    if (pid === undefined || !isAlive(pid)) throw new Error(`node ${name} is not running`);
    return [
      '-t',
      String(pid),
      '-a',
      'env',
      '-i',
      `PATH=${NODE_PATH}`,
      'HOME=/root',
      ...Object.entries(env).map(([key, value]) => `${key}=${value}`),
      ...argv,
    ];
  }

  /** Runs a command inside a node with a clean environment, as {@link NodeExec}. */
  readonly exec: NodeExec = (name: string, request: ExecRequest): Promise<ExecResult> =>
    runBounded('nsenter', this.enterArgs(name, request.argv, request.env), {
      stdin: request.stdin,
      timeoutMs: request.timeoutMs,
    });

  /** {@link exec}, failing with the command and its stderr unless it exits 0; its stdout. */
  async execOk(name: string, argv: string[], stdin?: string, timeoutMs = 60_000): Promise<string> {
    const result = await this.exec(name, { argv, stdin, timeoutMs });
    if (result.exitCode !== 0)
      throw new Error(
        `${name}: ${argv.join(' ')} failed (${result.exitCode}): ${result.stderr.trim()}`,
      );
    return result.stdout;
  }

  /** Writes a file inside a node (stdin arrives as a socket, which /dev/stdin cannot reopen). */
  async writeFile(name: string, path: string, content: string, mode = '0644'): Promise<void> {
    await this.execOk(
      name,
      [
        'sh',
        '-c',
        'mkdir -p "$(dirname "$1")" && cat > "$1" && chmod "$2" "$1"',
        'write',
        path,
        mode,
      ],
      content,
    );
  }

  /** Stops every node's services, then removes every node, the bridge and the state. Idempotent. */
  async destroy(): Promise<void> {
    // Nothing on a node outlives the rig, so no service is stopped one by one:
    // ending a node's init ends its PID namespace, every process in it, at once.
    await Promise.all(this.state.nodes.map((node) => this.removeNode(node)));
    this.log(`removing bridge ${this.state.bridge}`);
    await hostQuietly('ip', ['link', 'del', this.state.bridge]);
    rmSync(this.stateDir, { recursive: true, force: true });
  }

  /** Kills a node's init (the kernel then ends its whole PID namespace): a crash. */
  async kill(name: string): Promise<void> {
    const pid = this.record(name).initPid;
    if (pid !== undefined && isAlive(pid)) process.kill(pid, 'SIGKILL');
    await waitFor(() => pid === undefined || !isAlive(pid), 10_000);
  }

  /**
   * Starts a killed node again with its own layer and data volume (unless
   * `withDataVolume` is false: a volume detached while it was down), as an
   * instance reboots; its services stay down until something starts them.
   */
  async restart(name: string, { withDataVolume = true } = {}): Promise<void> {
    const node = this.record(name);
    if (node.initPid !== undefined && isAlive(node.initPid)) await this.kill(name);
    this.log(`restarting node ${name}${withDataVolume ? '' : ' without its data volume'}`);
    await this.startInit(node, withDataVolume);
  }

  /**
   * A new instance in a killed node's place, as an EC2 replacement is: a
   * fresh root layer (the image, nothing of the old one), the same address,
   * and the old data volume unless `newDataVolume` (a blank one instead).
   */
  async replaceInstance(name: string, { newDataVolume = false } = {}): Promise<void> {
    const node = this.record(name);
    if (node.initPid !== undefined && isAlive(node.initPid)) await this.kill(name);
    this.log(
      `replacing ${name}'s instance: a fresh root${newDataVolume ? ' and a blank data volume' : ''}`,
    );
    for (const sub of ['upper', 'work'])
      rmSync(join(node.dir, sub), { recursive: true, force: true });
    this.makeRootLayer(node);
    if (newDataVolume && node.dataDisk) {
      if (node.loopDevice) await hostQuietly('losetup', ['-d', node.loopDevice]);
      rmSync(join(node.dir, 'data-volume.img'), { force: true });
      await this.makeDataVolume(node);
    }
    await this.startInit(node);
  }

  /** The node's writable layer over the image, with the rig's systemctl and SSM agent stand-ins. */
  private makeRootLayer(node: NodeRecord): void {
    for (const sub of ['upper/usr/local/sbin', 'work', 'root'])
      mkdirSync(join(node.dir, sub), { recursive: true });
    copyFileSync(join(__dirname, 'systemctl'), join(node.dir, 'upper/usr/local/sbin/systemctl'));
    const agent = join(node.dir, 'upper/usr/local/sbin/rig-ssm-agent');
    copyFileSync(join(__dirname, 'ssm-agent.sh'), agent);
    chmodSync(agent, 0o755);
  }

  /** A blank (sparse) data volume file behind a loop device, as a new EBS volume reads. */
  private async makeDataVolume(node: NodeRecord): Promise<void> {
    const file = join(node.dir, 'data-volume.img');
    await host('truncate', ['-s', `${node.dataDisk!.sizeMiB}M`, file]);
    node.loopDevice = (await host('losetup', ['-f', '--show', file])).trim();
    this.save();
  }

  /** Replaces a node's packet filter with an nftables script (rig/packet-filter.ts). */
  async applyPacketFilter(name: string, script: string): Promise<void> {
    const result = await runBounded(
      'ip',
      ['netns', 'exec', this.record(name).netns, 'nft', '-f', '-'],
      {
        stdin: script,
        timeoutMs: 30_000,
      },
    );
    if (result.exitCode !== 0) {
      throw new Error(`node ${name}: nft refused its packet filter: ${result.stderr.trim()}`);
    }
  }

  /** Cuts or restores a node's only link (a network partition). */
  async setLink(name: string, up: boolean): Promise<void> {
    await host('ip', ['link', 'set', this.record(name).veth, up ? 'up' : 'down']);
  }

  private async removeNode(node: NodeRecord): Promise<void> {
    this.log(`removing node ${node.name}`);
    if (node.initPid !== undefined && isAlive(node.initPid)) await this.kill(node.name);
    if (node.loopDevice) await hostQuietly('losetup', ['-d', node.loopDevice]);
    await hostQuietly('ip', ['link', 'del', node.veth]);
    await hostQuietly('ip', ['netns', 'del', node.netns]);
  }

  private record(name: string): NodeRecord {
    const node = this.state.nodes.find((candidate) => candidate.name === name);
    if (!node) throw new Error(`no rig node named ${name}; nodes: ${this.nodeNames.join(', ')}`);
    return node;
  }

  private save(): void {
    writeFileSync(join(this.stateDir, 'host.json'), JSON.stringify(this.state, null, 2), {
      mode: 0o600,
    });
  }
}

/** The first child of a process (the init `unshare --fork` starts). */
function childOf(pid: number): number | undefined {
  try {
    const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/);
    return children[0] ? Number(children[0]) : undefined;
  } catch {
    return undefined;
  }
}
