// The snapshot hash taken on a worker thread (vault/hash-worker.ts) must give exactly what the
// in-thread SnapshotHasher gives — the file's sha256 and whether the body matches etcd's trailing
// sha256 — however the bytes arrive, around every batch border, and hold a fast stream back.
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { OffThreadHasher } from '../../src/main/vault/hash-worker';
import { SnapshotHasher } from '../../src/main/vault/snapfile';

const MiB = 1 << 20;
/** A body and etcd's trailer: sha256(body) appended. */
const withTrailer = (body: Buffer) => Buffer.concat([body, createHash('sha256').update(body).digest()]);

async function both(bytes: Buffer, sizes: number[]) {
  const off = new OffThreadHasher();
  const here = new SnapshotHasher();
  for (let at = 0, i = 0; at < bytes.length; i++) {
    const c = bytes.subarray(at, at + sizes[i % sizes.length]);
    here.update(c);
    const wait = off.update(c);
    if (wait) await wait;
    at += c.length;
  }
  const got = await off.finish();
  expect(got.bytes).toBe(bytes.length);
  return { off: got.digest(), here: here.digest() };
}

describe('hashing on a worker thread', () => {
  it.each([
    ['empty', 0],
    ['shorter than the trailer', 20],
    ['exactly the trailer', 32],
    ['one batch less a byte', MiB + 31],
    ['one batch', MiB + 32],
    ['one batch and a byte', MiB + 33],
    ['several batches', 3 * MiB + 4099],
  ])('%s (%i bytes): same sha256 and verdict as in-thread, in any chunking', async (_name, n) => {
    const valid = n >= 32 ? withTrailer(randomBytes(n - 32)) : randomBytes(n);
    for (const sizes of [[32768], [7, 131072, 31, 4096, 1], [MiB], [n || 1]]) {
      const r = await both(valid, sizes);
      expect(r.off).toEqual(r.here);
      expect(r.off.sha256).toBe(createHash('sha256').update(valid).digest('hex'));
      expect(r.off.bodyMatchesTail).toBe(n >= 32);
    }
  });

  it('notices a body that does not match its trailer', async () => {
    const bad = withTrailer(randomBytes(2 * MiB));
    bad[MiB + 5] ^= 1;
    const r = await both(bad, [32768]);
    expect(r.off).toEqual(r.here);
    expect(r.off.bodyMatchesTail).toBe(false);
  });

  it('holds a producer back once 16 MiB wait to be hashed, and lets it go on', async () => {
    const off = new OffThreadHasher();
    const chunk = randomBytes(MiB);
    let waits = 0;
    for (let i = 0; i < 64; i++) {
      const w = off.update(chunk);
      if (w) {
        waits++;
        await w;
      }
    }
    expect(waits).toBeGreaterThan(0);
    expect((await off.finish()).bytes).toBe(64 * MiB);
  });

  it('can be stopped halfway (a cancelled stream) without an error or a thread left behind', async () => {
    const off = new OffThreadHasher();
    off.update(randomBytes(3 * MiB));
    off.destroy();
    await new Promise((r) => setTimeout(r, 50));
  });
});
