/**
 * Contracts between the rig's parts: the node layer (namespaces, per-node
 * filesystems) and the local AWS endpoints that run documents on nodes.
 */

export interface ExecRequest {
  /** Program and arguments, run inside the node with a clean environment. */
  readonly argv: readonly string[];
  /** Variables added to the node's clean environment (PATH and HOME are always set). */
  readonly env?: Readonly<Record<string, string>>;
  readonly stdin?: string;
  /** The process (and its children) is killed after this long. */
  readonly timeoutMs: number;
}

export interface ExecResult {
  /** null when the process was killed by a signal (for example on timeout). */
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly timedOut: boolean;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command inside one rig node (its network, mount and PID namespaces). */
export type NodeExec = (nodeName: string, request: ExecRequest) => Promise<ExecResult>;
