/**
 * The local cluster: every synthesized artifact run on this machine. Nodes
 * from the template's instances, SSM and Secrets Manager from a local
 * endpoint, the bootstrap state machine from the template with its tasks
 * bound to the assembly's Lambda bundles, and HAProxy from the target groups.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertRigAptRepo, configureNodeApt } from './apt';
import { RigHost } from './host/host';
import { rigLocalAws } from './local-aws/rig-view';
import { ACCOUNT, LocalAws, localAwsEndpoints, REGION } from './local-aws/server';
import type { CommandDocument } from './local-aws/documents';
import { haproxyConfig, nlbListeners, readTargetHealth } from './nlb';
import { planCluster, RigPlan, rigResourceValues, seedSecrets } from './plan';
import { RunbookRun, runRunbook } from './runbook';
import { REPO_ROOT, RigSettings, synthesize } from './synth';
import { readTemplate, resourcesOfType, SynthesizedTemplate } from './template';

export const STATE_ROOT = '/var/lib/pem-ha-rig';
const REQUIRED = [
  '/usr/bin/patroni',
  '/usr/bin/etcd',
  '/usr/sbin/haproxy',
  '/usr/lib/postgresql/15/bin/postgres',
];

export interface RigOptions extends RigSettings {
  /** Rig name (1-6 lowercase letters/digits); several rigs can coexist. @default 'dev' */
  readonly name?: string;
  /** How long the runbook's Wait states pause here (AWS pacing, not behaviour). @default 1000 ms */
  readonly pollMs?: number;
  /** HAProxy health-check intervals relative to the template's (benchmarks). @default 1 */
  readonly checkScale?: number;
  /** A configure-pem-server.sh test double installed on backend and web nodes. */
  readonly pemDouble?: string;
  readonly log?: (message: string) => void;
}

export class RigCluster {
  private constructor(
    readonly name: string,
    readonly host: RigHost,
    readonly aws: LocalAws,
    readonly plan: RigPlan,
    private readonly template: SynthesizedTemplate,
    private readonly assemblyDir: string,
    private readonly options: RigOptions,
  ) {}

  static stateDir(name: string): string {
    return join(STATE_ROOT, name);
  }

  static async up(options: RigOptions = {}): Promise<RigCluster> {
    const missing = REQUIRED.filter((path) => !existsSync(path));
    if (missing.length)
      throw new Error(`missing ${missing.join(', ')}: run "bash rig/setup.sh" as root first`);
    assertRigAptRepo();
    const name = options.name ?? 'dev';
    const log = options.log ?? (() => undefined);
    const assemblyDir = join(REPO_ROOT, `cdk.out.rig-${name}`);
    log(`synthesizing the app into ${assemblyDir}`);
    const template = readTemplate(await synthesize(options, assemblyDir));
    const plan = planCluster(template);
    const [a, b] = plan.vpcCidr.split('.');
    const host = await RigHost.create(
      RigCluster.stateDir(name),
      { rigName: name, cidr: plan.vpcCidr, hostAddress: `${a}.${b}.255.254` },
      log,
    );
    const aws = rigLocalAws(host, plan, template, RigCluster.stateDir(name));
    const rig = new RigCluster(name, host, aws, plan, template, assemblyDir, options);
    try {
      await rig.createNodes();
      await rig.startAws();
      await rig.bootstrap();
      await rig.startNlb();
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
    const aws = rigLocalAws(host, plan, template, RigCluster.stateDir(name));
    const rig = new RigCluster(name, host, aws, plan, template, assemblyDir, options);
    await rig.startAws();
    return rig;
  }

  private async createNodes(): Promise<void> {
    for (const node of this.plan.nodes) {
      await this.host.addNode({
        name: node.name,
        address: node.address,
        ...(node.dataVolume && { dataDisk: { volumeId: node.dataVolume.volumeId, sizeMiB: 1024 } }),
      });
      await configureNodeApt(this, node.name);
      if (this.options.pemDouble && node.tier !== 'etcd') {
        const double = readFileSync(this.options.pemDouble, 'utf8');
        await this.writeFile(node.name, '/usr/edb/pem/bin/configure-pem-server.sh', double, '0755');
      }
    }
  }

  private async startAws(): Promise<void> {
    const url = await this.aws.listen(this.host.hostAddress);
    const credentials = {
      AWS_REGION: REGION,
      AWS_DEFAULT_REGION: REGION,
      AWS_ACCESS_KEY_ID: 'rig',
      AWS_SECRET_ACCESS_KEY: 'rig',
    };
    const endpoints = localAwsEndpoints(url);
    // The handlers run in this process: their unchanged SDK clients find the endpoint here.
    Object.assign(process.env, credentials, endpoints);
    // Their per-call INFO lines would drown the rig's own progress.
    process.env.POWERTOOLS_LOG_LEVEL ??= 'WARN';
    // No CloudWatch here to read the metrics' EMF lines from stdout.
    process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
    for (const [, document] of resourcesOfType(this.template, 'AWS::SSM::Document')) {
      this.aws.ssm.registerDocument(
        String(document.Properties?.Name),
        document.Properties?.Content as CommandDocument,
      );
    }
    for (const node of this.plan.nodes) {
      this.aws.ssm.registerInstance(node.instanceId, {
        nodeName: node.name,
        env: { ...credentials, ...endpoints },
      });
    }
    const extra = this.options.pem
      ? [{ name: 'pem-ha/edb-repo-token', value: 'rig-token-not-used' }]
      : [];
    for (const secret of seedSecrets(this.template, extra))
      this.aws.seedSecret(secret.name, secret.value);
  }

  /** Runs the synthesized bootstrap runbook; again and again if asked (it is idempotent). */
  async bootstrap(): Promise<{ readonly durationMs: number }> {
    this.options.log?.('running the bootstrap runbook (synthesized state machine)');
    return this.runRunbook('BootstrapStateMachineArn');
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

  /** Runs the synthesized rolling upgrade with the operator's input. */
  async upgrade(input: Record<string, unknown>, run: RunbookRun = {}) {
    this.options.log?.(
      `running the rolling upgrade (synthesized state machine): ${JSON.stringify(input)}`,
    );
    return this.runRunbook('UpgradeStateMachineArn', { ...run, input });
  }

  /** Runs the state machine a stack output names, tasks bound to the assembly's bundles. */
  runRunbook(output: string, run: RunbookRun = {}) {
    return runRunbook(
      {
        template: this.template,
        assemblyDir: this.assemblyDir,
        resources: rigResourceValues(this.plan, this.template, {
          region: REGION,
          accountId: ACCOUNT,
        }),
        pseudo: { region: REGION, accountId: ACCOUNT },
        pollMs: this.options.pollMs ?? 1000,
        executions: this.aws.executions,
        log: this.options.log,
      },
      output,
      run,
    );
  }

  /** HAProxy in its own node, as a unit, from the synthesized target groups. */
  private async startNlb(): Promise<void> {
    await this.host.addNode({ name: 'nlb', address: this.plan.nlbAddress });
    const unit = [
      '[Unit]',
      'Description=pem-ha NLB stand-in',
      '[Service]',
      'Type=simple',
      'ExecStart=/usr/sbin/haproxy -W -db -f /etc/haproxy/pem-ha-nlb.cfg',
      'KillMode=control-group',
      '',
    ].join('\n');
    await this.writeFile('nlb', '/etc/systemd/system/pem-ha-nlb.service', unit, '0644');
    await this.setCheckScale(this.options.checkScale ?? 1);
    writeFileSync(
      join(RigCluster.stateDir(this.name), 'pgpass'),
      `*:*:*:patroni_super:${this.superuserPassword()}\n`,
      { mode: 0o600 },
    );
  }

  /**
   * (Re)generates HAProxy from the target groups with every health-check
   * interval scaled (1 = the template's timing), restarts it and waits for
   * the endpoints to settle.
   */
  async setCheckScale(scale: number): Promise<void> {
    const config = haproxyConfig(nlbListeners(this.template), {
      bindAddress: this.plan.nlbAddress,
      targets: this.plan.nodes.map((n) => ({
        instanceLogicalId: n.logicalId,
        name: n.name,
        address: n.address,
      })),
      intervalScale: scale,
      statsSocket: '/run/haproxy-admin.sock',
    });
    await this.writeFile('nlb', '/etc/haproxy/pem-ha-nlb.cfg', config, '0644');
    await this.execOk('nlb', ['systemctl', 'restart', 'pem-ha-nlb']);
    this.options.log?.('waiting for the NLB stand-in to find the primary and the replicas');
    await this.waitForEndpoints();
  }

  /** Brings a killed node back as an instance reboot does: its layer, its volume, pem-ha's services. */
  async reboot(node: string): Promise<void> {
    await this.host.restart(node);
    for (const unit of ['etcd', 'patroni']) {
      await this.execOk(node, [
        'sh',
        '-c',
        `[ ! -f /etc/pem-ha/${unit}.managed ] || systemctl start --no-block ${unit}`,
      ]);
    }
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
    const backends = this.plan.nodes.filter((n) => n.tier === 'backend').length;
    const deadline = Date.now() + timeoutMs;
    let health: Record<number, Record<string, string>> = {};
    let previous: string | undefined;
    while (Date.now() < deadline) {
      // Until HAProxy has opened its socket there is nothing to read yet.
      health = await this.targetHealth().catch(() => ({}));
      const up = (port: number) =>
        Object.values(health[port] ?? {}).filter((s) => s === 'UP').length;
      const settled = up(5432) === 1 && up(5433) === backends - 1;
      // HAProxy lists servers UP until their first checks fail: trust a view seen twice.
      if (settled && JSON.stringify(health) === previous) return health;
      previous = settled ? JSON.stringify(health) : undefined;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    throw new Error(
      `the endpoints did not settle in ${timeoutMs / 1000} s: ${JSON.stringify(health)}`,
    );
  }

  superuserPassword(): string {
    return JSON.parse(this.aws.secretValue('pem-ha/patroniSuperuser') ?? '{}').password;
  }

  /**
   * node-postgres settings for the Patroni superuser through an endpoint
   * (default the write endpoint); TLS without verification, as the rig's
   * clients only test availability.
   */
  superuserConnection(endpoint: { host: string; port: number } = this.writeEndpoint) {
    return {
      ...endpoint,
      user: 'patroni_super',
      password: this.superuserPassword(),
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
    const result = await this.host.exec(node, { argv, stdin, timeoutMs });
    if (result.exitCode !== 0)
      throw new Error(
        `${node}: ${argv.join(' ')} failed (${result.exitCode}): ${result.stderr.trim()}`,
      );
    return result.stdout;
  }

  /** Writes a file inside a node (stdin arrives as a socket, which /dev/stdin cannot reopen). */
  async writeFile(node: string, path: string, content: string, mode = '0644'): Promise<void> {
    await this.execOk(
      node,
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
