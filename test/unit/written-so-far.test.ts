// Intent: a reader following a file as it is written (the snapshot status walk) waits exactly until
// the bytes it needs are written, and never waits forever: a writer that ends short or fails ends
// every wait with an error that says why.
import { describe, expect, it } from 'vitest';
import { WrittenSoFar } from '../../src/main/vault/written-so-far';

describe('WrittenSoFar', () => {
  it('resolves a wait once the writer is past it, at once if it already is', async () => {
    const w = new WrittenSoFar();
    let done = false;
    const p = w.until(100).then(() => (done = true));
    w.advance(99);
    await Promise.resolve();
    expect(done).toBe(false);
    w.advance(100);
    await p;
    expect(done).toBe(true);
    await expect(w.until(50)).resolves.toBeUndefined();
    w.advance(10); // never goes back
    await expect(w.until(100)).resolves.toBeUndefined();
  });

  it('ends waits beyond the end when the writer finishes short; a later wait fails at once', async () => {
    const w = new WrittenSoFar();
    const within = w.until(10);
    const beyond = w.until(1000);
    w.advance(500);
    w.finish();
    await expect(within).resolves.toBeUndefined();
    await expect(beyond).rejects.toThrow('Truncated snapshot: the file ends at 500 bytes, 1000 were expected');
    await expect(w.until(2000)).rejects.toThrow(/ends at 500 bytes/);
    await expect(w.until(400)).resolves.toBeUndefined();
  });

  it("fails every wait with the writer's error", async () => {
    const w = new WrittenSoFar();
    const p = w.until(10);
    w.fail(new Error('stream broke'));
    w.finish(); // the first outcome stays
    await expect(p).rejects.toThrow('stream broke');
    await expect(w.until(20)).rejects.toThrow('stream broke');
  });
});
