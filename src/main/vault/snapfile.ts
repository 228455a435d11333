// Local checks of an etcd snapshot file, without etcd tools on the desktop: it must be a bbolt
// database (magic number in the first meta page) and, when written by `etcdctl snapshot save`,
// end with the sha256 of everything before it — the same integrity check `snapshot restore` does.
// Revision and key counts need etcd itself (`snapshot status`), which runs on a node.
import { createReadStream, promises as fs } from 'node:fs';
import { createHash } from 'node:crypto';

const BOLT_MAGIC = 0xed0cdaed;
const HASH_LEN = 32;
/** Page header (16 bytes) plus the bbolt meta fields up to txid and checksum. */
const META_LEN = 80;
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
 * The two hashes a snapshot check needs, fed with the file's bytes in order: the sha256 of the
 * whole file, and that of everything but the last 32 bytes (to compare with etcd's trailing hash).
 * A download feeds it as the bytes arrive, so the vault need not read a fresh file a second time.
 */
export class SnapshotHasher {
  // One sha256 pass for both values: everything but the last 32 bytes seen so far goes in; at the
  // end a copy of that state is the body's hash (etcd's trailing one covers the body), and the
  // held-back tail completes the whole file's. Two hashes over every byte cost ~1 CPU s per GB more.
  private readonly hash = createHash('sha256');
  private tail = Buffer.alloc(0);
  bytes = 0;

  update(chunk: Buffer): void {
    this.bytes += chunk.length;
    // Keep a 32-byte tail back without copying the chunk (a streamed snapshot arrives as
    // thousands of 32 KiB chunks).
    if (chunk.length >= HASH_LEN) {
      this.hash.update(this.tail);
      this.hash.update(chunk.subarray(0, chunk.length - HASH_LEN));
      this.tail = Buffer.from(chunk.subarray(chunk.length - HASH_LEN));
      return;
    }
    const buf = Buffer.concat([this.tail, chunk]);
    const keep = Math.min(HASH_LEN, buf.length);
    this.hash.update(buf.subarray(0, buf.length - keep));
    this.tail = Buffer.from(buf.subarray(buf.length - keep));
  }

  private result?: { sha256: string; bodyMatchesTail: boolean };

  /** Final values (computed once: later calls return the same; feed nothing after the first). */
  digest(): { sha256: string; bodyMatchesTail: boolean } {
    if (!this.result) {
      const body = this.hash.copy().digest();
      this.result = { sha256: this.hash.update(this.tail).digest('hex'), bodyMatchesTail: body.equals(this.tail) };
    }
    return this.result;
  }
}

/**
 * Validate a snapshot file in one streaming pass — or none, when `hashed` already saw every byte
 * of it (a download that just wrote the file). `requireIntegrity` refuses files without the
 * trailing hash (all files we save ourselves have it).
 */
export async function checkSnapshotFile(
  path: string,
  opts: { requireIntegrity?: boolean; signal?: AbortSignal; hashed?: SnapshotHasher } = {},
): Promise<SnapshotFileCheck> {
  const st = await fs.stat(path).catch(() => null);
  if (!st || !st.isFile()) throw new SnapshotInvalid(`${path} is not a file`);
  if (st.size < MIN_SIZE) throw new SnapshotInvalid(`Too small to be an etcd snapshot (${st.size} bytes)`);
  const head = Buffer.alloc(META_LEN);
  const meta1 = Buffer.alloc(META_LEN);
  const fh = await fs.open(path, 'r');
  try {
    await fh.read(head, 0, META_LEN, 0);
    // the second meta page sits one page further (page size read from the first one)
    const ps = head.readUInt32LE(24);
    if (ps >= 512 && ps <= 1 << 16) await fh.read(meta1, 0, META_LEN, ps);
  } finally {
    await fh.close();
  }
  if (head.readUInt32LE(16) !== BOLT_MAGIC)
    throw new SnapshotInvalid('Not an etcd snapshot (no bbolt database header)');
  // meta: magic u32 @16, version u32 @20, pageSize u32 @24
  const pageSize = head.readUInt32LE(24);
  if (pageSize < 512 || pageSize > 1 << 16 || (pageSize & (pageSize - 1)) !== 0)
    throw new SnapshotInvalid('Not an etcd snapshot (bad page size)');
  // A database cut short (a partial copy) keeps a valid header, so check its length too: bbolt
  // files are whole pages, and the newer of the two meta pages (higher txid @64) records how many
  // pages the database uses (pgid @56); the file must hold them all. Found by the failure tests:
  // half of a snapshot used to be accepted as an import "without integrity hash".
  const dbBytes = st.size % pageSize === HASH_LEN ? st.size - HASH_LEN : st.size;
  if (dbBytes % pageSize !== 0)
    throw new SnapshotInvalid('Truncated or not an etcd snapshot (not a whole number of database pages)');
  const newest = [head, meta1]
    .filter((m) => m.readUInt32LE(16) === BOLT_MAGIC)
    .reduce((a, b) => (b.readBigUInt64LE(64) > a.readBigUInt64LE(64) ? b : a));
  const needed = newest.readBigUInt64LE(56) * BigInt(pageSize);
  if (BigInt(dbBytes) < needed)
    throw new SnapshotInvalid(`Truncated etcd snapshot: the database needs ${needed} bytes, the file has ${dbBytes}`);

  let hasher = opts.hashed;
  if (!hasher || hasher.bytes !== st.size) {
    hasher = new SnapshotHasher();
    const stream = createReadStream(path, { highWaterMark: 1 << 20, signal: opts.signal });
    for await (const chunk of stream as AsyncIterable<Buffer>) hasher.update(chunk);
  }
  const { sha256, bodyMatchesTail } = hasher.digest();
  // bbolt files are a whole number of pages; a trailing hash makes the size ≡ 32 (mod page size).
  const hasTrailer = st.size % pageSize === HASH_LEN;
  const integrity = hasTrailer && bodyMatchesTail ? 'ok' : 'absent';
  if (hasTrailer && integrity !== 'ok')
    throw new SnapshotInvalid('Snapshot integrity hash does not match: the file is corrupt or truncated');
  if (opts.requireIntegrity && integrity !== 'ok')
    throw new SnapshotInvalid('Snapshot has no integrity hash (not written by `snapshot save`)');
  return { size: st.size, sha256, integrity };
}
