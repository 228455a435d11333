// Uploading a file by streaming it into `cat` on an exec channel, not over SFTP (issue 12: the
// restore upload's CPU on the user's laptop). ssh2's SFTP copies every byte twice in JavaScript
// (into an SFTP write request, then into SSH packets) and each 128 KiB request is a fresh
// allocation V8 answers with full GCs; a channel write is sliced straight into packets. Measured
// on the loopback sshd (test/bench/upload-cpu.ts): SFTP 4.4–6.5 CPU s/GB, this 2.4–2.6, scp 2.9.
//
// Same promises as the SFTP way: the bytes go to `<name>.part`, created 0600 (umask 077) and
// given its mode before it is renamed over the final name, so a failed, cancelled or cut-short
// upload never leaves a file under the final name. The node renames only when exactly `size`
// bytes arrived: a channel closed early (cancel, dropped link) ends `cat` at EOF like a finished
// upload would, and only the count tells them apart.
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import type { ClientChannel } from 'ssh2';
import { shJoin } from '../remote/quote';
import { ChannelRefusedError, StaleConnectionError, type Connection } from './connection';
import { SshError, type ProgressFn, type TransferResult } from './types';

/**
 * The node's side, a fixed program (no user string in it): the paths, mode and size arrive as
 * positional arguments through the one quoting path. A leftover `.part` (a crash) is removed
 * first so the new one is created with umask 077, never with an old, wider mode.
 */
const RECEIVE = [
  'part=$1; final=$2; mode=$3; size=$4',
  'rm -f -- "$part" || exit 1',
  '(umask 077 && exec cat > "$part") || { rm -f -- "$part"; exit 1; }',
  'got=$(wc -c < "$part")',
  'if [ "$got" -ne "$size" ]; then rm -f -- "$part"; echo "upload cut short: $got of $size bytes arrived" >&2; exit 3; fi',
  'chmod "$mode" "$part" && mv -f -- "$part" "$final" || { rm -f -- "$part"; exit 1; }',
].join('; '); // one line: it is shown in the job log

/** The command that receives an upload (exported for the quoting tests and the job log). */
export function receiveCommand(remotePath: string, mode: number, size: number): string {
  return shJoin(['sh', '-c', RECEIVE, 'kes-upload', `${remotePath}.part`, remotePath, mode.toString(8), size]);
}

/** Bytes per channel write; a few buffers cycle, each reused once ssh2 has taken its bytes. */
const CHUNK = 256 * 1024;
const BUFFERS = 4;

function cancelled(signal: AbortSignal): Error {
  const r: unknown = signal.reason;
  return r instanceof Error ? r : new SshError('CANCELLED', 'Transfer cancelled');
}

export async function uploadViaExec(
  conn: Connection,
  localPath: string,
  remotePath: string,
  opts: {
    onProgress?: ProgressFn;
    signal: AbortSignal;
    mode?: number;
    hash?: boolean;
    /** Told the node's command line (with where its stdin comes from), for the job log. */
    onCommand?: (line: string) => void;
  },
): Promise<TransferResult> {
  const local = await fs.open(localPath, 'r');
  try {
    const total = (await local.stat()).size;
    const hash = opts.hash === false ? null : createHash('sha256');
    const release = await conn.session({ signal: opts.signal });
    let ch: ClientChannel | undefined;
    // Settles when the node's side exits (its status and stderr), or rejects on a cancel/drop.
    let stop: (e: Error) => void = () => undefined;
    const stopped = new Promise<never>((_, rej) => (stop = rej));
    stopped.catch(() => undefined);
    const onAbort = () => {
      ch?.close();
      stop(cancelled(opts.signal));
    };
    opts.signal.addEventListener('abort', onAbort, { once: true });
    try {
      if (opts.signal.aborted) throw cancelled(opts.signal);
      const command = receiveCommand(remotePath, opts.mode ?? 0o644, total);
      opts.onCommand?.(`${command}  # < ${localPath}`);
      ch = await new Promise<ClientChannel>((res, rej) => {
        try {
          conn.client.exec(command, (err, c) =>
            err ? rej(new ChannelRefusedError(`Cannot start the upload: ${err.message}`)) : res(c),
          );
        } catch {
          rej(new StaleConnectionError());
        }
      });
      if (opts.signal.aborted) {
        ch.close();
        throw cancelled(opts.signal);
      }
      const channel = ch;
      const stderr: Buffer[] = [];
      channel.resume(); // nothing on stdout; read it so the channel can close
      channel.stderr.on('data', (d: Buffer) => stderr.length < 64 && stderr.push(d));
      let ending = false;
      const failure = (st: { code: number | null; signal?: string }) => {
        const why = Buffer.concat(stderr).toString('utf8').trim().split('\n').slice(-1)[0];
        const how =
          st.code === null ? `ended without a status${st.signal ? ` (${st.signal})` : ''}` : `exited with ${st.code}`;
        return new Error(`receiving ${remotePath} on the node ${how}${why ? `: ${why}` : ''}`);
      };
      const exited = new Promise<{ code: number | null; signal?: string }>((res) => {
        let status: { code: number | null; signal?: string } = { code: null };
        channel.on('exit', (code: number | null, signal?: string) => (status = { code, signal }));
        channel.on('close', () => {
          // closed before we sent everything (the node's side failed early): ssh2 would never
          // call back the writes still waiting for window, so stop here
          if (!ending) stop(failure(status));
          res(status);
        });
      });
      channel.on('error', (e: Error) => stop(e));
      // Buffers wait for their write's callback (ssh2 keeps a reference while the window is
      // short) before they are filled again; the oldest write also paces the reads.
      const pending: Array<Promise<void>> = [];
      const buffers = Array.from({ length: Math.min(BUFFERS, Math.ceil(total / CHUNK) || 1) }, () =>
        Buffer.allocUnsafe(CHUNK),
      );
      let sent = 0;
      for (let pos = 0, i = 0; pos < total; i++) {
        const slot = i % buffers.length;
        const prev = pending[slot] as Promise<void> | undefined;
        if (prev) await Promise.race([prev, stopped]);
        const buf = buffers[slot];
        const len = Math.min(CHUNK, total - pos);
        const { bytesRead } = await local.read(buf, 0, len, pos);
        if (bytesRead !== len) throw new Error(`${localPath} changed while it was being uploaded`);
        hash?.update(buf.subarray(0, len));
        pos += len;
        pending[slot] = new Promise<void>((res, rej) =>
          channel.write(buf.subarray(0, len), (e) => {
            if (e) return rej(e);
            sent += len;
            opts.onProgress?.(sent, total);
            res();
          }),
        );
        pending[slot].catch(() => undefined);
      }
      await Promise.race([Promise.all(pending), stopped]);
      ending = true;
      channel.end();
      const status = await Promise.race([exited, stopped]);
      if (status.code !== 0) throw failure(status);
      return { bytes: total, sha256: hash?.digest('hex') ?? '' };
    } finally {
      opts.signal.removeEventListener('abort', onAbort);
      ch?.close();
      release();
    }
  } finally {
    await local.close();
  }
}
