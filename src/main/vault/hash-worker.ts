// A snapshot's sha256 taken on a worker thread while the bytes stream in (issue 12). A streamed
// snapshot keeps the main thread busy with SSH and TLS decryption, HTTP/2 and the file writes:
// measured with test/bench/stream-cpu.ts it is the bottleneck (~100 % of a core), and the sha256
// was about an eighth of its work. Here the main thread only copies the bytes into 1 MiB batches
// and hands each batch over (transferred, not copied again); a core that is otherwise idle hashes.
//
// The same values as SnapshotHasher (./snapfile.ts), in one pass: the last 32 bytes seen are
// always held back on this side, so at the end the worker's hash state is the body's (what etcd's
// trailing sha256 covers); a copy of it gives that, and the held-back tail completes the file's.
import { Worker } from 'node:worker_threads';
import type { HashedBytes } from './snapfile';

const HASH_LEN = 32;
const BATCH = 1 << 20;
/**
 * Bytes handed over but not hashed yet: past this the stream waits (memory stays bounded: 9
 * batches). 16 MiB looked ~10 % faster on the loopback fixture (stream-cpu.ts, within its noise)
 * but took the app's peak RSS past +150 MB on a 575 MB snapshot (bench:snapshot).
 */
const MAX_PENDING = 8 << 20;

// CommonJS, node: modules only: it runs from this string (no file to ship or to bundle).
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const hash = createHash('sha256');
parentPort.on('message', (m) => {
  if (m.data) {
    hash.update(new Uint8Array(m.data, 0, m.len));
    parentPort.postMessage({ hashed: m.len, buffer: m.data }, [m.data]);
  } else if (m.tail) {
    const tail = Buffer.from(m.tail);
    const body = hash.copy().digest();
    parentPort.postMessage({ sha256: hash.update(tail).digest('hex'), bodyMatchesTail: body.equals(tail) });
  }
});
`;

export class OffThreadHasher {
  bytes = 0;
  private readonly worker: Worker;
  private stage: Buffer = Buffer.allocUnsafe(BATCH + HASH_LEN);
  private fill = 0;
  private pending = 0;
  /** Batches the thread has hashed and handed back: reused, so a stream allocates ~9 MiB once,
   * not 1 MiB per MiB (fresh ones were freed on the other thread and kept RSS ~100 MB higher). */
  private readonly free: Buffer[] = [];
  private failure: Error | null = null;
  private waiters: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
  private result: ((r: { sha256: string; bodyMatchesTail: boolean }) => void) | null = null;
  private resultFailed: ((e: Error) => void) | null = null;

  constructor() {
    // a small heap: the thread only hashes buffers it is handed
    this.worker = new Worker(WORKER_SOURCE, {
      eval: true,
      resourceLimits: { maxOldGenerationSizeMb: 16, maxYoungGenerationSizeMb: 4 },
    });
    this.worker.on(
      'message',
      (m: { hashed?: number; buffer?: ArrayBuffer; sha256?: string; bodyMatchesTail?: boolean }) => {
        if (m.hashed !== undefined) {
          this.pending -= m.hashed;
          if (m.buffer) this.free.push(Buffer.from(m.buffer));
          if (this.pending <= MAX_PENDING) for (const w of this.waiters.splice(0)) w.resolve();
        } else if (m.sha256 !== undefined) this.result?.({ sha256: m.sha256, bodyMatchesTail: !!m.bodyMatchesTail });
      },
    );
    const fail = (e: Error) => {
      this.failure ??= e;
      for (const w of this.waiters.splice(0)) w.reject(this.failure);
      this.resultFailed?.(this.failure);
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new Error(`the hashing thread ended (exit ${code})`)));
  }

  /** Take `chunk` (copied: the caller may reuse it). A promise means: wait, the hashing is behind. */
  update(chunk: Buffer): Promise<void> | undefined {
    if (this.failure) throw this.failure;
    this.bytes += chunk.length;
    for (let off = 0; off < chunk.length;) {
      const n = Math.min(chunk.length - off, this.stage.length - this.fill);
      chunk.copy(this.stage, this.fill, off, off + n);
      this.fill += n;
      off += n;
      if (this.fill === this.stage.length) this.handOver();
    }
    if (this.pending <= MAX_PENDING) return undefined;
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** Every byte given: the values, as SnapshotHasher's `digest()` gives them. Ends the thread. */
  async finish(): Promise<HashedBytes> {
    if (this.failure) throw this.failure;
    const keep = Math.min(HASH_LEN, this.fill);
    const tail = Buffer.from(this.stage.subarray(this.fill - keep, this.fill));
    this.fill -= keep;
    if (this.fill) this.post(this.fill);
    const r = await new Promise<{ sha256: string; bodyMatchesTail: boolean }>((resolve, reject) => {
      this.result = resolve;
      this.resultFailed = reject;
      this.worker.postMessage({ tail });
    });
    this.destroy();
    const bytes = this.bytes;
    return { bytes, digest: () => r };
  }

  /** Stop the thread (after a failure or cancel; finish() does it itself). */
  destroy(): void {
    this.worker.removeAllListeners('exit');
    this.worker.on('error', () => undefined);
    void this.worker.terminate();
  }

  /** A full batch: all but its last 32 bytes go (those may be the trailer); they start the next. */
  private handOver(): void {
    const send = this.fill - HASH_LEN;
    const next = this.free.pop() ?? Buffer.allocUnsafe(BATCH + HASH_LEN);
    this.stage.copy(next, 0, send, this.fill);
    this.post(send);
    this.stage = next;
    this.fill = HASH_LEN;
  }

  private post(len: number): void {
    // Buffers this large own their ArrayBuffer (never Node's shared pool): safe to transfer.
    const ab = this.stage.buffer as ArrayBuffer;
    if (this.stage.byteOffset !== 0) throw new Error('hash batch is not its own ArrayBuffer');
    this.pending += len;
    this.worker.postMessage({ data: ab, len }, [ab]);
  }
}
