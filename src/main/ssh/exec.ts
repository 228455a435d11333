// One command on an exec channel of a pooled connection: streamed output, exit status, stdin,
// cancellation and a deadline. Output is kept as Buffers and decoded once at the end, so a
// multi-byte character split across chunks is never mangled.
import type { ClientChannel } from 'ssh2';
import { ChannelRefusedError, StaleConnectionError, type Connection } from './connection';
import { SshError, type ExecOptions, type ExecResult } from './types';

export function runExec(conn: Connection, command: string, opts: ExecOptions = {}): Promise<ExecResult> {
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
    // running on the server until it next writes to its closed pipes. Caveat: OpenSSH ignores
    // signal requests on root logins (no privilege-separated child: "session signalling requires
    // privilege separation"), so there the command runs on until it touches its pipes.
    const kill = () => {
      if (!channel) return;
      sendSignal(channel, 'TERM');
      channel.close();
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
          stdout.push(d);
          opts.onStdout?.(d);
        });
        ch.stderr.on('data', (d: Buffer) => {
          stderr.push(d);
          opts.onStderr?.(d);
        });
        ch.on('exit', (c: number | null, sig?: string) => {
          sawExit = true;
          if (typeof c === 'number') code = c;
          else if (sig) exitSignal = sig;
        });
        ch.on('close', () => {
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
