import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { albHaproxyConfig, albListeners } from '../../rig/alb';
import { nftRuleset, rigFilterMembers } from '../../rig/packet-filter';
import { planCluster } from '../../rig/plan';
import { securityGroupRules } from '../../rig/security-groups';
import type { SynthesizedTemplate } from '../../rig/template';
import { haproxyCheck } from '../helpers/haproxy';
import { synthStack } from '../helpers/synth';

const template = synthStack({
  databaseClientCidrs: '10.40.255.254/32',
}).template.toJSON() as SynthesizedTemplate;
const plan = planCluster(template);
const targets = plan.nodes.map((n) => ({
  instanceLogicalId: n.logicalId,
  name: n.name,
  address: n.address,
}));

describe('ALB stand-in (HAProxy from the synthesized HTTPS listener and web target group)', () => {
  test('Given the default template, then 443 goes to HTTPS 8443 on both web hosts, checked on /pem/login, with lb_cookie stickiness', () => {
    const [listener, ...others] = albListeners(template);
    expect(others).toEqual([]);
    expect(listener).toMatchObject({
      port: 443,
      targetPort: 8443,
      targetProtocol: 'HTTPS',
      healthCheck: {
        protocol: 'HTTPS',
        path: '/pem/login',
        intervalSeconds: 15,
        timeoutSeconds: 5,
        healthyThreshold: 2,
        unhealthyThreshold: 3,
        httpCode: '200',
      },
      stickySeconds: 86400,
    });
    expect(listener.targetLogicalIds).toHaveLength(2);
  });

  test('Given the listener, then HAProxy terminates TLS, sticks with AWSALB, fails open, and accepts the file', () => {
    const config = albHaproxyConfig(albListeners(template), {
      bindAddress: '127.0.0.1',
      targets,
      certificatePem: '/etc/haproxy/alb.pem',
      statsSocket: '/tmp/alb.sock',
    });
    expect(config).toContain('bind 127.0.0.1:443 ssl crt /etc/haproxy/alb.pem');
    expect(config).toContain('cookie AWSALB insert indirect nocache maxlife 86400s');
    expect(config).toMatch(
      /server web-1 10\.40\.3\.30:8443 ssl verify none check check-ssl verify none inter 15s fall 3 rise 2 cookie web-1/,
    );
    expect(config).toContain('server web-2-fail-open 10.40.4.30:8443 ssl verify none backup');
    // haproxy -c wants the certificate to exist: check a copy that points at a real one.
    const output = haproxyCheck(config, (dir) => {
      const pem = join(dir, 'alb.pem');
      execFileSync('sh', [
        '-c',
        `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=alb -keyout "$1.key" -out "$1.crt" 2>/dev/null && cat "$1.crt" "$1.key" > "$1"`,
        'pem',
        pem,
      ]);
      return config.replace('/etc/haproxy/alb.pem', pem);
    });
    expect(output).toContain('Configuration file is valid');
  });
});

describe('packet filters from the synthesized security groups', () => {
  const members = rigFilterMembers(
    template,
    plan.nodes,
    { nlb: plan.nlbAddress, alb: plan.albAddress },
    '10.40.255.254',
  );
  const rules = securityGroupRules(template);
  const rulesetOf = (name: string) =>
    nftRuleset(
      members.find((m) => m.name === name)!,
      members,
      rules,
    );

  test('Given a backend, then it admits 5432 from the NLB, peers, web hosts and the client network, and 8008 from the NLB, peers and the functions', () => {
    const ruleset = rulesetOf('backend-1');
    const ingress = ruleset.slice(
      ruleset.indexOf('chain ingress'),
      ruleset.indexOf('chain egress'),
    );
    const accepts = ingress
      .split('\n')
      .filter((line) => line.includes(' accept comment'))
      .map((line) => /ip saddr \{ ([^}]+) \} tcp dport (\d+)/.exec(line)!.slice(1).join(' -> '));
    expect(accepts.sort()).toEqual(
      [
        '10.40.3.20, 10.40.4.20, 10.40.5.20 -> 5432',
        '10.40.3.20, 10.40.4.20, 10.40.5.20 -> 8008',
        // pgBackRest's TLS server: backups on a replica reach the primary.
        '10.40.3.20, 10.40.4.20, 10.40.5.20 -> 8432',
        '10.40.3.100 -> 5432',
        '10.40.3.100 -> 8008',
        '10.40.3.30, 10.40.4.30 -> 5432',
        // The host runs the functions in the VPC: the cluster status, upgrade and failover
        // steps, and the cluster-metrics publisher.
        '10.40.255.254 -> 8008',
        '10.40.255.254 -> 8008',
        '10.40.255.254 -> 8008',
        '10.40.255.254 -> 8008',
        '10.40.255.254/32 -> 5432',
      ].sort(),
    );
    expect(ruleset).toContain('policy drop;');
    expect(ruleset).toContain('ct state established,related accept');
  });

  test('Given an etcd member, then nothing but its own groups rules are there: no 5432, no 8008', () => {
    const ruleset = rulesetOf('etcd-2');
    expect(ruleset).not.toMatch(/dport (5432|8008)/);
    expect(ruleset).toMatch(
      /ip saddr \{ 10\.40\.3\.10, 10\.40\.4\.10, 10\.40\.5\.10 \} tcp dport 2380 accept/,
    );
  });

  // nft checks a script against the kernel, which takes CAP_NET_ADMIN.
  const asRoot = process.getuid?.() === 0;
  (asRoot ? test : test.skip)(
    'Given the ruleset, then nft accepts it (a check that changes nothing)',
    () => {
      const dir = mkdtempSync(join(tmpdir(), 'nft-'));
      try {
        const file = join(dir, 'rules.nft');
        writeFileSync(file, rulesetOf('backend-2'));
        execFileSync('nft', ['--check', '-f', file]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});
