// One command on an exec channel of a pooled connection: streamed output, exit status, stdin,
// cancellation and a deadline. Output is kept as Buffers and decoded once at the end, so a
// multi-byte character split across chunks is never mangled. Output is bounded: past
// `maxOutputBytes` (stdout + stderr) the remote command is killed and the call fails with
// OUTPUT_TOO_LARGE — big payloads travel as files (SFTP, or the upload channel of ./upload.ts), never as command output.
import { StringDecoder } from 'node:string_decoder';
import type { ClientChannel } from 'ssh2';
import { ChannelRefusedError, StaleConnectionError, type Connection } from './connection';
import { SshError, type ExecOptions, type ExecResult } from './types';

/**
 * OpenSSH ignores "signal" requests on root logins ("session signalling requires privilege
 * separation"), so there a cancelled non-PTY command would run on until it next touched its closed
 * pipes — an etcdctl or a restore left running after the user pressed Cancel. sshd makes every
 * exec session's shell a session (and process-group) leader, so on root logins the command first
 * reports its `$$` on stderr behind this marker (stripped before anyone sees it) and a cancel
 * kills that process group over a second channel.
 */
const PGID_MARK = 'KES_PGID=';

/** Default cap on the output (stdout + stderr) one command may produce. */
export const DEFAULT_MAX_OUTPUT_BYTES = 64 * 1024 * 1024;
/** Default cap on one logged line; the rest of a longer line is counted, not kept. */
export const DEFAULT_MAX_LINE_BYTES = 16 * 1024;

/** "64 MiB", "512 KiB", "100 bytes". */
export function formatBytes(n: number): string {
  if (n >= 1024 * 1024) return `${+(n / (1024 * 1024)).toFixed(1)} MiB`;
  if (n >= 1024) return `${+(n / 1024).toFixed(1)} KiB`;
  return `${n} bytes`;
}

export function runExec(
  conn: Connection,
  command: string,
  opts: ExecOptions = {},
  rootLogin = false,
): Promise<ExecResult> {
  if (rootLogin) command = `printf '${PGID_MARK}%s\\n' "$$" >&2; ${command}`;
  return new Promise<ExecResult>((resolve, reject) => {
    const started = Date.now();
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let code: number | null = null;
    let exitSignal: string | undefined;
    let sawExit = false;
    let channel: ClientChannel | undefined;
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    let pgid: number | undefined;
    let markerPending = rootLogin;
    let markerBuf = Buffer.alloc(0);
    const cleanup = () => {
      settled = true;
      if (timer) clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      unDrop();
    };
    const fail = (e: Error) => {
      if (settled) return;
      cleanup();
      reject(e);
    };
    const succeed = () => {
      if (settled) return;
      cleanup();
      const result: ExecResult = {
        code,
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: Buffer.concat(stderr).toString('utf8'),
        durationMs: Date.now() - started,
      };
      if (exitSignal) result.signal = exitSignal;
      resolve(result);
    };
    // Stop a remote command: a "signal" request makes OpenSSH (≥ 7.9) killpg the session's
    // process group; then we close the channel. Closing alone would leave a non-PTY command
    // running on the server until it next writes to its closed pipes. Root logins: see PGID_MARK.
    const kill = () => {
      if (!channel) return;
      sendSignal(channel, 'TERM');
      if (pgid) killGroup(conn, pgid);
      channel.close();
    };
    const maxOutput = opts.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
    let outputBytes = 0;
    /** Count a chunk against the cap; past it, stop the command and fail (false: drop the chunk). */
    const withinCap = (d: Buffer): boolean => {
      if (settled) return false;
      outputBytes += d.length;
      if (outputBytes <= maxOutput) return true;
      stdout.length = stderr.length = 0; // nothing will read it: let it go now
      kill();
      fail(
        new SshError(
          'OUTPUT_TOO_LARGE',
          `The command wrote more than ${formatBytes(maxOutput)} of output and was stopped ` +
            '(large data must be transferred as a file, not printed)',
        ),
      );
      return false;
    };
    const onStderrChunk = (d: Buffer) => {
      if (markerPending) {
        // The marker line comes first on stderr; it may arrive split across chunks.
        markerBuf = Buffer.concat([markerBuf, d]);
        const nl = markerBuf.indexOf(0x0a);
        if (nl < 0 && markerBuf.length < 64) return;
        markerPending = false;
        const line = markerBuf.subarray(0, nl < 0 ? 0 : nl).toString('latin1');
        if (line.startsWith(PGID_MARK)) {
          pgid = Number(line.slice(PGID_MARK.length)) || undefined;
          d = markerBuf.subarray(nl + 1);
        } else d = markerBuf;
        if (!d.length) return;
      }
      if (!withinCap(d)) return;
      stderr.push(d);
      opts.onStderr?.(d);
    };
    const onAbort = () => {
      kill();
      fail(new SshError('CANCELLED', 'Command cancelled'));
    };
    const unDrop = conn.onDrop((e) => fail(e));

    if (opts.signal?.aborted) return fail(new SshError('CANCELLED', 'Command cancelled'));
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    if (opts.timeoutMs) {
      timer = setTimeout(() => {
        kill();
        fail(new SshError('TIMEOUT', `Command did not finish within ${opts.timeoutMs} ms`));
      }, opts.timeoutMs);
    }

    try {
      conn.client.exec(command, (err, ch) => {
        if (err) return fail(new ChannelRefusedError(`Cannot run a command: ${err.message}`));
        channel = ch;
        if (settled) return void ch.close();
        ch.on('data', (d: Buffer) => {
          if (!withinCap(d)) return;
          stdout.push(d);
          opts.onStdout?.(d);
        });
        ch.stderr.on('data', onStderrChunk);
        ch.on('exit', (c: number | null, sig?: string) => {
          sawExit = true;
          if (typeof c === 'number') code = c;
          else if (sig) exitSignal = sig;
        });
        ch.on('close', () => {
          if (markerPending && markerBuf.length) stderr.push(markerBuf); // never lose real stderr
          // When the connection dies, ssh2 closes channels right after the client's 'close';
          // wait one turn so the drop (→ DISCONNECTED) wins over "closed without a status".
          if (sawExit) return succeed();
          setImmediate(() =>
            conn.alive ? succeed() : fail(new SshError('DISCONNECTED', 'Connection lost while the command ran')),
          );
        });
        if (opts.stdin !== undefined) ch.end(opts.stdin);
        else ch.end();
      });
    } catch {
      // ssh2 throws synchronously when the socket is already gone: nothing ran, retry is safe.
      fail(new StaleConnectionError());
    }
  });
}

/** Best effort, fire and forget: TERM the process group of a cancelled command (root logins). */
function killGroup(conn: Connection, pgid: number): void {
  if (!Number.isInteger(pgid) || pgid <= 1) return;
  try {
    conn.client.exec(`kill -TERM -- -${pgid} 2>/dev/null; true`, (err, ch) => {
      if (err) return;
      ch.on('close', () => undefined);
      ch.on('data', () => undefined);
      ch.end();
    });
  } catch {
    /* connection gone: nothing left to kill from here */
  }
}

/**
 * ssh2's `channel.signal()` sends nothing once our side of the channel has ended — and we end it
 * right away (EOF on stdin) so commands that read stdin finish. The protocol layer has no such
 * check, so go there directly; if ssh2's internals ever change, we fall back to the public call.
 */
function sendSignal(ch: ClientChannel, name: string): void {
  const internal = ch as unknown as {
    outgoing?: { id?: number; state?: string };
    _client?: { _protocol?: { signal?: (id: number, sig: string) => void } };
  };
  try {
    const proto = internal._client?._protocol;
    const id = internal.outgoing?.id;
    const state = internal.outgoing?.state;
    if (proto?.signal && typeof id === 'number' && (state === 'open' || state === 'eof')) proto.signal(id, name);
    else ch.signal(name);
  } catch {
    /* channel already gone: closing it is all that is left */
  }
}

/**
 * Splits a byte stream into lines as it arrives: each chunk is scanned once (no re-scan of what
 * came before), a line longer than `maxLineBytes` keeps its head and says how much was cut, and a
 * multi-byte character split across chunks is decoded whole. `end()` flushes a last line that
 * has no newline.
 */
export class LineSplitter {
  private parts: Buffer[] = [];
  private kept = 0;
  private dropped = 0;

  constructor(
    private readonly emit: (line: string) => void,
    private readonly maxLineBytes = DEFAULT_MAX_LINE_BYTES,
  ) {}

  write(chunk: Buffer): void {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl < 0) return this.keep(chunk, start, chunk.length);
      this.keep(chunk, start, nl);
      this.flushLine();
      start = nl + 1;
    }
  }

  end(): void {
    if (this.kept || this.dropped) this.flushLine();
  }

  private keep(chunk: Buffer, from: number, to: number): void {
    const room = this.maxLineBytes - this.kept;
    const take = Math.max(0, Math.min(room, to - from));
    // Copy what is kept: the chunk may be a view of a larger buffer we must not hold on to.
    if (take) this.parts.push(Buffer.from(chunk.subarray(from, from + take)));
    this.kept += take;
    this.dropped += to - from - take;
  }

  private flushLine(): void {
    const buf = this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts, this.kept);
    let text: string;
    if (this.dropped) {
      // Cut on a character boundary: the decoder holds back an incomplete last character.
      const cut = new StringDecoder('utf8').write(buf);
      text = `${cut}… [line truncated: ${this.dropped + (buf.length - Buffer.byteLength(cut))} more bytes]`;
    } else text = buf.toString('utf8');
    this.parts = [];
    this.kept = 0;
    this.dropped = 0;
    this.emit(text);
  }
}
