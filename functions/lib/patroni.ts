import { request } from 'node:https';
import { ErrorName, PemHaError } from './errors';

/** One member as Patroni's GET /cluster lists it. */
export interface PatroniMember {
  readonly name: string;
  readonly role: string;
  readonly state: string;
  readonly host?: string;
  readonly timeline?: number;
  readonly lag?: number | string;
  readonly tags?: Readonly<Record<string, unknown>>;
  readonly scheduled_restart?: unknown;
}

export interface PatroniCluster {
  readonly members: readonly PatroniMember[];
  readonly pause?: boolean;
  readonly scheduled_switchover?: unknown;
}

/** Reads a Patroni REST path; the caller supplies the transport (tests, other clients). */
export type PatroniGet = (address: string, path: string) => Promise<unknown>;

/** No backend answered GET /cluster. */
export class PatroniUnreachableError extends PemHaError {
  constructor(detail: string) {
    super(
      ErrorName.PatroniUnreachable,
      `no backend's Patroni REST API answered GET /cluster: ${detail}`,
    );
  }
}

/**
 * GET over HTTPS verified against the cluster's roots (the REST certificate
 * names the node's address), bounded by `timeoutMs`.
 */
export function httpsPatroniGet(
  roots: readonly string[],
  { port = 8008, timeoutMs = 5000 } = {},
): PatroniGet {
  return (address, path) =>
    new Promise((resolve, reject) => {
      const req = request(
        { host: address, port, path, method: 'GET', ca: [...roots], timeout: timeoutMs },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => {
            const body = Buffer.concat(chunks).toString('utf8');
            if (res.statusCode !== 200) {
              reject(new Error(`${address}:${port}${path} answered ${res.statusCode}`));
              return;
            }
            try {
              resolve(JSON.parse(body));
            } catch {
              reject(new Error(`${address}:${port}${path} did not answer JSON`));
            }
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${address}:${port}${path} timed out`)));
      req.on('error', reject);
      req.end();
    });
}

/** GET /cluster from the first of `addresses` that answers. */
export async function readPatroniCluster(
  get: PatroniGet,
  addresses: readonly string[],
): Promise<PatroniCluster> {
  const failures: string[] = [];
  for (const address of addresses) {
    try {
      const cluster = (await get(address, '/cluster')) as PatroniCluster;
      if (!Array.isArray(cluster?.members)) throw new Error(`${address}: no members in /cluster`);
      return cluster;
    } catch (error) {
      failures.push((error as Error).message);
    }
  }
  throw new PatroniUnreachableError(failures.join('; ') || 'no addresses given');
}

/** Patroni's answer to a request that changes something: status and text as given. */
export interface PatroniAnswer {
  readonly status: number;
  readonly body: string;
}

/** Sends a changing request (POST, DELETE, PATCH) to one member's REST API. */
export type PatroniSend = (
  address: string,
  method: 'POST' | 'DELETE' | 'PATCH',
  path: string,
  body?: unknown,
) => Promise<PatroniAnswer>;

/**
 * Changing requests over HTTPS verified against the cluster's roots, with
 * the REST API's basic credentials; any status is returned, not thrown.
 */
export function httpsPatroniSend(
  roots: readonly string[],
  credentials: { readonly username: string; readonly password: string },
  { port = 8008, timeoutMs = 30_000 } = {},
): PatroniSend {
  const auth = `${credentials.username}:${credentials.password}`;
  return (address, method, path, body) =>
    new Promise((resolve, reject) => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const req = request(
        {
          host: address,
          port,
          path,
          method,
          ca: [...roots],
          auth,
          timeout: timeoutMs,
          headers: payload ? { 'content-type': 'application/json' } : {},
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
          );
        },
      );
      req.on('timeout', () =>
        req.destroy(new Error(`${method} ${address}:${port}${path} timed out`)),
      );
      req.on('error', reject);
      req.end(payload);
    });
}
