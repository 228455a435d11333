// Intent: only complete, valid etcd snapshots ever appear in the vault; corrupt or truncated files
// are refused before anything else can use them; user text is stored as data, never as a path.
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkSnapshotFile, SnapshotHasher } from '../../src/main/vault/snapfile';
import { SnapshotVault, type NewSnapshotMeta } from '../../src/main/vault/snapshots';
import { startLocalEtcd, type LocalEtcd } from './support/local-etcd';

let etcd: LocalEtcd;
let dir: string;
let snap: string;

beforeAll(async () => {
  etcd = await startLocalEtcd();
  dir = await fs.mkdtemp(join(tmpdir(), 'kes-vault-'));
  for (let i = 0; i < 50; i++) await etcd.etcdctl('put', `/registry/pods/default/p${i}`, `v${i}`);
  snap = join(dir, 'snap.db');
  await etcd.etcdctl('snapshot', 'save', snap);
});
afterAll(async () => {
  await etcd?.stop();
  await fs.rm(dir, { recursive: true, force: true });
});

const meta = (note = ''): NewSnapshotMeta => ({
  note,
  revision: 51,
  hash: 1,
  totalKeys: 50,
  etcdVersion: '3.4',
  source: {
    kind: 'cluster',
    clusterId: 'c1',
    clusterName: 'lab',
    mode: 'embedded-up',
    node: 'm1',
    originalName: null,
    etcd: 'embedded',
  },
});

describe('snapshot file checks', () => {
  it('accepts a real `etcdctl snapshot save` file with its integrity hash', async () => {
    const c = await checkSnapshotFile(snap, { requireIntegrity: true });
    expect(c.integrity).toBe('ok');
    expect(c.sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it('refuses a flipped byte, a truncated file and a non-snapshot', async () => {
    const bytes = await fs.readFile(snap);
    const flipped = Buffer.from(bytes);
    flipped[Math.floor(flipped.length / 2)] ^= 0xff;
    await fs.writeFile(join(dir, 'flipped.db'), flipped);
    await expect(checkSnapshotFile(join(dir, 'flipped.db'))).rejects.toMatchObject({ code: 'SNAPSHOT_INVALID' });
    await fs.writeFile(join(dir, 'short.db'), bytes.subarray(0, bytes.length - 4096));
    await expect(checkSnapshotFile(join(dir, 'short.db'), { requireIntegrity: true })).rejects.toMatchObject({
      code: 'SNAPSHOT_INVALID',
    });
    await fs.writeFile(join(dir, 'random.db'), Buffer.alloc(64 * 1024, 7));
    await expect(checkSnapshotFile(join(dir, 'random.db'))).rejects.toThrow(/Not an etcd snapshot/);
  });
});

describe('hashing while downloading (SnapshotHasher)', () => {
  /** Feed a file to a hasher in uneven chunks, some shorter than the 32-byte trailer. */
  const feed = (bytes: Buffer, h = new SnapshotHasher()) => {
    for (let at = 0, i = 0; at < bytes.length; i++) {
      const len = [7, 131072, 31, 4096, 1][i % 5];
      h.update(bytes.subarray(at, at + len));
      at += len;
    }
    return h;
  };

  it('gives the same verdict and sha256 as reading the file, without reading it', async () => {
    const bytes = await fs.readFile(snap);
    const streamed = await checkSnapshotFile(snap, { requireIntegrity: true });
    expect(await checkSnapshotFile(snap, { requireIntegrity: true, hashed: feed(bytes) })).toEqual(streamed);
  });

  it('refuses bytes that differ from what etcd hashed, even when the file on disk is fine', async () => {
    const bytes = await fs.readFile(snap);
    const bad = Buffer.from(bytes);
    bad[100_000 % bad.length] ^= 1; // as if a chunk had been corrupted or reordered on the way
    await expect(checkSnapshotFile(snap, { requireIntegrity: true, hashed: feed(bad) })).rejects.toThrow(
      /integrity hash does not match/,
    );
  });

  it('falls back to reading the file when the hasher did not see exactly its bytes', async () => {
    const bytes = await fs.readFile(snap);
    const twice = feed(bytes, feed(bytes.subarray(0, 4096))); // e.g. a retried transfer fed it twice
    expect((await checkSnapshotFile(snap, { requireIntegrity: true, hashed: twice })).integrity).toBe('ok');
  });
});

describe('SnapshotVault', () => {
  it('lists a snapshot only after commit, and clears staging leftovers on open', async () => {
    const data = join(dir, 'data1');
    const vault = await SnapshotVault.open(data);
    const incoming = await vault.begin();
    await fs.copyFile(snap, incoming.partPath);
    expect(await vault.list()).toEqual([]);
    const m = await incoming.commit(meta('first'));
    expect(await vault.list()).toEqual([m]);
    expect(m).toMatchObject({ size: (await fs.stat(snap)).size, integrity: 'ok', note: 'first' });

    const dangling = await vault.begin();
    await fs.writeFile(dangling.partPath, 'half');
    const reopened = await SnapshotVault.open(data); // "after a crash"
    expect((await reopened.list()).map((x) => x.id)).toEqual([m.id]);
    await expect(fs.stat(dangling.partPath)).rejects.toThrow();
  });

  it('refuses a corrupt transfer and one whose sha256 differs from the source', async () => {
    const vault = await SnapshotVault.open(join(dir, 'data2'));
    const bad = await vault.begin();
    await fs.writeFile(bad.partPath, Buffer.alloc(64 * 1024));
    await expect(bad.commit(meta())).rejects.toMatchObject({ code: 'SNAPSHOT_INVALID' });
    const mismatch = await vault.begin();
    await fs.copyFile(snap, mismatch.partPath);
    await expect(mismatch.commit(meta(), 'a'.repeat(64))).rejects.toThrow(/Transfer corrupted/);
    expect(await vault.list()).toEqual([]);
  });

  it('stores hostile notes as data and rejects control characters and huge notes', async () => {
    const vault = await SnapshotVault.open(join(dir, 'data3'));
    const incoming = await vault.begin();
    await fs.copyFile(snap, incoming.partPath);
    const hostile = `../../etc/passwd $(rm -rf /) \`id\` ; "quotes" 'single' ☸`;
    const m = await incoming.commit(meta(hostile));
    expect((await vault.get(m.id)).note).toBe(hostile);
    expect(await fs.readdir(vault.dir)).toEqual([m.id]);
    await expect(vault.update(m.id, { note: 'x'.repeat(5000) })).rejects.toThrow();
    await expect(vault.update(m.id, { note: 'bell\u0007' })).rejects.toThrow();
    await expect(vault.get('../../etc')).rejects.toMatchObject({ code: 'INVALID_INPUT' });
  });

  it('verifies, exports, imports, prunes and deletes', async () => {
    const vault = await SnapshotVault.open(join(dir, 'data4'));
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const inc = await vault.begin();
      await fs.copyFile(snap, inc.partPath);
      ids.push((await inc.commit(meta(`n${i}`))).id);
      await new Promise((r) => setTimeout(r, 5));
    }
    expect((await vault.verify(ids[0])).verifiedAt).not.toBeNull();
    const out = join(dir, 'exported.db');
    await vault.exportTo(ids[0], out);
    expect((await checkSnapshotFile(out)).sha256).toBe((await vault.get(ids[0])).sha256);
    const imported = await vault.importFile(out, 'from a colleague');
    expect(imported.source).toMatchObject({ kind: 'import', originalName: 'exported.db' });
    await expect(vault.importFile(join(dir, 'random.db'), '')).rejects.toThrow();
    const removed = await vault.prune('c1', 1);
    expect(removed.sort()).toEqual([ids[0], ids[1]].sort());
    await vault.remove(ids[2]);
    expect((await vault.list()).map((m) => m.id)).toEqual([imported.id]);
    // tampering on disk is caught by verify
    await fs.appendFile(vault.filePath(imported.id), 'x');
    await expect(vault.verify(imported.id)).rejects.toThrow();
  });
});
