/** Host-side process helpers of the rig: run a command, bounded, and read process states. */
import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import type { ExecResult } from '../types';

const execFileAsync = promisify(execFile);

/** Runs a host command; its failure names the command and its stderr. */
export async function host(
  command: string,
  args: readonly string[],
  timeoutMs = 30_000,
): Promise<string> {
  try {
    const { stdout } = await execFileAsync(command, [...args], {
      timeout: timeoutMs,
      maxBuffer: 16 << 20,
    });
    return stdout;
  } catch (error) {
    const { stderr } = error as { stderr?: string };
    throw new Error(
      `${command} ${args.join(' ')} failed: ${(stderr || (error as Error).message).trim()}`,
      { cause: error },
    );
  }
}

/** Like {@link host} but a failure is ignored (teardown of what may be gone already). */
export async function hostQuietly(command: string, args: readonly string[]): Promise<void> {
  await host(command, args).catch(() => undefined);
}

/**
 * Spawns a process in its own process group, feeds stdin, collects output,
 * and kills the whole group at the timeout.
 */
export function runBounded(
  command: string,
  args: readonly string[],
  options: { readonly stdin?: string; readonly timeoutMs: number },
): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, [...args], { detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid) process.kill(-child.pid, 'SIGKILL');
    }, options.timeoutMs);
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (exitCode, signal) => {
      clearTimeout(timer);
      resolve({
        exitCode,
        signal,
        timedOut,
        stdout: Buffer.concat(stdout).toString(),
        stderr: Buffer.concat(stderr).toString(),
      });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.stdin ?? '');
  });
}

/** The process state letter (`S`, `R`, `Z`, ...), or undefined when there is no such process. */
export function processState(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(')').pop()!.trim().split(' ')[0];
  } catch {
    return undefined;
  }
}

/** Alive means present and not a zombie: `kill -0` succeeds on zombies. */
export function isAlive(pid: number): boolean {
  const state = processState(pid);
  return state !== undefined && state !== 'Z' && state !== 'X';
}

/** Waits (bounded) until `check` holds; false when the bound ran out. */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  stepMs = 50,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 0; Date.now() < deadline && attempt < timeoutMs / stepMs + 1; attempt++) {
    if (await check()) return true;
    await new Promise((resolve) => setTimeout(resolve, stepMs));
  }
  return check();
}
