import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * What `haproxy -c` says of a generated configuration, checked in a scratch
 * directory; `prepare` may put files there (a certificate) and return the
 * configuration to check, pointing at them.
 */
export function haproxyCheck(config: string, prepare: (dir: string) => string = () => config) {
  const dir = mkdtempSync(join(tmpdir(), 'haproxy-'));
  try {
    const file = join(dir, 'haproxy.cfg');
    writeFileSync(file, prepare(dir));
    return execFileSync('haproxy', ['-c', '-f', file], { encoding: 'utf8' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
