// `etcdutl snapshot status` on the desktop, for a snapshot file in the vault: revision, total keys,
// the CRC-32C hash etcd prints and the database size — the same numbers, computed the same way
// (etcd's snapshot Status walks every bucket in key order, hashing bucket names, keys and values).
// A snapshot streamed from etcd never sits on a node, so no node can describe it; this reads the
// bbolt file directly. Read-only, page by page: memory stays at a few pages whatever the size.
//
// Hand-written because no maintained JavaScript bbolt reader exists; the format is small and
// stable (bbolt's page.go, node.go, bucket.go): page header 16 bytes {id u64, flags u16, count u16,
// overflow u32}; branch elements {pos u32, ksize u32, pgid u64}; leaf elements {flags u32, pos u32,
// ksize u32, vsize u32}; a bucket value is {root pgid u64, sequence u64} followed, when root is 0,
// by an inline page.
import { closeSync, openSync, readSync } from 'node:fs';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import protobuf from 'protobufjs/light.js';
import { SnapshotInvalid } from './snapfile';

// mvccpb.KeyValue { bytes key = 1; … }: only the key is needed.
const KeyValue = protobuf.Root.fromJSON({
  nested: { KeyValue: { fields: { key: { type: 'bytes', id: 1 } } } },
}).lookupType('KeyValue');
/** A revision key is 8 + 1 + 8 bytes; a tombstone's has a 't' after it (mvcc/revision.go). */
const TOMBSTONE_LEN = 18;
const TOMBSTONE = 0x74;

const BRANCH = 0x01;
const LEAF = 0x02;
const BUCKET_LEAF = 0x01;
const PAGE_HEADER = 16;
const ELEM = 16;
const MAGIC = 0xed0cdaed;

export interface BoltStatus {
  /** CRC-32C over bucket names, keys and values in order (etcd's `hash`). */
  hash: number;
  /** Main revision of the last key in the `key` bucket. */
  revision: number;
  /** Entries in every bucket: what etcd ≤ 3.5's `snapshot status` prints as totalKey. */
  totalKey: number;
  /**
   * Keys alive at the snapshot's revision (user keys in the `key` bucket, a tombstone removing its
   * key): what etcdutl 3.6's `snapshot status` prints as totalKey.
   */
  liveKeys: number;
  /** Pages in use × page size (bbolt's tx.Size()). */
  totalSize: number;
}

// ---- CRC-32C (Castagnoli) ----------------------------------------------------------------------
// @node-rs/crc32 (hardware CRC instructions, N-API so Electron loads it as is): ~30 ms per 64 MB
// where the slicing-by-8 fallback below takes ~200 ms — on a 300 MB snapshot stream that was the
// largest CPU cost on the app's one thread. The fallback serves a platform without its prebuilt.
const nativeCrc32c = (() => {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return (require('@node-rs/crc32') as { crc32c(input: Buffer, initial?: number): number }).crc32c;
  } catch {
    return null;
  }
})();

const CRC_TABLES = (() => {
  const t = Array.from({ length: 8 }, () => new Int32Array(256));
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[0][i] = c;
  }
  for (let i = 0; i < 256; i++) for (let s = 1; s < 8; s++) t[s][i] = (t[s - 1][i] >>> 8) ^ t[0][t[s - 1][i] & 0xff];
  return t;
})();

/** Running CRC-32C; `crc` is the value so far (0 to start), as Go's crc32.Update keeps it. */
export function crc32c(crc: number, buf: Uint8Array): number {
  if (nativeCrc32c)
    return (
      nativeCrc32c(Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength), crc) >>> 0
    );
  return crc32cJs(crc, buf);
}

/** crc32c without the native module (and the reference the tests hold it to). */
export function crc32cJs(crc: number, buf: Uint8Array): number {
  const [t0, t1, t2, t3, t4, t5, t6, t7] = CRC_TABLES;
  let c = ~crc;
  let i = 0;
  const n = buf.length;
  for (; i + 8 <= n; i += 8) {
    c ^= buf[i] | (buf[i + 1] << 8) | (buf[i + 2] << 16) | (buf[i + 3] << 24);
    c =
      t7[c & 0xff] ^
      t6[(c >>> 8) & 0xff] ^
      t5[(c >>> 16) & 0xff] ^
      t4[c >>> 24] ^
      t3[buf[i + 4]] ^
      t2[buf[i + 5]] ^
      t1[buf[i + 6]] ^
      t0[buf[i + 7]];
  }
  for (; i < n; i++) c = t0[(c ^ buf[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

// ---- FNV-1a 64 (bbolt's meta checksum) --------------------------------------------------------
function fnv64a(buf: Uint8Array): bigint {
  let h = 0xcbf29ce484222325n;
  for (const b of buf) h = BigInt.asUintN(64, (h ^ BigInt(b)) * 0x100000001b3n);
  return h;
}

interface Meta {
  pageSize: number;
  root: bigint;
  pgid: bigint;
  txid: bigint;
}

function readMeta(page: Buffer): Meta | null {
  const m = page.subarray(PAGE_HEADER);
  if (m.length < 64 || m.readUInt32LE(0) !== MAGIC || m.readUInt32LE(4) !== 2) return null;
  if (fnv64a(m.subarray(0, 56)) !== m.readBigUInt64LE(56)) return null;
  return {
    pageSize: m.readUInt32LE(8),
    root: m.readBigUInt64LE(16),
    pgid: m.readBigUInt64LE(40),
    txid: m.readBigUInt64LE(48),
  };
}

/**
 * Whole pages (a page and its overflow) by positional reads. Synchronous on purpose: a page read
 * from the page cache costs a few µs, an async one ten times more (a 500 MB database has ~120k
 * pages); the walk yields to the event loop every few ms instead. When the file is still being
 * written (`written`), a page is read only once the writer is past it.
 */
class PageReader {
  private readonly head = Buffer.alloc(PAGE_HEADER);
  private ready = 0;
  constructor(
    private readonly fd: number,
    private readonly pageSize: number,
    private readonly pages: bigint,
    private readonly written?: (end: number) => Promise<void>,
  ) {}

  /** Wait (following a writer) until the file's first `end` bytes are there. */
  private async need(end: number): Promise<void> {
    if (!this.written || end <= this.ready) return;
    // Ask for a MiB more than needed (within the database): one wake-up per MiB, not per page.
    const goal = Math.min(Math.max(end, this.ready + FOLLOW_STEP), Number(this.pages) * this.pageSize);
    await this.written(Math.max(goal, end));
    this.ready = Math.max(goal, end);
  }

  async page(id: bigint): Promise<Buffer> {
    if (id < 2n || id >= this.pages) throw new SnapshotInvalid(`Corrupt snapshot: page ${id} out of range`);
    const pos = Number(id) * this.pageSize;
    await this.need(pos + this.pageSize);
    readSync(this.fd, this.head, 0, PAGE_HEADER, pos);
    const overflow = this.head.readUInt32LE(12);
    if (BigInt(overflow) >= this.pages) throw new SnapshotInvalid(`Corrupt snapshot: page ${id} overflows the file`);
    const buf = Buffer.allocUnsafe((overflow + 1) * this.pageSize);
    await this.need(pos + buf.length);
    const bytesRead = readSync(this.fd, buf, 0, buf.length, pos);
    if (bytesRead !== buf.length) throw new SnapshotInvalid(`Truncated snapshot: page ${id} is cut short`);
    return buf;
  }
}

/** How far ahead of the page it needs a following walk waits for the writer. */
const FOLLOW_STEP = 1 << 20;

type Visit = (key: Buffer, value: Buffer | null, flags: number) => void;

/** In-order walk of one B+tree whose root is a page id, or an inline page (a bucket value). */
async function walk(r: PageReader, root: bigint | Buffer, visit: Visit, tick: () => Promise<void>): Promise<void> {
  const p = typeof root === 'bigint' ? await r.page(root) : root;
  const flags = p.readUInt16LE(8);
  const count = p.readUInt16LE(10);
  if (flags & BRANCH) {
    for (let i = 0; i < count; i++) {
      const e = PAGE_HEADER + i * ELEM;
      await walk(r, p.readBigUInt64LE(e + 8), visit, tick);
    }
  } else if (flags & LEAF) {
    for (let i = 0; i < count; i++) {
      const e = PAGE_HEADER + i * ELEM;
      const f = p.readUInt32LE(e);
      const k = e + p.readUInt32LE(e + 4);
      const ksize = p.readUInt32LE(e + 8);
      const vsize = p.readUInt32LE(e + 12);
      if (k + ksize + vsize > p.length) throw new SnapshotInvalid('Corrupt snapshot: a leaf element overruns its page');
      visit(p.subarray(k, k + ksize), p.subarray(k + ksize, k + ksize + vsize), f);
    }
    await tick();
  } else throw new SnapshotInvalid(`Corrupt snapshot: page flags ${flags} where a tree page was expected`);
}

export interface BoltStatusOptions {
  signal?: AbortSignal;
  /**
   * For a file still being written (a snapshot streaming in): resolves once the file's first `end`
   * bytes are written, rejects if they never will be. The walk follows the writer, so the status
   * is there as soon as the last byte is, rather than after one more pass over the whole file
   * (~0.2 s per 600 MB). The file must exist by the time the first call resolves.
   */
  written?: (end: number) => Promise<void>;
}

/** Status of a bbolt snapshot file, as `etcdutl snapshot status` prints it (hash, revision, keys, size). */
export async function boltStatus(path: string, opts: BoltStatusOptions = {}): Promise<BoltStatus> {
  const { signal, written } = opts;
  // the two meta pages (4 KiB pages; a larger page size is read below, once known)
  if (written) await written(2 * 4096);
  const fd = openSync(path, 'r');
  try {
    const first = Buffer.alloc(4096);
    readSync(fd, first, 0, first.length, 0);
    const m0 = readMeta(first);
    const pageSize = m0?.pageSize ?? first.readUInt32LE(PAGE_HEADER + 8);
    if (!(pageSize >= 512 && pageSize <= 1 << 16)) throw new SnapshotInvalid('Not an etcd snapshot (bad page size)');
    if (written) await written(2 * pageSize);
    const second = Buffer.alloc(pageSize);
    readSync(fd, second, 0, pageSize, pageSize);
    const m1 = readMeta(second);
    const metas = [m0, m1].filter((m): m is Meta => !!m);
    if (!metas.length) throw new SnapshotInvalid('Not an etcd snapshot (no valid bbolt meta page)');
    const meta = metas.reduce((a, b) => (b.txid > a.txid ? b : a));
    const r = new PageReader(fd, pageSize, meta.pgid, written);
    let crc = 0;
    let revision = 0;
    let totalKey = 0;
    let last = Date.now();
    // Yield now and then so reading and hashing never hold the event loop long (following a
    // stream, more often: the stream's own work waits meanwhile).
    const slice = written ? 4 : 20;
    const tick = async () => {
      if (signal?.aborted) throw signal.reason ?? new Error('cancelled');
      if (Date.now() - last > slice) {
        await yieldToLoop();
        last = Date.now();
      }
    };
    const buckets: Array<{ name: Buffer; value: Buffer }> = [];
    const live = new Set<string>();
    await walk(
      r,
      meta.root,
      (k, v, f) => {
        // etcd's status fails on a top-level key that is not a bucket
        if (!(f & BUCKET_LEAF) || !v) throw new SnapshotInvalid(`Corrupt snapshot: ${k.toString()} is not a bucket`);
        buckets.push({ name: Buffer.from(k), value: Buffer.from(v) });
      },
      tick,
    );
    for (const b of buckets) {
      crc = crc32c(crc, b.name);
      const isKey = b.name.toString() === 'key';
      const root = b.value.readBigUInt64LE(0);
      const visit: Visit = (k, v, f) => {
        crc = crc32c(crc, k);
        // a nested bucket's value is nil in ForEach
        if (!(f & BUCKET_LEAF) && v) crc = crc32c(crc, v);
        if (isKey && k.length >= 8) {
          revision = Number(k.readBigUInt64BE(0));
          if (v) {
            const key = Buffer.from((KeyValue.decode(v) as unknown as { key: Uint8Array }).key).toString('latin1');
            if (k.length === TOMBSTONE_LEN && k[17] === TOMBSTONE) live.delete(key);
            else live.add(key);
          }
        }
        totalKey++;
      };
      await walk(r, root === 0n ? b.value.subarray(16) : root, visit, tick);
    }
    return { hash: crc, revision, totalKey, liveKeys: live.size, totalSize: Number(meta.pgid) * pageSize };
  } finally {
    closeSync(fd);
  }
}
