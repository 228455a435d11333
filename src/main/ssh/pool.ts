// The SSH multiplexer (Tabby-style, DESIGN.md §3): one ssh2 connection per user@host:port(+jump
// chain), shared by exec channels, SFTP and shells, counted by leases. A connection nobody uses
// lingers for `idleTimeoutMs` so sequential commands don't pay a handshake each (the ≥10× of
// `npm run bench:ssh`). When the server drops it, in-flight operations fail with DISCONNECTED and
// the next call simply connects again.
import { setMaxListeners } from 'node:events';
import type { Duplex } from 'node:stream';
import type { ConnState, ConnectionTest } from '@shared/domain';
import { asRoot } from '../remote/quote';
import type { SecretStore } from '../secrets/types';
import { authConfig, expandHome, keyboardInteractiveAnswers, type AuthConfig } from './auth';
import { ChannelRefusedError, Connection, StaleConnectionError, type Lease } from './connection';
import { connectError, hostKeyError, viaJump, where } from './errors';
import { runExec } from './exec';
import { hostPort } from './fingerprint';
import type { HostKeyDecision, HostKeyStore } from './hostkeys';
import { parseProbe, PROBE_COMMAND } from './probe';
import { downloadFile, writeBuffer } from './sftp';
import { uploadViaExec } from './upload';
import { openShell } from './shell';
import {
  SshError,
  type ExecOptions,
  type ExecResult,
  type PoolSettings,
  type PoolStats,
  type ShellChannel,
  type ShellOptions,
  type SshTarget,
  type StateListener,
  type TransferOptions,
  type TransferResult,
} from './types';

export interface SshPoolOptions extends PoolSettings {
  hostKeys: HostKeyStore;
  secrets: SecretStore;
  onState?: StateListener;
  log?: (line: string) => void;
}

/**
 * Identity of a shared connection: who logs in where, with which credentials, through which hops.
 * The credentials are part of it so a node never rides on a session another node authenticated
 * (a wrong password must fail "Test connection" even if a sibling node is logged in).
 */
export function connectionKey(t: SshTarget): string {
  const self = `${t.user}@${hostPort(t.host.toLowerCase(), t.port)} [${credentialId(t)}]`;
  return t.jump ? `${self} via ${connectionKey(t.jump)}` : self;
}

function credentialId(t: SshTarget): string {
  switch (t.auth.method) {
    case 'key-file':
      return `key-file:${t.auth.keyPath}`;
    case 'agent':
      return 'agent';
    // Stored secrets are per node.
    case 'key-stored':
    case 'password':
      return `${t.auth.method}:${t.nodeId}`;
  }
}

const DEFAULT_IDLE_MS = 5 * 60_000;

export class SshPool {
  private settings: PoolSettings;
  private readonly conns = new Map<string, Connection>();
  private readonly states = new Map<string, { state: ConnState; message?: string }>();
  private readonly counters = { connects: 0, attempts: 0, forwards: 0, execs: 0 };
  private readonly log: (line: string) => void;

  constructor(private readonly opts: SshPoolOptions) {
    this.settings = {
      connectTimeoutMs: opts.connectTimeoutMs,
      keepaliveIntervalMs: opts.keepaliveIntervalMs,
      idleTimeoutMs: opts.idleTimeoutMs ?? DEFAULT_IDLE_MS,
      agentSocket: opts.agentSocket,
    };
    this.log = opts.log ?? (() => undefined);
  }

  /** New values apply to connections made from now on. */
  updateSettings(patch: Partial<PoolSettings>): void {
    this.settings = { ...this.settings, ...patch };
  }

  // ---- public operations ------------------------------------------------------------------

  /** Connect now and keep the connection until `disconnect` (the node map's "connected"). */
  async connect(target: SshTarget): Promise<void> {
    const lease = await this.lease(target);
    lease.conn.pinned = true;
    lease.release();
  }

  async exec(target: SshTarget, command: string, opts: ExecOptions = {}): Promise<ExecResult> {
    const cmd = opts.asRoot ? asRoot(command, target.user) : command;
    // The command's timeout covers the whole call: waiting for a session slot and every retry too.
    const deadline = opts.timeoutMs ? Date.now() + opts.timeoutMs : undefined;
    const left = () => (deadline === undefined ? undefined : Math.max(1, deadline - Date.now()));
    this.counters.execs++;
    return this.withConnection(target, async (conn) => {
      const release = await conn.session({ timeoutMs: left(), signal: opts.signal });
      try {
        return await retryRefused(
          () => runExec(conn, cmd, { ...opts, timeoutMs: left() }, target.user === 'root'),
          opts.signal,
        );
      } finally {
        release();
      }
    });
  }

  async shell(target: SshTarget, opts: ShellOptions): Promise<ShellChannel> {
    // The shell holds its lease until it closes, so the connection stays while a terminal is open.
    for (let attempt = 0; ; attempt++) {
      const lease = await this.lease(target);
      const slot = await lease.conn.session();
      const done = () => {
        slot();
        lease.release();
      };
      try {
        return await openShell(lease.conn, opts, done);
      } catch (e) {
        done();
        if (e instanceof StaleConnectionError && attempt === 0) continue;
        throw e instanceof StaleConnectionError ? disconnected(target) : e;
      }
    }
  }

  upload(
    target: SshTarget,
    localPath: string,
    remotePath: string,
    opts: TransferOptions = {},
  ): Promise<TransferResult> {
    return this.transfer(target, opts.signal, async (conn, signal) =>
      uploadViaExec(conn, expandHome(localPath), remotePath, {
        onProgress: opts.onProgress,
        mode: opts.mode,
        hash: opts.hash,
        onCommand: opts.onCommand && ((line) => opts.onCommand!(`${target.label}$ ${line}`)),
        signal,
      }),
    );
  }

  /**
   * Write `content` from memory to `remotePath` over SFTP, created with `mode` (default 0600): for
   * secrets such as private keys, which must never be written to a local file first.
   */
  writeFile(
    target: SshTarget,
    remotePath: string,
    content: Buffer | string,
    opts: { mode?: number; signal?: AbortSignal } = {},
  ): Promise<TransferResult> {
    const buf = typeof content === 'string' ? Buffer.from(content) : content;
    return this.transfer(target, opts.signal, async (conn, signal) =>
      writeBuffer(await conn.sftp(), buf, remotePath, { mode: opts.mode ?? 0o600, signal }),
    );
  }

  download(
    target: SshTarget,
    remotePath: string,
    localPath: string,
    opts: Omit<TransferOptions, 'mode'> = {},
  ): Promise<TransferResult> {
    return this.transfer(target, opts.signal, async (conn, signal) =>
      downloadFile(await conn.sftp(), remotePath, expandHome(localPath), {
        onProgress: opts.onProgress,
        onChunk: opts.onChunk,
        signal,
      }),
    );
  }

  /**
   * A direct-tcpip channel from the node to `host:port` as the node sees it (SSH local forwarding,
   * `ssh -L`). The connection stays leased until the channel closes. A server that forbids
   * forwarding (AllowTcpForwarding no) or cannot reach the address fails with FORWARD_REFUSED.
   */
  async forward(target: SshTarget, host: string, port: number, signal?: AbortSignal): Promise<Duplex> {
    for (let attempt = 0; ; attempt++) {
      if (signal?.aborted) throw new SshError('CANCELLED', 'Tunnel cancelled');
      const lease = await this.lease(target);
      try {
        const stream = await openDirect(lease.conn, host, port);
        this.counters.forwards++;
        let released = false;
        const done = () => {
          if (released) return;
          released = true;
          unDrop();
          lease.release();
        };
        // A dropped connection ends the channel (closed, no error event: whoever pipes it sees it end).
        const unDrop = lease.conn.onDrop(() => {
          stream.destroy();
          stream.resume();
        });
        stream.once('close', done);
        return stream;
      } catch (e) {
        lease.release();
        if (e instanceof StaleConnectionError && attempt === 0) continue;
        throw e instanceof StaleConnectionError ? disconnected(target) : e;
      }
    }
  }

  /** Everything "Test connection" shows. Never throws: failures are reported in `error`. */
  async testConnection(target: SshTarget): Promise<ConnectionTest> {
    const started = Date.now();
    try {
      return await this.withConnection(target, async (conn) => {
        const slot = await conn.session({ timeoutMs: 20_000 });
        const probe = await retryRefused(() => runExec(conn, PROBE_COMMAND, { timeoutMs: 20_000 })).finally(slot);
        const test: ConnectionTest = {
          reachable: true,
          authOk: true,
          ...parseProbe(probe.stdout),
          durationMs: Date.now() - started,
        };
        if (conn.hostKey) test.hostKey = hostKeyView(conn.hostKey);
        if (probe.code !== 0)
          test.error = {
            code: 'CHANNEL_FAILED',
            message: `The probe exited with ${probe.code}: ${probe.stderr.trim()}`,
          };
        return test;
      });
    } catch (e) {
      const err = e instanceof SshError ? e : new SshError('UNREACHABLE', (e as Error).message);
      const test: ConnectionTest = {
        reachable: !['UNREACHABLE', 'TIMEOUT'].includes(err.code),
        authOk: false,
        durationMs: Date.now() - started,
        error: { code: err.code, message: err.message },
      };
      const hk = err.details?.hostKey;
      // Only the node's own host key belongs here, not a jump host's.
      if (
        hk &&
        (err.code === 'HOST_KEY_UNKNOWN' || err.code === 'HOST_KEY_CHANGED') &&
        hk.host === target.host &&
        hk.port === target.port
      ) {
        test.hostKey = { ...hk, status: err.code === 'HOST_KEY_CHANGED' ? 'changed' : 'unknown' };
      }
      return test;
    }
  }

  /** Close the connection `target` uses (in-flight operations fail with DISCONNECTED). */
  async disconnect(target: SshTarget): Promise<void> {
    const conn = this.conns.get(connectionKey(target));
    if (conn) await this.close(conn);
    this.setState(target.nodeId, 'disconnected');
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.conns.values()].map((c) => this.close(c)));
  }

  state(nodeId: string): ConnState {
    return this.states.get(nodeId)?.state ?? 'disconnected';
  }

  /** State plus the message that goes with it (e.g. why it is in 'error'). */
  stateInfo(nodeId: string): { state: ConnState; message?: string } {
    return this.states.get(nodeId) ?? { state: 'disconnected' };
  }

  stats(): PoolStats {
    return { ...this.counters, open: [...this.conns.values()].filter((c) => c.alive).length };
  }

  // ---- leases ------------------------------------------------------------------------------

  /** Run `fn` on a live connection; if it was found dead before anything ran, reconnect once. */
  private async withConnection<T>(target: SshTarget, fn: (conn: Connection) => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const lease = await this.lease(target);
      try {
        return await fn(lease.conn);
      } catch (e) {
        if (e instanceof StaleConnectionError) {
          if (attempt === 0) continue;
          throw disconnected(target);
        }
        throw e;
      } finally {
        lease.release();
      }
    }
  }

  /** SFTP ops: the caller's signal and a connection drop both abort the streams. */
  private transfer<T>(
    target: SshTarget,
    signal: AbortSignal | undefined,
    fn: (conn: Connection, signal: AbortSignal) => Promise<T>,
  ) {
    return this.withConnection(target, async (conn) => {
      if (signal?.aborted) throw new SshError('CANCELLED', 'Transfer cancelled');
      const ac = new AbortController();
      // Every outstanding SFTP request listens to it (sftp.ts call(): up to 64 reads in flight).
      setMaxListeners(128, ac.signal);
      let dropped: SshError | undefined;
      const unDrop = conn.onDrop((e) => {
        dropped = e;
        ac.abort(e);
      });
      const onAbort = () => ac.abort(new SshError('CANCELLED', 'Transfer cancelled'));
      signal?.addEventListener('abort', onAbort, { once: true });
      try {
        return await fn(conn, ac.signal);
      } catch (e) {
        if (dropped) throw dropped;
        if (signal?.aborted) throw new SshError('CANCELLED', 'Transfer cancelled');
        if (e instanceof SshError || e instanceof StaleConnectionError) throw e;
        throw new SshError('CHANNEL_FAILED', `Transfer failed: ${(e as Error).message}`);
      } finally {
        unDrop();
        signal?.removeEventListener('abort', onAbort);
      }
    });
  }

  private async lease(target: SshTarget): Promise<Lease> {
    const key = connectionKey(target);
    let conn = this.conns.get(key);
    if (!conn || conn.closed || conn.closing) conn = this.start(target, key);
    if (!conn.nodeIds.has(target.nodeId)) {
      conn.nodeIds.add(target.nodeId);
      if (conn.alive) this.setState(target.nodeId, 'connected');
    }
    const c = conn;
    c.refs++;
    if (c.idleTimer) clearTimeout(c.idleTimer);
    c.idleTimer = undefined;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      c.refs--;
      this.maybeIdle(c);
    };
    try {
      await c.ready;
    } catch (e) {
      release();
      throw e;
    }
    return { conn: c, release };
  }

  private maybeIdle(conn: Connection): void {
    const idle = this.settings.idleTimeoutMs ?? 0;
    if (conn.refs > 0 || conn.pinned || !conn.alive || idle <= 0) return;
    conn.idleTimer = setTimeout(() => {
      if (conn.refs === 0 && !conn.pinned) {
        this.log(`ssh ${conn.key}: closing after ${idle} ms idle`);
        void this.close(conn);
      }
    }, idle);
    conn.idleTimer.unref?.();
  }

  // ---- connecting --------------------------------------------------------------------------

  private start(target: SshTarget, key: string): Connection {
    const conn = new Connection(key, target);
    conn.nodeIds.add(target.nodeId);
    this.conns.set(key, conn);
    this.counters.attempts++;
    for (const id of conn.nodeIds) this.setState(id, 'connecting');
    conn.ready = this.establish(conn, target).then(
      () => {
        conn.alive = true;
        this.counters.connects++;
        this.log(`ssh ${key}: connected`);
        for (const id of conn.nodeIds) this.setState(id, 'connected');
        conn.client.on('close', () => this.onClosed(conn));
        this.maybeIdle(conn);
      },
      (e: unknown) => {
        const err = e instanceof SshError ? e : new SshError('DISCONNECTED', (e as Error).message);
        conn.markClosed(err);
        if (this.conns.get(key) === conn) this.conns.delete(key);
        this.log(`ssh ${key}: connect failed: ${err.code}: ${err.message}`);
        for (const id of conn.nodeIds) this.setState(id, 'error', err.message);
        throw err;
      },
    );
    conn.ready.catch(() => undefined); // awaited by the lease; this only silences "unhandled"
    return conn;
  }

  private async establish(conn: Connection, target: SshTarget): Promise<void> {
    let sock: Duplex | undefined;
    if (target.jump) {
      const jump = target.jump;
      let jumpLease: Lease | undefined;
      try {
        jumpLease = await this.lease(jump);
        sock = await forwardOut(jumpLease.conn, target);
        this.counters.forwards++;
      } catch (e) {
        jumpLease?.release();
        throw viaJump(e, jump);
      }
      conn.jumpLease = jumpLease;
    }
    try {
      const auth = await authConfig(target, this.opts.secrets, this.settings.agentSocket);
      if (conn.closing)
        throw new SshError('DISCONNECTED', `Connection to ${where(target)} was closed while connecting.`);
      await this.handshake(conn, target, auth, sock);
    } catch (e) {
      sock?.destroy();
      conn.jumpLease?.release();
      throw e;
    }
  }

  private handshake(conn: Connection, target: SshTarget, auth: AuthConfig, sock?: Duplex): Promise<void> {
    const timeoutMs = this.settings.connectTimeoutMs;
    const client = conn.client;
    return new Promise<void>((resolve, reject) => {
      let decision: HostKeyDecision | undefined;
      let done = false;
      const refused = () => decision && (decision.status === 'unknown' || decision.status === 'changed');
      const fail = (e: SshError) => {
        if (done) return;
        done = true;
        clearTimeout(backstop);
        client.destroy();
        reject(e);
      };
      // ssh2's readyTimeout covers the handshake; this backstop also covers a stuck TCP connect.
      const backstop = setTimeout(
        () => fail(new SshError('TIMEOUT', `No SSH answer from ${where(target)} within ${timeoutMs} ms.`)),
        timeoutMs + 500,
      );
      client.on('error', (e: Error) => {
        if (!done) fail(refused() ? hostKeyError(target, decision!) : connectError(e, target, timeoutMs));
        else this.log(`ssh ${conn.key}: ${e.message}`);
      });
      client.once('close', () => {
        if (refused()) fail(hostKeyError(target, decision!));
        else fail(new SshError('DISCONNECTED', `${where(target)} closed the connection during the SSH handshake.`));
      });
      client.once('ready', () => {
        if (done) return;
        done = true;
        clearTimeout(backstop);
        conn.hostKey = decision;
        resolve();
      });
      if (auth.tryKeyboard && auth.password !== undefined) {
        const password = auth.password;
        client.on('keyboard-interactive', (_name, _instr, _lang, prompts, finish) =>
          finish(keyboardInteractiveAnswers(prompts, password)),
        );
      }
      try {
        client.connect({
          host: target.host,
          port: target.port,
          sock,
          username: target.user,
          readyTimeout: timeoutMs,
          keepaliveInterval: this.settings.keepaliveIntervalMs,
          keepaliveCountMax: 3,
          hostVerifier: (key: Buffer) => {
            decision = this.opts.hostKeys.verify(target.host, target.port, key);
            return !refused();
          },
          ...auth,
        });
        // An exec is several small packets in a row (open, exec request, EOF); with Nagle on, the
        // second waits for the server's delayed ACK — ~40 ms per command. Send them at once.
        client.setNoDelay(true);
      } catch (e) {
        // ssh2 validates keys synchronously; its messages never contain key material.
        fail(new SshError('KEY_UNREADABLE', `Cannot use the key for ${where(target)}: ${(e as Error).message}`));
      }
    });
  }

  private onClosed(conn: Connection): void {
    if (conn.closed) return;
    const expected = conn.closing;
    if (conn.idleTimer) clearTimeout(conn.idleTimer);
    conn.markClosed(
      new SshError(
        'DISCONNECTED',
        expected ? `Disconnected from ${where(conn.target)}.` : `Connection to ${where(conn.target)} was lost.`,
      ),
    );
    if (this.conns.get(conn.key) === conn) this.conns.delete(conn.key);
    conn.jumpLease?.release();
    this.log(`ssh ${conn.key}: ${expected ? 'closed' : 'connection lost'}`);
    for (const id of conn.nodeIds) {
      // Another live connection may serve the node now (e.g. after a reconnect raced this close).
      if ([...this.conns.values()].some((c) => c.alive && c.nodeIds.has(id))) continue;
      this.setState(id, 'disconnected', expected ? undefined : 'Connection lost; it reconnects on next use');
    }
  }

  private async close(conn: Connection): Promise<void> {
    conn.pinned = false;
    if (conn.idleTimer) clearTimeout(conn.idleTimer);
    if (this.conns.get(conn.key) === conn) this.conns.delete(conn.key);
    if (!conn.alive && !conn.closed) {
      // Still connecting: stop it and let the pending lease fail.
      conn.closing = true;
      conn.client.destroy();
      await conn.ready.catch(() => undefined);
      return;
    }
    await conn.end();
    // A half-closed socket may never report 'close'; don't leave operations waiting for it.
    if (!conn.closed) this.onClosed(conn);
  }

  private setState(nodeId: string, state: ConnState, message?: string): void {
    const prev = this.states.get(nodeId);
    if (prev && prev.state === state && prev.message === message) return;
    this.states.set(nodeId, message ? { state, message } : { state });
    this.opts.onState?.(nodeId, state, message);
  }
}

/**
 * A refused channel open (the server's session limit, which lags behind closes) means nothing ran:
 * try again a few times with backoff (~1.5 s in all) before giving up with CHANNEL_FAILED.
 */
async function retryRefused<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      if (!(e instanceof ChannelRefusedError)) throw e;
      if (attempt >= 4 || signal?.aborted) throw new SshError('CHANNEL_FAILED', e.message);
      await new Promise((r) => setTimeout(r, 100 * 2 ** attempt));
    }
  }
}

function disconnected(target: SshTarget): SshError {
  return new SshError('DISCONNECTED', `Connection to ${where(target)} was lost.`);
}

function hostKeyView(d: HostKeyDecision): NonNullable<ConnectionTest['hostKey']> {
  return { ...d.presented, status: d.status };
}

/** A direct-tcpip channel to `host:port` from the node `conn` is logged into (see SshPool.forward). */
function openDirect(conn: Connection, host: string, port: number): Promise<Duplex> {
  return new Promise<Duplex>((resolve, reject) => {
    try {
      conn.client.forwardOut('127.0.0.1', 0, host, port, (err, stream) => {
        if (err)
          reject(
            new SshError(
              'FORWARD_REFUSED',
              `${where(conn.target)} refused to forward a connection to ${hostPort(host, port)}: ${err.message}`,
            ),
          );
        else resolve(stream);
      });
    } catch {
      reject(new StaleConnectionError());
    }
  });
}

/** Open a direct-tcpip channel on the jump host's connection to carry the target's SSH stream. */
function forwardOut(jump: Connection, target: SshTarget): Promise<Duplex> {
  return new Promise<Duplex>((resolve, reject) => {
    try {
      jump.client.forwardOut('127.0.0.1', 0, target.host, target.port, (err, stream) => {
        if (err) {
          reject(
            new SshError(
              'UNREACHABLE',
              `Cannot open a tunnel to ${hostPort(target.host, target.port)}: ${err.message}`,
            ),
          );
        } else resolve(stream);
      });
    } catch {
      reject(new SshError('DISCONNECTED', 'The jump host connection is closed.'));
    }
  });
}
