/**
 * The ALB stand-in: HAProxy in HTTP mode generated from the synthesized
 * application listener and its target group (listener port, target port and
 * protocol, health-check path, interval, timeout, thresholds and matcher,
 * lb_cookie stickiness), so the web path under test is the deployed one.
 */
import { listenersWithGroups } from './listeners';
import type { SynthesizedTemplate } from './template';
import { haproxyPreamble, NlbTarget } from './nlb';

export interface AlbListener {
  readonly port: number;
  readonly targetPort: number;
  readonly targetProtocol: 'HTTP' | 'HTTPS';
  readonly healthCheck: {
    readonly protocol: 'HTTP' | 'HTTPS';
    readonly path: string;
    readonly intervalSeconds: number;
    readonly timeoutSeconds: number;
    readonly healthyThreshold: number;
    readonly unhealthyThreshold: number;
    readonly httpCode: string;
  };
  /** lb_cookie duration, or undefined when stickiness is off. */
  readonly stickySeconds?: number;
  readonly targetLogicalIds: readonly string[];
}

/** Every HTTPS listener of the template's application load balancer, with its target group. */
export function albListeners(template: SynthesizedTemplate): AlbListener[] {
  return listenersWithGroups(template, 'HTTPS').map(
    ({ listener, group, attributes, targetLogicalIds }) => {
      const sticky =
        attributes.get('stickiness.enabled') === 'true' &&
        attributes.get('stickiness.type') === 'lb_cookie';
      return {
        port: Number(listener.Port),
        targetPort: Number(group.Port),
        targetProtocol: group.Protocol as 'HTTP' | 'HTTPS',
        healthCheck: {
          protocol: (group.HealthCheckProtocol ?? group.Protocol) as 'HTTP' | 'HTTPS',
          path: String(group.HealthCheckPath ?? '/'),
          // CloudFormation's defaults for an HTTP(S) target group.
          intervalSeconds: Number(group.HealthCheckIntervalSeconds ?? 30),
          timeoutSeconds: Number(group.HealthCheckTimeoutSeconds ?? 5),
          healthyThreshold: Number(group.HealthyThresholdCount ?? 5),
          unhealthyThreshold: Number(group.UnhealthyThresholdCount ?? 2),
          httpCode: String((group.Matcher as { HttpCode?: string } | undefined)?.HttpCode ?? '200'),
        },
        stickySeconds: sticky
          ? Number(attributes.get('stickiness.lb_cookie.duration_seconds') ?? 86400)
          : undefined,
        targetLogicalIds,
      };
    },
  );
}

export interface AlbHaproxyOptions {
  readonly bindAddress: string;
  readonly targets: readonly NlbTarget[];
  /** PEM file (certificate and key) the listener serves: the ACM certificate's place. */
  readonly certificatePem: string;
  readonly statsSocket: string;
}

/**
 * HAProxy terminating TLS per listener, balancing over the target group with
 * the ALB's cookie (AWSALB) for stickiness. ALBs do not verify the targets'
 * certificates, and route to every target when none is healthy (fail-open).
 */
export function albHaproxyConfig(
  listeners: readonly AlbListener[],
  options: AlbHaproxyOptions,
): string {
  const byId = new Map(options.targets.map((target) => [target.instanceLogicalId, target]));
  const lines = haproxyPreamble(
    'the synthesized application listener and target group',
    'http',
    options.statsSocket,
    '60s',
  );
  for (const listener of listeners) {
    const check = listener.healthCheck;
    const tls = listener.targetProtocol === 'HTTPS' ? ' ssl verify none' : '';
    const checkTls = check.protocol === 'HTTPS' ? ' check-ssl verify none' : '';
    lines.push(
      `frontend https_${listener.port}`,
      `  bind ${options.bindAddress}:${listener.port} ssl crt ${options.certificatePem}`,
      `  default_backend port_${listener.port}`,
      `backend port_${listener.port}`,
      '  balance roundrobin',
      '  option allbackups',
      `  timeout check ${check.timeoutSeconds}s`,
      '  option httpchk',
      `  http-check send meth GET uri ${check.path}`,
      `  http-check expect status ${check.httpCode}`,
    );
    if (listener.stickySeconds !== undefined) {
      lines.push(`  cookie AWSALB insert indirect nocache maxlife ${listener.stickySeconds}s`);
    }
    for (const id of listener.targetLogicalIds) {
      const target = byId.get(id);
      if (!target) throw new Error(`no rig node plays target ${id} of port ${listener.port}`);
      const cookie = listener.stickySeconds !== undefined ? ` cookie ${target.name}` : '';
      lines.push(
        `  server ${target.name} ${target.address}:${listener.targetPort}${tls} check${checkTls}` +
          ` inter ${check.intervalSeconds}s fall ${check.unhealthyThreshold} rise ${check.healthyThreshold}${cookie}`,
      );
    }
    for (const id of listener.targetLogicalIds) {
      const target = byId.get(id)!;
      lines.push(
        `  server ${target.name}-fail-open ${target.address}:${listener.targetPort}${tls} backup`,
      );
    }
  }
  return `${lines.join('\n')}\n`;
}
