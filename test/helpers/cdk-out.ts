/**
 * Where the tests' CDK apps write their cloud assemblies. An App without an
 * `outdir` makes its own `cdk.out*` directory in the temp directory and
 * leaves it there; the tests give theirs {@link cdkOutdir} instead: a fresh
 * directory inside one per test file (named after the Jest worker), which
 * the `afterAll` below removes once the file's tests are done. Jest loads
 * this module into every test file before its tests (setupFilesAfterEnv in
 * jest.config.js), so the hook is always registered.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

let suiteDir: string | undefined;

/** A new, empty directory for one App's `outdir`, removed after the current test file. */
export function cdkOutdir(): string {
  suiteDir ??= mkdtempSync(join(tmpdir(), `pem-ha-jest-w${process.env.JEST_WORKER_ID ?? 0}-`));
  return mkdtempSync(join(suiteDir, 'cdk.out-'));
}

afterAll(() => {
  if (suiteDir) rmSync(suiteDir, { recursive: true, force: true });
  suiteDir = undefined;
});
