// Local checks of an etcd snapshot file, without etcd tools on the desktop: it must be a bbolt
// database (magic number in the first meta page) and, when written by `etcdctl snapshot save`,
// end with the sha256 of everything before it — the same integrity check `snapshot restore` does.
// Revision and key counts need etcd itself (`snapshot status`), which runs on a node.
import { createReadStream, promises as fs } from 'node:fs';
import { createHash } from 'node:crypto';

const BOLT_MAGIC = 0xed0cdaed;
const HASH_LEN = 32;
/** Smallest possible bbolt file: two meta pages, a freelist and a leaf (4 × 4 KiB). */
const MIN_SIZE = 4 * 4096;

export interface SnapshotFileCheck {
  size: number;
  /** sha256 of the whole file (the vault's identity for it). */
  sha256: string;
  /** Whether the trailing integrity hash is present and matches. */
  integrity: 'ok' | 'absent';
}

export class SnapshotInvalid extends Error {
  readonly code = 'SNAPSHOT_INVALID';
  constructor(message: string) {
    super(message);
    this.name = 'SnapshotInvalid';
  }
}

/**
 * Validate a snapshot file in one streaming pass. `requireIntegrity` refuses files without the
 * trailing hash (all files we save ourselves have it).
 */
export async function checkSnapshotFile(
  path: string,
  opts: { requireIntegrity?: boolean; signal?: AbortSignal } = {},
): Promise<SnapshotFileCheck> {
  const st = await fs.stat(path).catch(() => null);
  if (!st || !st.isFile()) throw new SnapshotInvalid(`${path} is not a file`);
  if (st.size < MIN_SIZE) throw new SnapshotInvalid(`Too small to be an etcd snapshot (${st.size} bytes)`);
  const head = Buffer.alloc(32);
  const fh = await fs.open(path, 'r');
  try {
    await fh.read(head, 0, 32, 0);
  } finally {
    await fh.close();
  }
  if (head.readUInt32LE(16) !== BOLT_MAGIC)
    throw new SnapshotInvalid('Not an etcd snapshot (no bbolt database header)');
  // meta: magic u32 @16, version u32 @20, pageSize u32 @24
  const pageSize = head.readUInt32LE(24);
  if (pageSize < 512 || pageSize > 1 << 16 || (pageSize & (pageSize - 1)) !== 0)
    throw new SnapshotInvalid('Not an etcd snapshot (bad page size)');

  const whole = createHash('sha256');
  const body = createHash('sha256');
  // Hash everything except the last 32 bytes into `body`, keeping a 32-byte tail back.
  let tail = Buffer.alloc(0);
  const stream = createReadStream(path, { highWaterMark: 1 << 20, signal: opts.signal });
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    whole.update(chunk);
    const buf = tail.length ? Buffer.concat([tail, chunk]) : chunk;
    const keep = Math.min(HASH_LEN, buf.length);
    body.update(buf.subarray(0, buf.length - keep));
    tail = Buffer.from(buf.subarray(buf.length - keep));
  }
  // bbolt files are a whole number of pages; a trailing hash makes the size ≡ 32 (mod page size).
  const hasTrailer = st.size % pageSize === HASH_LEN;
  const integrity = hasTrailer && body.digest().equals(tail) ? 'ok' : 'absent';
  if (hasTrailer && integrity !== 'ok')
    throw new SnapshotInvalid('Snapshot integrity hash does not match: the file is corrupt or truncated');
  if (opts.requireIntegrity && integrity !== 'ok')
    throw new SnapshotInvalid('Snapshot has no integrity hash (not written by `snapshot save`)');
  return { size: st.size, sha256: whole.digest('hex'), integrity };
}
