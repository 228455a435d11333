// File transfers over the connection's shared SFTP session, hashing the bytes as they stream so
// the caller gets a sha256 without reading the file twice. Both directions write `<name>.part`
// and rename at the end, so a failed or cancelled transfer never leaves a file under the final
// name (etcd's verify-before-change rule, DESIGN.md §3).
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { SFTPWrapper, Stats } from 'ssh2';
import type { ProgressFn, TransferResult } from './types';

/** Counts and hashes what flows through; reports progress at most every ~64 KiB chunk. */
function meter(total: number, onProgress?: ProgressFn) {
  const hash = createHash('sha256');
  let bytes = 0;
  const stream = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      bytes += chunk.length;
      onProgress?.(bytes, total);
      cb(null, chunk);
    },
  });
  return { stream, result: (): TransferResult => ({ bytes, sha256: hash.digest('hex') }) };
}

export async function uploadFile(
  sftp: SFTPWrapper,
  localPath: string,
  remotePath: string,
  opts: { onProgress?: ProgressFn; signal: AbortSignal; mode?: number },
): Promise<TransferResult> {
  const total = (await fs.stat(localPath)).size;
  const part = `${remotePath}.part`;
  const m = meter(total, opts.onProgress);
  const mode = opts.mode ?? 0o644;
  try {
    await pipeline(createReadStream(localPath), m.stream, sftp.createWriteStream(part, { mode }), {
      signal: opts.signal,
    });
    // The server's umask applies at open; set the exact mode before the file gets its real name.
    await call<void>((cb) => sftp.chmod(part, mode, cb));
    await renameOver(sftp, part, remotePath);
  } catch (e) {
    await call<void>((cb) => sftp.unlink(part, cb)).catch(() => undefined);
    throw e;
  }
  return m.result();
}

export async function downloadFile(
  sftp: SFTPWrapper,
  remotePath: string,
  localPath: string,
  opts: { onProgress?: ProgressFn; signal: AbortSignal },
): Promise<TransferResult> {
  const st = await call<Stats>((cb) => sftp.stat(remotePath, cb));
  const part = `${localPath}.part`;
  const m = meter(st.size, opts.onProgress);
  try {
    await pipeline(sftp.createReadStream(remotePath), m.stream, createWriteStream(part, { mode: 0o600 }), {
      signal: opts.signal,
    });
    // Durable before it gets its final name: a crash must not leave a truncated file there.
    const fh = await fs.open(part, 'r+');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.rename(part, localPath);
  } catch (e) {
    await fs.rm(part, { force: true });
    throw e;
  }
  return m.result();
}

/** SFTPv3 rename fails when the target exists; OpenSSH's posix-rename replaces atomically. */
async function renameOver(sftp: SFTPWrapper, from: string, to: string): Promise<void> {
  try {
    await call<void>((cb) => sftp.ext_openssh_rename(from, to, cb));
    return;
  } catch (e) {
    if (!/support/i.test((e as Error).message)) throw e;
  }
  await call<void>((cb) => sftp.unlink(to, cb)).catch(() => undefined);
  await call<void>((cb) => sftp.rename(from, to, cb));
}

function call<T>(fn: (cb: (err: Error | null | undefined, v?: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    try {
      fn((err, v) => (err ? reject(err) : resolve(v as T)));
    } catch (e) {
      reject(e as Error);
    }
  });
}
