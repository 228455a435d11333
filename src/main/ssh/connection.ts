// One pooled SSH connection: the ssh2 Client plus the bookkeeping the pool needs — who uses it
// (refs), which nodes it serves, what to tell in-flight operations when it drops, and a lazily
// opened SFTP session that all transfers share.
import { Client, type SFTPWrapper } from 'ssh2';
import type { HostKeyDecision } from './hostkeys';
import { SshError, type SshTarget } from './types';

/** Thrown when an op found the connection already dead before anything ran; safe to retry. */
export class StaleConnectionError extends Error {
  constructor() {
    super('Connection was already closed');
  }
}

export interface Lease {
  conn: Connection;
  /** Idempotent. */
  release(): void;
}

/**
 * Session channels (exec, shell, sftp) we open at once on one connection; more are queued.
 * OpenSSH refuses more than `MaxSessions` (default 10), and it frees a closed session's slot only
 * a little after the close, so stay below the limit (open failures are also retried).
 */
export const MAX_SESSIONS = 8;

/** The server refused to open a channel (e.g. too many sessions): nothing ran, retry is safe. */
export class ChannelRefusedError extends Error {}

export class Connection {
  readonly client = new Client();
  readonly nodeIds = new Set<string>();
  /** Resolves once connected and authenticated; set by the pool right after construction. */
  ready!: Promise<void>;
  refs = 0;
  /** Kept open by an explicit connect() until disconnect(), regardless of idle time. */
  pinned = false;
  alive = false;
  /** We are closing it on purpose (disconnect, idle, closeAll): not reported as a loss. */
  closing = false;
  closed = false;
  hostKey?: HostKeyDecision;
  /** The jump host's connection this one tunnels through; released when this one closes. */
  jumpLease?: Lease;
  idleTimer?: NodeJS.Timeout;
  private readonly drops = new Set<(e: SshError) => void>();
  private sftpSession?: Promise<SFTPWrapper>;
  private permits = MAX_SESSIONS;
  private readonly waiters: Array<() => void> = [];

  constructor(
    readonly key: string,
    readonly target: SshTarget,
  ) {}

  /** Call `cb` if the connection drops while an operation runs; returns the unregister function. */
  onDrop(cb: (e: SshError) => void): () => void {
    this.drops.add(cb);
    return () => this.drops.delete(cb);
  }

  /** Mark dead and fail every in-flight operation with `reason`. */
  markClosed(reason: SshError): void {
    this.alive = false;
    this.closed = true;
    this.sftpSession = undefined;
    const cbs = [...this.drops];
    this.drops.clear();
    for (const cb of cbs) cb(reason);
    // Queued ops proceed, find the client closed and retry on a fresh connection.
    for (const w of this.waiters.splice(0)) w();
  }

  /**
   * Take one of the MAX_SESSIONS session slots; the returned function gives it back (idempotent).
   * Waiting for a slot counts against the caller's time: past `timeoutMs` the wait fails with
   * TIMEOUT, and `signal` cancels it (CANCELLED); either way the caller never gets a slot.
   */
  async session(opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<() => void> {
    if (opts.signal?.aborted) throw new SshError('CANCELLED', 'Command cancelled');
    if (this.permits > 0) this.permits--;
    else await this.waitForSlot(opts);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const next = this.waiters.shift();
      if (next) next();
      else this.permits++;
    };
  }

  private waitForSlot(opts: { timeoutMs?: number; signal?: AbortSignal }): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const stop = (e: SshError) => {
        const i = this.waiters.indexOf(grant);
        if (i < 0) return; // already granted
        this.waiters.splice(i, 1);
        settle();
        reject(e);
      };
      const onAbort = () => stop(new SshError('CANCELLED', 'Command cancelled'));
      const settle = () => {
        if (timer) clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
      };
      const grant = () => {
        settle();
        resolve();
      };
      this.waiters.push(grant);
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      if (opts.timeoutMs !== undefined)
        timer = setTimeout(
          () =>
            stop(
              new SshError(
                'TIMEOUT',
                `Command did not finish within ${opts.timeoutMs} ms (it was still waiting for one of the ` +
                  `${MAX_SESSIONS} sessions of the connection to ${this.target.host})`,
              ),
            ),
          opts.timeoutMs,
        );
    });
  }

  /** The shared SFTP session (opened on first use, reopened if the server closed it). */
  sftp(): Promise<SFTPWrapper> {
    if (!this.sftpSession) {
      const p = this.session().then(
        (release) =>
          new Promise<SFTPWrapper>((resolve, reject) => {
            try {
              this.client.sftp((err, sftp) => {
                if (err) {
                  release();
                  return reject(new SshError('CHANNEL_FAILED', `Cannot start SFTP: ${err.message}`));
                }
                // The SFTP session keeps its slot while open.
                sftp.on('close', () => {
                  release();
                  if (this.sftpSession === p) this.sftpSession = undefined;
                });
                resolve(sftp);
              });
            } catch {
              release();
              reject(new StaleConnectionError());
            }
          }),
      );
      // A failed open must not be cached.
      p.catch(() => {
        if (this.sftpSession === p) this.sftpSession = undefined;
      });
      this.sftpSession = p;
    }
    return this.sftpSession;
  }

  /** End politely; if the server does not close within `graceMs`, drop the socket. */
  end(graceMs = 2000): Promise<void> {
    this.closing = true;
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.client.destroy();
        resolve();
      }, graceMs);
      timer.unref?.();
      this.client.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      this.client.end();
    });
  }
}
