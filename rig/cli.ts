/**
 * `npm run local -- up | status | down`: the whole cluster on this machine,
 * built from the synthesized artifacts (see rig/cluster.ts).
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { APPLICATION_ROLE } from './application-role';
import { RigCluster } from './cluster';
import { LocalParameters } from './local-aws/parameters';
import { ACCOUNT, REGION } from './local-aws/server';
import { rigFamily } from './family';
import { RigHost } from './host/host';
import { planCluster, rigOutput } from './plan';
import { REPO_ROOT } from './synth';
import { readTemplate } from './template';

const USAGE = `usage: npm run local -- <up|bootstrap|deploy|status|shell|psql|rotate|rollover|upgrade|failover|replace|backup|backup-health|restore|down> [--name NAME] [--family debian-13|debian-12] [--fast] [--vpc-cidr CIDR] [--set KEY=VALUE]... [--renew-before-days N] [--upgrade JSON] [--failover JSON] [--type full|diff] [--to TIME|latest] [--read]
  up      synthesize, create the nodes, run the bootstrap runbook, start the NLB and ALB stand-ins
  bootstrap  run the bootstrap runbook again on an existing rig (after a failed up or a reboot)
          and (re)start the NLB and ALB stand-ins
  deploy  deploy again with changed settings (--set patroniTtl=40 --set backendNodeCount=4 ...):
          synthesize, add new nodes, then the runbooks the deploy runs (the bootstrap, the
          settings rollout), then the NLB stand-in
  status  nodes, services and Patroni's view of the cluster
  shell NODE  a root shell inside a node (what Session Manager gives on AWS)
  psql    psql as the rig's application role (rig_app) through the write endpoint (--read: the read endpoint)
  rotate  run the certificate rotation runbook (as its schedule does; --renew-before-days 3650 renews everything)
  rollover  run the root CA rollover runbook
  upgrade   run the rolling upgrade runbook with --upgrade '{"component":"postgresql","version":"latest"}'
            (the rig's local apt repository offers the newer PostgreSQL 15 minor)
  failover  move the primary off a node whose PostgreSQL cannot run (its data volume full) with
            the failover runbook: --failover '{}' (default), '{"dryRun": true}' to see its choice,
            '{"candidate": "backend-2"}'; it refuses a primary that runs with room
  replace NODE  run the node replacement runbook: a fresh root for NODE at its address, its data
            volume kept, then the bootstrap (refuses the primary, an unknown node, lost etcd quorum)
  backup    run the backup runbook, as its schedules do: --type full (default) or diff
  backup-health  run the backup health runbook once and print what it publishes
  restore   restore the whole cluster in place with the point-in-time restore runbook:
            --to '2026-12-01T09:30:00Z' (a time with its offset) or --to latest
  down    stop every process the rig started and remove its namespaces and files
  --name      rig name, 1-6 lowercase letters/digits (default dev)
  --family    the nodes' operating system: debian-13 (default; PostgreSQL 17, Patroni 4) or
              debian-12 (PostgreSQL 15 with two real minors for upgrades, Patroni 3.0.2)
  --fast      the fast Patroni profile (ttl 20 / loop_wait 2 / retry_timeout 9)
  --vpc-cidr  network of the nodes (default: the app's vpcCidr, 10.40.0.0/16)`;

/** The services pem-ha manages on a node (documents leave a marker) and their state. */
const STATUS_SCRIPT = [
  'for unit in etcd patroni; do',
  '  [ -f /etc/pem-ha/$unit.managed ] && printf "%s=%s " $unit "$(systemctl is-active $unit)"',
  'done',
  'for unit in pem-ha-nlb pem-ha-alb pemagent; do',
  '  [ -f /etc/systemd/system/$unit.service ] && printf "%s=%s " $unit "$(systemctl is-active $unit)"',
  'done',
  '[ -f /etc/apache2/sites-enabled/edb-ssl-pem.conf ] && printf "apache2=%s " "$(systemctl is-active apache2)"',
  'true',
].join('\n');

async function up(name: string, family: string, fast: boolean, vpcCidr?: string): Promise<void> {
  const started = Date.now();
  const log = (message: string) =>
    console.log(`[${((Date.now() - started) / 1000).toFixed(1)} s] ${message}`);
  // The default topology, PEM web tier included where the family's root has
  // Apache (PEM itself is rig/pem-double's stand-in).
  const rig = await RigCluster.up({
    name,
    pem: rigFamily(family).hasPemWebServer,
    family: rigFamily(family).name,
    fastPatroni: fast,
    vpcCidr,
    log: (m) => !/: send$|^ {2}Sign/.test(m) && log(m),
  }).catch((error: Error) => {
    if (!RigHost.load(RigCluster.stateDir(name))) throw error;
    const named = name === 'dev' ? '' : ` --name ${name}`;
    throw new Error(
      `${error.message}\nThe nodes are left as they are: fix the cause, then run \`npm run local -- bootstrap${named}\` to go on, or \`npm run local -- down${named}\` to remove them.`,
    );
  });
  const health = await rig.targetHealth();
  await rig.detach();
  const up = (port: number) =>
    Object.entries(health[port] ?? {})
      .filter(([, s]) => s === 'UP')
      .map(([n]) => n);
  const { host } = rig.writeEndpoint;
  console.log(`
pem-ha local cluster "${name}" is up in ${((Date.now() - started) / 1000).toFixed(0)} s
  write endpoint  ${host}:5432   (primary: ${up(5432).join(', ') || 'none yet'})
  read endpoint   ${host}:5433   (replicas: ${up(5433).join(', ') || 'none yet'})
  PEM web UI      https://${rig.plan.albAddress}/pem/login   (ALB stand-in, self-signed certificate)
  psql            npm run local -- psql${name === 'dev' ? '' : ` --name ${name}`}   (--read for the read endpoint)
  a node's shell  npm run local -- shell backend-1
  stop it with    npm run local -- down${name === 'dev' ? '' : ` --name ${name}`}`);
}

/** Runs a program with this terminal attached; returns its exit code. */
function interactive(command: string, args: string[], env?: NodeJS.ProcessEnv): number {
  const result = spawnSync(command, args, { stdio: 'inherit', env: env ?? process.env });
  if (result.error) throw result.error;
  return result.status ?? 1;
}

function loadHost(name: string): RigHost {
  const host = RigHost.load(RigCluster.stateDir(name));
  if (!host)
    throw new Error(`no local cluster named ${name} (start one with: npm run local -- up)`);
  return host;
}

/** A login shell inside a node, as root: the rig's Session Manager. */
function shell(name: string, node: string | undefined): number {
  const host = loadHost(name);
  if (!node) throw new Error(`shell needs a node name; nodes: ${host.nodeNames.join(', ')}`);
  const term = process.env.TERM ?? 'xterm';
  return interactive('nsenter', host.enterArgs(node, ['bash', '-l'], { TERM: term }));
}

/**
 * psql on this machine through the NLB stand-in, as the rig's application
 * role (pg_hba refuses the administrative roles there: `shell` into a
 * backend), verifying the server as the README tells clients to: the NLB's
 * DNS name (dialled at the stand-in's address) against the roots the CA
 * function published.
 */
function psql(name: string, read: boolean, extra: string[]): number {
  loadHost(name);
  const stateDir = RigCluster.stateDir(name);
  const template = readTemplate(join(REPO_ROOT, `cdk.out.rig-${name}`, 'PemHa.template.json'));
  const plan = planCluster(template);
  const pseudo = { region: REGION, accountId: ACCOUNT };
  const output = (key: string) => rigOutput(plan, template, pseudo, key);
  const parameters = new LocalParameters(join(stateDir, 'parameters.json'), pseudo);
  const roots = parameters.valueOf(output('RootCertificatesParameter'));
  if (!roots) throw new Error(`the rig ${name} has no published roots yet (run the bootstrap)`);
  const rootFile = join(stateDir, 'root-certificates.crt');
  writeFileSync(rootFile, `${roots}\n`);
  const [nlbName] = output('WriteEndpoint').split(':');
  const conninfo = `host=${nlbName} hostaddr=${plan.nlbAddress} port=${read ? 5433 : 5432} user=${APPLICATION_ROLE} dbname=postgres sslmode=verify-full sslrootcert=${rootFile} connect_timeout=5`;
  return interactive('psql', [conninfo, ...extra], {
    ...process.env,
    PGPASSFILE: join(stateDir, 'pgpass'),
  });
}

async function runOn(
  name: string,
  what: string,
  run: (rig: RigCluster) => Promise<{ durationMs: number; output?: unknown }>,
): Promise<void> {
  const started = Date.now();
  const rig = await RigCluster.attach({
    name,
    log: (m) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)} s] ${m}`),
  });
  try {
    const { durationMs, output } = await run(rig);
    console.log(`${what} finished in ${(durationMs / 1000).toFixed(1)} s`);
    if (output !== undefined && output !== null && Object.keys(output).length) {
      console.log(JSON.stringify(output, null, 2));
    }
  } finally {
    await rig.detach();
  }
}

async function status(name: string): Promise<void> {
  const host = RigHost.load(RigCluster.stateDir(name));
  if (!host) {
    console.log(`no local cluster named ${name} (start one with: npm run local -- up)`);
    return;
  }
  for (const node of host.nodeNames) {
    if (!host.isRunning(node)) {
      console.log(`${node.padEnd(10)} stopped`);
      continue;
    }
    const units = await host.exec(node, {
      argv: ['sh', '-c', STATUS_SCRIPT],
      timeoutMs: 10_000,
    });
    console.log(`${node.padEnd(10)} running  ${units.stdout.trim()}`);
  }
  const backend = host.nodeNames.find((node) => node.startsWith('backend') && host.isRunning(node));
  if (backend) {
    const list = await host.exec(backend, {
      argv: [
        'runuser',
        '-u',
        'postgres',
        '--',
        'patronictl',
        '-c',
        '/etc/patroni/patroni.yml',
        'list',
      ],
      timeoutMs: 20_000,
    });
    console.log(`\n${list.stdout || list.stderr}`);
  }
}

async function main(): Promise<number> {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: {
      name: { type: 'string', default: 'dev' },
      family: { type: 'string', default: 'debian-13' },
      fast: { type: 'boolean', default: false },
      read: { type: 'boolean', default: false },
      'vpc-cidr': { type: 'string' },
      'renew-before-days': { type: 'string' },
      upgrade: { type: 'string' },
      failover: { type: 'string' },
      type: { type: 'string', default: 'full' },
      to: { type: 'string' },
      set: { type: 'string', multiple: true, default: [] },
      help: { type: 'boolean', default: false },
    },
  });
  const [command] = positionals;
  if (values.help || !command) {
    console.log(USAGE);
    return command || values.help ? 0 : 2;
  }
  const name = values.name!;
  switch (command) {
    case 'up':
      await up(name, values.family!, values.fast!, values['vpc-cidr']);
      return 0;
    case 'status':
      await status(name);
      return 0;
    case 'shell':
      return shell(name, positionals[1]);
    case 'psql':
      return psql(name, values.read!, positionals.slice(1));
    case 'rotate': {
      const days = values['renew-before-days'];
      const input = days === undefined ? {} : { renewBeforeDays: Number(days) };
      await runOn(name, 'certificate rotation', (rig) => rig.rotateCertificates({ input }));
      return 0;
    }
    case 'bootstrap':
      await runOn(name, 'bootstrap', (rig) => rig.converge());
      return 0;
    case 'deploy': {
      const settings = Object.fromEntries(
        values.set!.map((pair) => {
          const at = pair.indexOf('=');
          if (at < 1)
            throw new Error(`--set takes KEY=VALUE; got ${JSON.stringify(pair)}\n${USAGE}`);
          return [pair.slice(0, at), pair.slice(at + 1)];
        }),
      );
      if (!Object.keys(settings).length)
        throw new Error(`deploy needs at least one --set KEY=VALUE\n${USAGE}`);
      await runOn(name, 'deploy', async (rig) => {
        const started = Date.now();
        const { ran } = await rig.redeploy(settings);
        return { durationMs: Date.now() - started, output: { runbooksRun: ran } };
      });
      return 0;
    }
    case 'rollover':
      await runOn(name, 'root CA rollover', (rig) => rig.rolloverRoot());
      return 0;
    case 'upgrade': {
      const input = JSON.parse(values.upgrade ?? '{}') as Record<string, unknown>;
      await runOn(name, 'rolling upgrade', (rig) => rig.upgrade(input));
      return 0;
    }
    case 'failover': {
      const input = JSON.parse(values.failover ?? '{}') as Record<string, unknown>;
      await runOn(name, 'failover', (rig) => rig.failover(input));
      return 0;
    }
    case 'replace': {
      const node = positionals[1];
      if (!node) throw new Error(`replace needs a node name, e.g. replace backend-2\n${USAGE}`);
      await runOn(name, `replacement of ${node}`, (rig) => rig.replace(node));
      return 0;
    }
    case 'backup':
      await runOn(name, `${values.type} backup`, (rig) => rig.backup(values.type!));
      return 0;
    case 'restore': {
      const to = values.to;
      if (!to) throw new Error(`restore needs --to '<ISO 8601 time>' or --to latest\n${USAGE}`);
      const target = to === 'latest' ? { latest: true } : { time: to };
      await runOn(name, 'point-in-time restore', (rig) =>
        rig.restore({ ...target, confirm: rig.plan.clusterName }),
      );
      return 0;
    }
    case 'backup-health':
      await runOn(name, 'backup health', (rig) => rig.runRunbook('BackupHealthStateMachineArn'));
      return 0;
    case 'down':
      console.log(
        (await RigCluster.downByName(name, console.log))
          ? `local cluster ${name} removed`
          : `no local cluster named ${name}`,
      );
      return 0;
    default:
      console.error(`unknown command ${command}\n${USAGE}`);
      return 2;
  }
}

main().then(
  (code) => process.exit(code),
  (error: Error & { cause?: Error }) => {
    // A runbook's failure: the execution's named error, as Step Functions shows it.
    const { cause } = error;
    console.error(
      `npm run local: ${cause?.name ? `${cause.name}: ${cause.message}` : error.message}`,
    );
    process.exit(1);
  },
);
