/**
 * The local cluster: every synthesized artifact run on this machine. Nodes
 * from the template's instances, SSM and Secrets Manager from a local
 * endpoint, the bootstrap state machine from the template with its tasks
 * bound to the assembly's Lambda bundles, and HAProxy from the target groups.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BackupHealth } from '../functions/record-backup-health/health';
import { SETTINGS } from '../infra/config/schema';
import { assertRigAptRepo, configureNodeApt } from './apt';
import { installPemPackage } from './pem-package';
import {
  APPLICATION_ROLE,
  applicationPassword,
  applicationRoleSql,
  localPsqlArgv,
} from './application-role';
import { assertFamilyInstalled, RigFamily, rigFamily } from './family';
import { RigHost } from './host/host';
import { rigLocalAws } from './local-aws/rig-view';
import { ACCOUNT, LocalAws, REGION } from './local-aws/server';
import { serveRigAws } from './local-aws/serve';
import {
  configureNlb,
  endpointsSettled,
  startAlb,
  startNlb,
  waitForTargets,
} from './load-balancers';
import { readTargetHealth } from './nlb';
import { nftRuleset, rigFilterMembers } from './packet-filter';
import { securityGroupRules } from './security-groups';
import { bootNode } from './node-boot';
import {
  connectToObjectStorage,
  launchMoto,
  launchObjectStorage,
  objectStorageReady,
  startObjectStorage,
} from './object-storage/object-storage';
import { installSsmAgent } from './ssm-agent';
import { planCluster, RigPlan, rigOutput, rigResourceValues, storageAddressIn } from './plan';
import { patroniMembers } from './patroni';
import { RunbookRun, runRunbook } from './runbook';
import { runsOfDeploy } from './deploy-runs';
import { REPO_ROOT, RigSettings, synthesize } from './synth';
import { readTemplate, SynthesizedTemplate } from './template';

export const STATE_ROOT = '/var/lib/pem-ha-rig';
const DEFAULT_VPC_CIDR = SETTINGS.vpcCidr.defaultValue!;
/** The host's address on the rig bridge: the last but one of the VPC's /16. */
function rigHostAddress(vpcCidr: string): string {
  const [a, b] = vpcCidr.split('.');
  return `${a}.${b}.255.254`;
}
/** What `up` records for later processes (attach): the settings the nodes were made with. */
const SETTINGS_FILE = 'rig.json';
/** Records the settings of rig `name` for later processes. */
function recordSettings(name: string, options: RigSettings): void {
  const { family, pem, fastPatroni, vpcCidr, synchronousMode, extra } = options;
  writeFileSync(
    join(RigCluster.stateDir(name), SETTINGS_FILE),
    JSON.stringify({ family, pem, fastPatroni, vpcCidr, synchronousMode, extra }),
  );
}

export interface RigOptions extends RigSettings {
  /** Rig name (1-6 lowercase letters/digits); several rigs can coexist. @default 'dev' */
  readonly name?: string;
  /** How long the runbook's Wait states pause here (AWS pacing, not behaviour). @default 1000 ms */
  readonly pollMs?: number;
  /** HAProxy health-check intervals relative to the template's (benchmarks). @default 1 */
  readonly checkScale?: number;
  readonly log?: (message: string) => void;
}

export class RigCluster {
  private constructor(
    readonly name: string,
    readonly host: RigHost,
    // A redeploy replaces these three with the new template's.
    public aws: LocalAws,
    public plan: RigPlan,
    public template: SynthesizedTemplate,
    private readonly assemblyDir: string,
    private options: RigOptions,
  ) {}

  /** The nodes' operating system and what follows from it. */
  get family(): RigFamily {
    return rigFamily(this.options.family);
  }

  static stateDir(name: string): string {
    return join(STATE_ROOT, name);
  }

  static async up(options: RigOptions = {}): Promise<RigCluster> {
    const family = rigFamily(options.family);
    assertFamilyInstalled(family);
    if (family.localAptRepository) assertRigAptRepo();
    if (options.pem && !family.hasPemWebServer) {
      throw new Error(
        `rig family ${family.name} has no Apache for the PEM double's web site: use pem: false, or the debian-13 family`,
      );
    }
    const name = options.name ?? 'dev';
    const log = options.log ?? (() => undefined);
    const assemblyDir = join(REPO_ROOT, `cdk.out.rig-${name}`);
    log(`synthesizing the app into ${assemblyDir}`);
    const hostAddress = rigHostAddress(options.vpcCidr ?? DEFAULT_VPC_CIDR);
    // The host is the rig's client network: the tests connect from it, so the
    // template admits it as a user's databaseClientCidrs and webClientCidrs would.
    const clients = {
      databaseClientCidrs: `${hostAddress}/32`,
      webClientCidrs: `${hostAddress}/32`,
    };
    options = { ...options, extra: { ...clients, ...options.extra } };
    // Moto loads (about 15 s) on one core while `cdk synth` runs on the other:
    // all it needs is the VPC's range, which the options give.
    const vpcCidr = options.vpcCidr ?? DEFAULT_VPC_CIDR;
    const synthesis = synthesize(options, assemblyDir);
    let host: RigHost | undefined;
    let template: SynthesizedTemplate;
    try {
      host = await RigHost.create(
        RigCluster.stateDir(name),
        { rigName: name, cidr: vpcCidr, hostAddress },
        log,
      );
      await launchMoto(host, storageAddressIn(vpcCidr), log);
      template = readTemplate(await synthesis);
    } catch (error) {
      // A synthesis that fails (a bad setting) leaves no rig behind; a rig
      // that already existed (create refused) is left as it was.
      await synthesis.catch(() => undefined);
      if (host) await RigCluster.downByName(name);
      throw error;
    }
    const plan = planCluster(template);
    if (plan.vpcCidr !== vpcCidr) {
      await RigCluster.downByName(name);
      throw new Error(`the template's VPC is ${plan.vpcCidr}, not ${vpcCidr} as the rig was made`);
    }
    recordSettings(name, { ...options, family: family.name });
    const aws = rigLocalAws(host, plan, template, RigCluster.stateDir(name), (node) =>
      rig.replaceInstance(node),
    );
    const rig = new RigCluster(name, host, aws, plan, template, assemblyDir, options);
    try {
      // Moto finishes loading while the nodes are made.
      await launchObjectStorage(rig);
      await rig.createNodes();
      await rig.applySecurityGroups();
      await rig.startAws();
      await objectStorageReady(rig);
      await rig.connectToObjectStorage();
      await rig.bootstrap();
      await rig.ensureApplicationRole();
      await rig.startLoadBalancers();
    } catch (error) {
      await rig.aws.close();
      throw error;
    }
    return rig;
  }

  /** A rig that `up` left running (from another process): its nodes, template and secrets. */
  static async attach(options: RigOptions = {}): Promise<RigCluster> {
    const name = options.name ?? 'dev';
    const host = RigHost.load(RigCluster.stateDir(name), options.log);
    const assemblyDir = join(REPO_ROOT, `cdk.out.rig-${name}`);
    const templatePath = join(assemblyDir, 'PemHa.template.json');
    if (!host || !existsSync(templatePath)) {
      throw new Error(`no local cluster named ${name} (start one with: npm run local -- up)`);
    }
    const template = readTemplate(templatePath);
    const plan = planCluster(template);
    const settingsFile = join(RigCluster.stateDir(name), SETTINGS_FILE);
    const recorded = existsSync(settingsFile)
      ? (JSON.parse(readFileSync(settingsFile, 'utf8')) as RigSettings)
      : {};
    const aws = rigLocalAws(host, plan, template, RigCluster.stateDir(name), (node) =>
      rig.replaceInstance(node),
    );
    const rig = new RigCluster(name, host, aws, plan, template, assemblyDir, {
      ...options,
      ...recorded,
    });
    await rig.startAws();
    return rig;
  }

  /** Makes the plan's nodes (or the `only` ones): a layer, apt, the SSM agent stand-in. */
  private async createNodes(only?: readonly string[]): Promise<void> {
    const nodes = this.plan.nodes.filter((node) => !only || only.includes(node.name));
    for (const node of nodes) {
      await this.host.addNode({
        name: node.name,
        address: node.address,
        lowerDir: this.family.lowerDir,
        ...(node.dataVolume && {
          dataDisk: {
            volumeId: node.dataVolume.volumeId,
            sizeMiB: node.dataVolume.sizeGiB * 1024,
          },
        }),
      });
    }
    // Each node's own files and agent, side by side once they all exist.
    await Promise.all(nodes.map((node) => this.prepareInstance(node.name)));
  }

  /** What the image and the instance's launch give a node here: apt, the SSM agent, the PEM double. */
  private async prepareInstance(name: string): Promise<void> {
    const node = this.plan.nodes.find((n) => n.name === name)!;
    await configureNodeApt(this, node.name, this.family.localAptRepository);
    await installSsmAgent(this, node.name, node.instanceId, this.endpointUrl);
    if (this.options.pem && node.tier !== 'etcd') await installPemPackage(this, node.name);
  }

  /**
   * Replaces a node's instance as EC2 would after a termination: a fresh root
   * from the image at the same address, the old data volume kept unless
   * `newDataVolume`. Nothing of pem-ha is on it until a runbook builds it.
   */
  async replaceInstance(name: string, { newDataVolume = false } = {}): Promise<void> {
    await this.host.replaceInstance(name, { newDataVolume });
    await this.prepareInstance(name);
    if (this.plan.nodes.find((n) => n.name === name)?.tier === 'backend') {
      await connectToObjectStorage(this, name);
    }
  }

  /**
   * Gives every node that exists (or only the `only` ones) the packet filter
   * its security groups make, from `template` (default: the rig's own).
   */
  async applySecurityGroups(
    template: SynthesizedTemplate = this.template,
    only: readonly string[] = this.host.nodeNames,
  ): Promise<void> {
    const rules = securityGroupRules(template);
    const members = rigFilterMembers(
      template,
      this.plan.nodes,
      { nlb: this.plan.nlbAddress, alb: this.plan.albAddress },
      this.host.hostAddress,
    );
    for (const member of members) {
      if (!only.includes(member.name)) continue;
      await this.host.applyPacketFilter(member.name, nftRuleset(member, members, rules));
    }
  }

  /** The rig's AWS endpoint: 443, where the VPC's interface endpoints answer. */
  private get endpointUrl(): string {
    return `http://${this.host.hostAddress}:443`;
  }

  private async startAws(): Promise<void> {
    const { shared } = await serveRigAws(this.aws, {
      address: this.host.hostAddress,
      template: this.template,
      plan: this.plan,
      pem: this.options.pem,
    });
    if (shared) this.log("another process serves this rig's AWS endpoint: this one calls it");
  }

  /** The backup repository's S3 and instance metadata, and the backends' way to them. */
  private async startObjectStorage(): Promise<void> {
    await startObjectStorage(this);
    await this.connectToObjectStorage();
  }

  private async connectToObjectStorage(): Promise<void> {
    // Side by side: each node's update-ca-certificates takes seconds.
    await Promise.all(
      this.plan.nodes
        .filter((n) => n.tier === 'backend')
        .map((node) => connectToObjectStorage(this, node.name)),
    );
  }

  /** Runs the synthesized bootstrap runbook; again and again if asked (it is idempotent). */
  async bootstrap(): Promise<{ readonly durationMs: number }> {
    this.options.log?.('running the bootstrap runbook (synthesized state machine)');
    return this.runRunbook('BootstrapStateMachineArn');
  }

  /**
   * Takes an existing rig to a working cluster again (after a failed `up`,
   * or nodes rebooted): the bootstrap runbook, then the load balancers.
   */
  async converge(): Promise<{ readonly durationMs: number }> {
    await this.startObjectStorage();
    const { durationMs } = await this.bootstrap();
    await this.ensureApplicationRole();
    await this.startLoadBalancers();
    return { durationMs };
  }

  /**
   * A deploy with changed settings, as CloudFormation runs one: the app
   * synthesized again with `settings` on top of the rig's, the new template's
   * documents, secrets and security groups, the nodes it adds, then each
   * deploy-time runbook whose resource changed (the bootstrap, the settings
   * rollout), then the NLB with the new targets. Returns the runs made.
   */
  async redeploy(
    settings: Readonly<Record<string, string>>,
    /** Called after each deploy-time runbook ends (tests look between them). */
    afterRun: (logicalId: string) => Promise<void> = async () => undefined,
  ): Promise<{ readonly ran: string[] }> {
    const options = { ...this.options, extra: { ...this.options.extra, ...settings } };
    this.log(
      `deploying again with ${JSON.stringify(settings)}: synthesizing into ${this.assemblyDir}`,
    );
    const template = readTemplate(await synthesize(options, this.assemblyDir));
    const plan = planCluster(template);
    for (const node of plan.nodes) {
      const known = this.plan.nodes.find((n) => n.name === node.name);
      if (known && known.address !== node.address) {
        throw new Error(
          `${node.name} would move from ${known.address} to ${node.address}: the rig does not replace nodes on a deploy`,
        );
      }
    }
    const before = this.template;
    const added = plan.nodes
      .filter((n) => !this.host.nodeNames.includes(n.name))
      .map((n) => n.name);
    await this.aws.close();
    this.options = options;
    this.template = template;
    this.plan = plan;
    this.aws = rigLocalAws(this.host, plan, template, RigCluster.stateDir(this.name), (node) =>
      this.replaceInstance(node),
    );
    recordSettings(this.name, options);
    await this.startAws();
    if (added.length) this.log(`adding ${added.join(', ')}`);
    await this.createNodes(added);
    await this.applySecurityGroups();
    // New backends need their instance role served and their way to S3.
    if (added.length) await this.startObjectStorage();
    const ran: string[] = [];
    for (const run of runsOfDeploy(before, template)) {
      this.log(`deploy: ${run.logicalId} (${run.type}) runs its runbook`);
      await this.runRunbook(run.stateMachine, { input: run.input });
      ran.push(run.logicalId);
      await afterRun(run.logicalId);
    }
    await configureNlb(this, this.options.checkScale ?? 1);
    return { ran };
  }

  /** Runs the synthesized certificate rotation, as the schedule or an operator starts it. */
  async rotateCertificates(run: RunbookRun = {}): Promise<{ readonly durationMs: number }> {
    this.options.log?.('running the certificate rotation (synthesized state machine)');
    return this.runRunbook('RotationStateMachineArn', run);
  }

  /** Runs the synthesized root rollover, as an operator starts it. */
  async rolloverRoot(run: RunbookRun = {}): Promise<{ readonly durationMs: number }> {
    this.options.log?.('running the root CA rollover (synthesized state machine)');
    return this.runRunbook('RootRolloverStateMachineArn', run);
  }

  /**
   * Runs the synthesized node replacement runbook for `node` (the root volume
   * swap goes through the rig's EC2, then the bootstrap).
   */
  async replace(node: string, run: RunbookRun = {}) {
    this.options.log?.(`replacing ${node} (synthesized state machine)`);
    return this.runRunbook('ReplacementStateMachineArn', { ...run, input: { node } });
  }

  /** Runs the synthesized failover runbook with the operator's input ({} or candidate, releaseReserve, dryRun). */
  async failover(input: Record<string, unknown> = {}, run: RunbookRun = {}) {
    this.options.log?.(
      `running the failover runbook (synthesized state machine): ${JSON.stringify(input)}`,
    );
    return this.runRunbook('FailoverStateMachineArn', { ...run, input });
  }

  /** Runs the synthesized rolling upgrade with the operator's input. */
  async upgrade(input: Record<string, unknown>, run: RunbookRun = {}) {
    this.options.log?.(
      `running the rolling upgrade (synthesized state machine): ${JSON.stringify(input)}`,
    );
    return this.runRunbook('UpgradeStateMachineArn', { ...run, input });
  }

  /** Runs the synthesized backup runbook, as its schedules start it: `full` or `diff`. */
  async backup(type: string, run: RunbookRun = {}) {
    this.options.log?.(`running the ${type} backup runbook (synthesized state machine)`);
    return this.runRunbook('BackupStateMachineArn', { ...run, input: { type } });
  }

  /** Runs the point-in-time restore runbook with `input` (target and confirm), as an operator starts it. */
  async restore(input: Record<string, unknown>, run: RunbookRun = {}) {
    this.options.log?.(`running the point-in-time restore runbook with ${JSON.stringify(input)}`);
    return this.runRunbook('RestoreStateMachineArn', { ...run, input });
  }

  /** Runs the backup health runbook once, as its 5-minute schedule does; returns what it published. */
  async backupHealth(run: RunbookRun = {}): Promise<BackupHealth> {
    this.options.log?.('running the backup health runbook (synthesized state machine)');
    const { output } = await this.runRunbook('BackupHealthStateMachineArn', run);
    return (output as { health: BackupHealth }).health;
  }

  /** Runs the agent certificate runbook for an outside PEM agent's CSR; returns its output. */
  async agentCertificate(input: Record<string, unknown>, run: RunbookRun = {}) {
    this.options.log?.('running the agent certificate runbook (synthesized state machine)');
    const { output } = await this.runRunbook('AgentCertificateStateMachineArn', { ...run, input });
    return output as {
      agentUser: string;
      certificate: string;
      rootCertificate: string;
      serial: string;
      notAfter: string;
    };
  }

  /** The cloud assembly the rig runs (its functions' bundles). */
  get assemblyDirectory(): string {
    return this.assemblyDir;
  }

  /** What the template's Ref and GetAtt resolve to on this rig. */
  get resourceValues() {
    return rigResourceValues(this.plan, this.template, { region: REGION, accountId: ACCOUNT });
  }

  /** A stack output's value as CloudFormation would give it on this rig. */
  output(name: string): string {
    return rigOutput(this.plan, this.template, { region: REGION, accountId: ACCOUNT }, name);
  }

  /** Runs the state machine a stack output names, tasks bound to the assembly's bundles. */
  runRunbook(output: string, run: RunbookRun = {}) {
    return runRunbook(
      {
        template: this.template,
        assemblyDir: this.assemblyDir,
        resources: this.resourceValues,
        pseudo: { region: REGION, accountId: ACCOUNT },
        pollMs: this.options.pollMs ?? 1000,
        executions: this.aws.executions,
        log: this.options.log,
      },
      output,
      run,
    );
  }

  /** The NLB stand-in, then the ALB stand-in when there is a web tier. */
  private async startLoadBalancers(): Promise<void> {
    await startNlb(this, this.options.checkScale ?? 1);
    await startAlb(this);
  }

  /**
   * Regenerates the NLB stand-in with every health-check interval scaled
   * (1 = the template's timing) and waits for the endpoints to settle.
   */
  async setCheckScale(scale: number): Promise<void> {
    await configureNlb(this, scale);
  }

  log(message: string): void {
    this.options.log?.(message);
  }

  /**
   * Brings a killed node back as an instance boots: its layer, the file
   * systems its own /etc/fstab names (the data volume), then pem-ha's services.
   */
  async reboot(node: string, { withDataVolume = true } = {}): Promise<void> {
    await this.host.restart(node, { withDataVolume });
    await bootNode(this, node);
  }

  /**
   * Health of each listener's targets as HAProxy sees them (the rig's
   * DescribeTargetHealth): port -> node -> UP / DOWN.
   */
  async targetHealth(): Promise<Record<number, Record<string, string>>> {
    return readTargetHealth(this.host.exec);
  }

  /**
   * Waits (bounded) until the write endpoint has exactly one healthy target and
   * the read endpoint every other backend: HAProxy starts servers UP, an NLB
   * starts targets unhealthy, so only a settled state is a fair start.
   */
  async waitForEndpoints(timeoutMs = 120_000): Promise<Record<number, Record<string, string>>> {
    return waitForTargets(this, 'nlb', endpointsSettled(this), timeoutMs);
  }

  /**
   * Makes (or refreshes) the rig's application role on the primary, bounded:
   * the endpoints admit no administrative role.
   */
  async ensureApplicationRole(timeoutMs = 60_000): Promise<void> {
    const password = applicationPassword(RigCluster.stateDir(this.name));
    const deadline = Date.now() + timeoutMs;
    for (let attempt = 1; Date.now() < deadline && attempt <= 60; attempt++) {
      const leader = (await patroniMembers(this))?.find(
        (m) => m.role === 'leader' && m.state === 'running',
      );
      if (leader) {
        await this.execOk(leader.name, localPsqlArgv('-f', '-'), applicationRoleSql(password));
        writeFileSync(
          join(RigCluster.stateDir(this.name), 'pgpass'),
          `*:*:*:${APPLICATION_ROLE}:${password}\n`,
          { mode: 0o600 },
        );
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    throw new Error(`no primary took the ${APPLICATION_ROLE} role within ${timeoutMs / 1000} s`);
  }

  /**
   * node-postgres settings for the rig's application role through an endpoint
   * (default the write endpoint); TLS without verification, as the rig's
   * clients only test availability.
   */
  applicationConnection(endpoint: { host: string; port: number } = this.writeEndpoint) {
    return {
      ...endpoint,
      user: APPLICATION_ROLE,
      password: applicationPassword(RigCluster.stateDir(this.name)),
      database: 'postgres',
      ssl: { rejectUnauthorized: false },
    };
  }

  get writeEndpoint() {
    return { host: this.plan.nlbAddress, port: 5432 };
  }

  get readEndpoint() {
    return { host: this.plan.nlbAddress, port: 5433 };
  }

  async execOk(node: string, argv: string[], stdin?: string, timeoutMs = 60_000): Promise<string> {
    return this.host.execOk(node, argv, stdin, timeoutMs);
  }

  /** Writes a file inside a node. */
  async writeFile(node: string, path: string, content: string, mode = '0644'): Promise<void> {
    await this.host.writeFile(node, path, content, mode);
  }

  /** Stops the local endpoint; the nodes keep running until {@link down}. */
  async detach(): Promise<void> {
    await this.aws.close();
  }

  async down(): Promise<void> {
    await this.aws.close().catch(() => undefined);
    await this.host.destroy();
    rmSync(this.assemblyDir, { recursive: true, force: true });
  }

  /** Removes a rig recorded on disk (for `npm run local -- down` from a new process). */
  static async downByName(
    name: string,
    log: (message: string) => void = () => undefined,
  ): Promise<boolean> {
    const host = RigHost.load(RigCluster.stateDir(name), log);
    rmSync(join(REPO_ROOT, `cdk.out.rig-${name}`), { recursive: true, force: true });
    if (!host) return false;
    await host.destroy();
    return true;
  }
}
