/**
 * Synthesizes the app the way a user does (`cdk synth`, bundling included),
 * with the settings that describe the rig's nodes: Debian's own PostgreSQL
 * and Patroni of the node family (rig/family.ts). The rig then runs what lands
 * in the assembly directory.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { rigFamily, RigFamilyName } from './family';

const run = promisify(execFile);
export const REPO_ROOT = join(__dirname, '..');

export interface RigSettings {
  /** The nodes' operating system. @default 'debian-13' */
  readonly family?: RigFamilyName;
  /** Also deploys the PEM documents and web nodes (PEM itself is a test double here). @default false */
  readonly pem?: boolean;
  /** patroniFailoverProfile fast (ttl 20 / loop_wait 2 / retry_timeout 9) instead of standard. @default false */
  readonly fastPatroni?: boolean;
  /** @default '10.40.0.0/16' (the app's default) */
  readonly vpcCidr?: string;
  readonly synchronousMode?: boolean;
  /** Any further setting, as `-c key=value` would give it. */
  readonly extra?: Readonly<Record<string, string>>;
}

export function rigContext(settings: RigSettings): Record<string, string> {
  return {
    ...rigFamily(settings.family).context,
    pemEnabled: String(settings.pem ?? false),
    ...(settings.vpcCidr && { vpcCidr: settings.vpcCidr }),
    ...(settings.synchronousMode !== undefined && {
      synchronousMode: String(settings.synchronousMode),
    }),
    ...(settings.fastPatroni && { patroniFailoverProfile: 'fast' }),
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
    // CDK's built-in CloudFormation validation (about 4 s) changes no artifact;
    // test/infra/nag.test.ts and CI's own `cdk synth` run it.
    env: { ...process.env, CDK_DISABLE_VERSION_CHECK: 'true', CDK_VALIDATION: 'false' },
    maxBuffer: 64 * 1024 * 1024,
    timeout: 300_000,
  });
  return join(outputDir, 'PemHa.template.json');
}
