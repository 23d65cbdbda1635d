import { spawnSync, SpawnSyncReturns } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const REPO_ROOT = resolve(__dirname, '..', '..');

/** The user's environment without any AWS credentials or profile: synth must work offline. */
function envWithoutAws(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('AWS_')) env[key] = value;
  }
  env.AWS_EC2_METADATA_DISABLED = 'true';
  return env;
}

/**
 * Each synth takes 5-15 s alone; at nice 19 beside two rigs (npm test) one
 * took over 90 s in CI.
 */
const CLI_TEST_TIMEOUT_MS = 330_000;

const outputDirs: string[] = [];

/** Runs `npx cdk synth --quiet <args> --output <fresh temp dir>` from the repo root. */
function cdkSynth(...args: string[]): SpawnSyncReturns<string> & { outputDir: string } {
  const outputDir = mkdtempSync(join(tmpdir(), 'pem-ha-cli-'));
  outputDirs.push(outputDir);
  const result = spawnSync('npx', ['cdk', 'synth', '--quiet', ...args, '--output', outputDir], {
    cwd: REPO_ROOT,
    env: envWithoutAws(),
    encoding: 'utf8',
    timeout: CLI_TEST_TIMEOUT_MS - 30_000,
  });
  if (result.error) throw result.error;
  return { ...result, outputDir };
}

describe('cdk synth from the command line', () => {
  afterAll(() => {
    for (const dir of outputDirs) rmSync(dir, { recursive: true, force: true });
  });

  it.each([
    ['etcdNodeCount=4', '  - etcdNodeCount: must be an odd integer from 3 to 7; got "4"'],
    ['patroniTtl=15', '  - patroniTtl: must be an integer from 20 to 3600 s; got "15"'],
    [
      'patroniRetryTimeout=11',
      '  - patroniTtl: must be at least patroniLoopWait + 2 × patroniRetryTimeout, or Patroni lowers them itself; got ttl 30 < 10 + 2 × 11 = 32',
    ],
    [
      'databaseClientCidrs=0.0.0.0/0',
      '  - databaseClientCidrs: must be IPv4 CIDRs with a prefix of /8 to /32 (0.0.0.0/0 and other open ranges are refused); got "0.0.0.0/0"',
    ],
  ])(
    'fails on -c %s, naming the setting, what is allowed and what was given',
    (arg, line) => {
      // Given a bad value on the command line
      // When the user runs `npx cdk synth --quiet -c <arg>`
      const result = cdkSynth('-c', arg);
      // Then synth fails and stderr explains the problem
      expect(result.status).not.toBe(0);
      expect(result.status).not.toBeNull();
      expect(result.stderr).toContain('Invalid pem-ha configuration:\n');
      expect(result.stderr).toContain(`${line}\n`);
      // And no template was written
      expect(readdirSync(result.outputDir).filter((f) => f.endsWith('.template.json'))).toEqual([]);
    },
    CLI_TEST_TIMEOUT_MS,
  );

  it(
    'synthesizes 5 etcd instances with -c etcdNodeCount=5',
    () => {
      // Given a valid etcd member count on the command line
      // When the user runs `npx cdk synth --quiet -c etcdNodeCount=5`
      const result = cdkSynth('-c', 'etcdNodeCount=5');
      // Then synth succeeds without a configuration error
      expect({ status: result.status, stderr: result.stderr }).toMatchObject({ status: 0 });
      expect(result.stderr).not.toContain('Invalid pem-ha configuration');
      // And the template has five EC2 instances tagged pem-ha:tier=etcd
      const templates = readdirSync(result.outputDir).filter((f) => f.endsWith('.template.json'));
      expect(templates).toEqual(['PemHa.template.json']);
      const template = JSON.parse(readFileSync(join(result.outputDir, templates[0]), 'utf8')) as {
        Resources: Record<string, { Type: string; Properties?: { Tags?: unknown } }>;
      };
      const etcd = Object.values(template.Resources).filter(
        (resource) =>
          resource.Type === 'AWS::EC2::Instance' &&
          Array.isArray(resource.Properties?.Tags) &&
          resource.Properties.Tags.some(
            (tag: { Key?: unknown; Value?: unknown }) =>
              tag.Key === 'pem-ha:tier' && tag.Value === 'etcd',
          ),
      );
      expect(etcd).toHaveLength(5);
    },
    CLI_TEST_TIMEOUT_MS,
  );
});
