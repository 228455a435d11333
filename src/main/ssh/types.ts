// The SSH layer's surface, as the rest of main uses it. Implementation: ./pool.ts.
import type { Auth, ConnState, HostKeyInfo } from '@shared/domain';

/** Everything needed to reach one node. `key` identifies the shared connection (host/user/jump). */
export interface SshTarget {
  /** Stable node id; secrets are looked up by it. */
  nodeId: string;
  /** Human label used in messages and logs. */
  label: string;
  host: string;
  port: number;
  user: string;
  auth: Auth;
  /** ProxyJump: the connection to this target is tunnelled through `jump`. */
  jump?: SshTarget;
}

export type SshErrorCode =
  | 'HOST_KEY_UNKNOWN'
  | 'HOST_KEY_CHANGED'
  | 'AUTH_FAILED'
  | 'SECRET_MISSING'
  | 'KEY_UNREADABLE'
  | 'UNREACHABLE'
  | 'TIMEOUT'
  | 'DISCONNECTED'
  | 'CANCELLED'
  | 'CHANNEL_FAILED'
  /** The server would not open a forwarded (direct-tcpip) channel: forwarding off, or the address unreachable. */
  | 'FORWARD_REFUSED'
  /** The command printed more than `ExecOptions.maxOutputBytes`; it was stopped. */
  | 'OUTPUT_TOO_LARGE';

/** Errors with a stable code and a message fit to show a user. `details.hostKey` for host-key codes. */
export class SshError extends Error {
  constructor(
    readonly code: SshErrorCode,
    message: string,
    readonly details?: { hostKey?: HostKeyInfo; expected?: HostKeyInfo },
  ) {
    super(message);
    this.name = 'SshError';
  }
}

export interface ExecOptions {
  /** Run through `sudo -n` when the login user is not root. */
  asRoot?: boolean;
  /** Fed to the command's stdin (used to pass scripts to `bash -s`). */
  stdin?: string | Buffer;
  signal?: AbortSignal;
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
  /** Kill the channel after this long. */
  timeoutMs?: number;
  /**
   * Stop the command (and fail with OUTPUT_TOO_LARGE) once stdout + stderr pass this many bytes.
   * Default 64 MiB (`DEFAULT_MAX_OUTPUT_BYTES`); SFTP transfers are not exec output and not capped.
   */
  maxOutputBytes?: number;
}

export interface ExecResult {
  code: number | null;
  signal?: string;
  stdout: string;
  stderr: string;
  durationMs: number;
}

export interface TransferResult {
  bytes: number;
  sha256: string;
}

export type ProgressFn = (done: number, total: number) => void;

export interface ShellChannel {
  write(data: string | Buffer): void;
  resize(cols: number, rows: number): void;
  pause(): void;
  resume(): void;
  onData(cb: (data: Buffer) => void): void;
  onClose(cb: (code: number | null) => void): void;
  close(): void;
}

export type StateListener = (nodeId: string, state: ConnState, message?: string) => void;

// ---- Additions (implementation details other modules may use) ----

/** Options for SFTP transfers. `mode` applies to the uploaded file (e.g. 0o600 for keys). */
export interface TransferOptions {
  onProgress?: ProgressFn;
  /** Downloads: every chunk in file order, as it is written (for checks that would re-read the file). */
  onChunk?: (chunk: Buffer) => void;
  signal?: AbortSignal;
  mode?: number;
  /**
   * Uploads: hash what is sent (default true). Off where the node checks the file against a known
   * sha256 itself (restores: snapshot-status.sh / restore-member.sh) — hashing again here costs
   * the desktop ~1–2 CPU s per GB per node for nothing. `sha256` is then ''.
   */
  hash?: boolean;
  /** Uploads: told the command that receives the file on the node, to show it in the job log. */
  onCommand?: (line: string) => void;
}

export interface ShellOptions {
  cols: number;
  rows: number;
  /** TERM for the remote PTY; default xterm-256color. */
  term?: string;
  /**
   * Run this command on a PTY instead of the login shell (it should end by exec'ing one): how a
   * master's terminal gets kubectl set up. Built with remote/quote.ts.
   */
  command?: string;
}

/** Settings the pool reads at connect time; `updateSettings` changes them for new connections. */
export interface PoolSettings {
  connectTimeoutMs: number;
  keepaliveIntervalMs: number;
  /** Close a connection nobody uses after this long (0 = keep until disconnect/closeAll). */
  idleTimeoutMs?: number;
  /** ssh-agent socket; defaults to process.env.SSH_AUTH_SOCK at connect time. */
  agentSocket?: string;
}

/** Counters for tests and the benchmark (how many TCP/SSH handshakes and jump tunnels were made). */
export interface PoolStats {
  /** Successful SSH handshakes+auth since the pool was created. */
  connects: number;
  /** Connection attempts (successful or not). */
  attempts: number;
  /** direct-tcpip channels opened (tunnels, and jump hosts' connections). */
  forwards: number;
  /** Remote commands run (exec calls; a batch of scripts is one). */
  execs: number;
  /** Connections currently open. */
  open: number;
}
