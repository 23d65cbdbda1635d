/**
 * `npm run local -- up | status | down`: the whole cluster on this machine,
 * built from the synthesized artifacts (see rig/cluster.ts).
 */
import { parseArgs } from 'node:util';
import { RigCluster } from './cluster';
import { RigHost } from './host/host';

const USAGE = `usage: npm run local -- <up|status|rotate|rollover|upgrade|down> [--name NAME] [--fast] [--vpc-cidr CIDR] [--renew-before-days N] [--upgrade JSON]
  up      synthesize, create the nodes, run the bootstrap runbook, start the NLB stand-in
  status  nodes, services and Patroni's view of the cluster
  rotate  run the certificate rotation runbook (as its schedule does; --renew-before-days 3650 renews everything)
  rollover  run the root CA rollover runbook
  upgrade   run the rolling upgrade runbook with --upgrade '{"component":"postgresql","version":"latest"}'
            (the rig's local apt repository offers the newer PostgreSQL 15 minor)
  down    stop every process the rig started and remove its namespaces and files
  --name      rig name, 1-6 lowercase letters/digits (default dev)
  --fast      Patroni ttl 10 / loop_wait 2 / retry_timeout 3 instead of the defaults
  --vpc-cidr  network of the nodes (default: the app's vpcCidr, 10.40.0.0/16)`;

/** The services pem-ha manages on a node (documents leave a marker) and their state. */
const STATUS_SCRIPT = [
  'for unit in etcd patroni; do',
  '  [ -f /etc/pem-ha/$unit.managed ] && printf "%s=%s " $unit "$(systemctl is-active $unit)"',
  'done',
  '[ -f /etc/systemd/system/pem-ha-nlb.service ] && printf "haproxy=%s" "$(systemctl is-active pem-ha-nlb)"',
  'true',
].join('\n');

async function up(name: string, fast: boolean, vpcCidr?: string): Promise<void> {
  const started = Date.now();
  const log = (message: string) =>
    console.log(`[${((Date.now() - started) / 1000).toFixed(1)} s] ${message}`);
  const rig = await RigCluster.up({
    name,
    fastPatroni: fast,
    vpcCidr,
    log: (m) => !/: send$|^ {2}Sign/.test(m) && log(m),
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
  psql            PGPASSFILE=${RigCluster.stateDir(name)}/pgpass psql "host=${host} port=5432 user=patroni_super dbname=postgres sslmode=require"
  stop it with    npm run local -- down${name === 'dev' ? '' : ` --name ${name}`}`);
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
      fast: { type: 'boolean', default: false },
      'vpc-cidr': { type: 'string' },
      'renew-before-days': { type: 'string' },
      upgrade: { type: 'string' },
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
      await up(name, values.fast!, values['vpc-cidr']);
      return 0;
    case 'status':
      await status(name);
      return 0;
    case 'rotate': {
      const days = values['renew-before-days'];
      const input = days === undefined ? {} : { renewBeforeDays: Number(days) };
      await runOn(name, 'certificate rotation', (rig) => rig.rotateCertificates({ input }));
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
  (error: Error) => {
    console.error(`npm run local: ${error.message}`);
    process.exit(1);
  },
);
