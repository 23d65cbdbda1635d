/**
 * Synthesizes the app the way a user does (`cdk synth`, bundling included),
 * with the settings that describe this machine: Debian 12 and its own
 * PostgreSQL 15. The rig then runs what lands in the assembly directory.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
export const REPO_ROOT = join(__dirname, '..');

/** Patroni timing of the "fast" profile: Patroni's documented floor with patroniFastFailover. */
export const FAST_PATRONI = { patroniTtl: 10, patroniLoopWait: 2, patroniRetryTimeout: 3 } as const;

export interface RigSettings {
  /** Also deploys the PEM documents and web nodes (PEM itself is a test double here). @default false */
  readonly pem?: boolean;
  /** ttl 10 / loop_wait 2 / retry_timeout 3 instead of Patroni's defaults. @default false */
  readonly fastPatroni?: boolean;
  /** @default '10.40.0.0/16' (the app's default) */
  readonly vpcCidr?: string;
  readonly synchronousMode?: boolean;
  /** Any further setting, as `-c key=value` would give it. */
  readonly extra?: Readonly<Record<string, string>>;
}

export function rigContext(settings: RigSettings): Record<string, string> {
  return {
    amiFamily: 'debian-12',
    postgresMajorVersion: '15',
    postgresPackageSource: 'os',
    pemEnabled: String(settings.pem ?? false),
    ...(settings.vpcCidr && { vpcCidr: settings.vpcCidr }),
    ...(settings.synchronousMode !== undefined && {
      synchronousMode: String(settings.synchronousMode),
    }),
    ...(settings.fastPatroni && {
      ...Object.fromEntries(Object.entries(FAST_PATRONI).map(([k, v]) => [k, String(v)])),
      patroniFastFailover: 'true',
    }),
    ...settings.extra,
  };
}

/** Runs `cdk synth` into `outputDir` and returns the stack template's path. */
export async function synthesize(settings: RigSettings, outputDir: string): Promise<string> {
  const context = Object.entries(rigContext(settings)).flatMap(([key, value]) => [
    '-c',
    `${key}=${value}`,
  ]);
  const cdk = join(REPO_ROOT, 'node_modules', '.bin', 'cdk');
  await run(cdk, ['synth', '--quiet', '--output', outputDir, ...context], {
    cwd: REPO_ROOT,
    env: { ...process.env, CDK_DISABLE_VERSION_CHECK: 'true' },
    maxBuffer: 64 * 1024 * 1024,
    timeout: 300_000,
  });
  return join(outputDir, 'PemHa.template.json');
}
