/**
 * The ALB stand-in's target group as ELBv2 describes and changes it, through
 * HAProxy's admin socket in the `alb` node: a deregistered target is put in
 * maintenance (no new requests; those in flight finish), reported `draining`
 * for the group's deregistration delay and then no longer listed; a
 * registered one leaves maintenance with its health forced down, so it is
 * routed to only after the health check's healthy threshold, as an ALB's
 * newly registered target.
 */
import type { RigNodePlan } from '../plan';
import type { NodeExec } from '../types';
import type { TargetHealthDescription } from './elbv2';

/** One HAProxy server: its status (UP, DOWN, MAINT…) and seconds since it last changed. */
export interface AlbServer {
  readonly status: string;
  readonly lastChangeSeconds: number;
}

const SOCKET = '/run/haproxy-admin.sock';

/** Sends HAProxy one line of `;`-separated admin commands; prints what it answers. */
const HAPROXY_COMMAND = [
  'import socket, sys',
  's = socket.socket(socket.AF_UNIX)',
  `s.connect('${SOCKET}')`,
  "s.sendall(sys.argv[1].encode() + b'\\n')",
  "data = b''",
  'while chunk := s.recv(65536): data += chunk',
  'print(data.decode().strip())',
].join('\n');

/** Every server of the ALB's backend `port_<port>`: name -> status and last change. */
export async function readAlbServers(
  exec: NodeExec,
  port: number,
): Promise<Record<string, AlbServer>> {
  const result = await exec('alb', {
    argv: ['python3', '-c', HAPROXY_COMMAND, 'show stat'],
    timeoutMs: 30_000,
  });
  if (result.exitCode !== 0)
    throw new Error(`alb: reading HAProxy's statistics failed: ${result.stderr.trim()}`);
  const servers: Record<string, AlbServer> = {};
  for (const line of result.stdout.split('\n')) {
    const columns = line.split(',');
    // show stat's columns: pxname, svname, ..., status (17), ..., lastchg (23).
    if (columns[0] !== `port_${port}` || ['FRONTEND', 'BACKEND'].includes(columns[1])) continue;
    servers[columns[1]] = {
      status: columns[17].split(' ')[0],
      lastChangeSeconds: Number(columns[23]),
    };
  }
  return servers;
}

/** What ELBv2 says of a target (undefined: no longer registered). */
export function albTargetHealth(
  server: AlbServer | undefined,
  deregistrationDelaySeconds: number,
): Pick<TargetHealthDescription, 'state' | 'reason' | 'description'> | undefined {
  switch (server?.status) {
    case 'UP':
      return { state: 'healthy' };
    case 'DOWN':
      return {
        state: 'unhealthy',
        reason: 'Target.FailedHealthChecks',
        description: 'Health checks failed',
      };
    case 'MAINT':
      return server.lastChangeSeconds < deregistrationDelaySeconds
        ? {
            state: 'draining',
            reason: 'Target.DeregistrationInProgress',
            description: 'Target deregistration is in progress',
          }
        : undefined;
    default:
      return {
        state: 'initial',
        reason: 'Elb.RegistrationInProgress',
        description: 'Target registration is in progress',
      };
  }
}

/**
 * (De)registers web hosts in the ALB stand-in; a target already in the state
 * asked for is left alone, as ELBv2 does.
 */
export async function changeAlbRegistration(
  exec: NodeExec,
  port: number,
  nodes: readonly RigNodePlan[],
  registered: boolean,
): Promise<void> {
  const servers = await readAlbServers(exec, port);
  const commands = nodes.flatMap((node) => {
    const server = `port_${port}/${node.name}`;
    const inMaintenance = servers[node.name]?.status === 'MAINT';
    if (registered === !inMaintenance) return [];
    return registered
      ? [
          `set server ${server} state ready`,
          `set server ${server} health down`,
          `set server ${server}-fail-open state ready`,
        ]
      : [`set server ${server} state maint`, `set server ${server}-fail-open state maint`];
  });
  if (commands.length === 0) return;
  const result = await exec('alb', {
    argv: ['python3', '-c', HAPROXY_COMMAND, commands.join('; ')],
    timeoutMs: 30_000,
  });
  if (result.exitCode !== 0 || result.stdout.trim() !== '')
    throw new Error(
      `alb: HAProxy refused ${commands.join('; ')}: ${(result.stdout + result.stderr).trim()}`,
    );
}
