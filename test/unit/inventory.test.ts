// Intent: the inventory survives restarts, never half-writes, and never silently destroys a file
// it could not read.
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ClusterFacts, NodeInput } from '../../src/shared/domain';
import { InventoryStore } from '../../src/main/inventory/store';

let dir: string;
beforeEach(async () => {
  dir = await fs.mkdtemp(join(tmpdir(), 'kes-inv-'));
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

const node = (name: string, extra: Partial<Record<string, unknown>> = {}) =>
  NodeInput.parse({ name, address: '198.18.0.10', auth: { method: 'agent' }, ...extra });

describe('InventoryStore', () => {
  it('persists clusters and nodes across reopen', async () => {
    const a = await InventoryStore.open(dir);
    const c = await a.createCluster('prod');
    const n = await a.upsertNode(c.id, node('m1', { roles: ['master', 'etcd', 'master'] }));
    const b = await InventoryStore.open(dir);
    expect(b.list()).toHaveLength(1);
    expect(b.node(c.id, n.id)).toMatchObject({ name: 'm1', port: 22, user: 'root', roles: ['master', 'etcd'] });
  });

  it('writes atomically: no temp files left, file mode 0600', async () => {
    const a = await InventoryStore.open(dir);
    await Promise.all(['a', 'b', 'c', 'd'].map((n) => a.createCluster(n)));
    const files = await fs.readdir(dir);
    expect(files).toEqual(['inventory.json']);
    const st = await fs.stat(join(dir, 'inventory.json'));
    expect(st.mode & 0o777).toBe(0o600);
    const again = await InventoryStore.open(dir);
    expect(
      again
        .list()
        .map((c) => c.name)
        .sort(),
    ).toEqual(['a', 'b', 'c', 'd']);
  });

  it('backs up a corrupt file, reports it, and never overwrites it', async () => {
    await fs.writeFile(join(dir, 'inventory.json'), '{"version":1,"clusters":[{"broken":');
    const a = await InventoryStore.open(dir);
    expect(a.loadProblem).not.toBeNull();
    expect(a.loadProblem!.backup).toMatch(/inventory\.json\.corrupt-/);
    expect(await fs.readFile(a.loadProblem!.backup, 'utf8')).toContain('"broken":');
    await a.createCluster('fresh');
    // the backup is untouched by the next save
    expect(await fs.readFile(a.loadProblem!.backup, 'utf8')).toContain('"broken":');
  });

  it('treats schema-invalid content as corrupt too', async () => {
    await fs.writeFile(
      join(dir, 'inventory.json'),
      JSON.stringify({ version: 1, clusters: [{ id: '../x', name: '$(rm)' }] }),
    );
    const a = await InventoryStore.open(dir);
    expect(a.loadProblem?.error).toBeTruthy();
    expect(a.list()).toEqual([]);
  });

  it('rejects duplicate names and jump loops with field-level issues', async () => {
    const a = await InventoryStore.open(dir);
    const c = await a.createCluster('lab');
    await expect(a.createCluster('LAB')).rejects.toMatchObject({ code: 'INVALID_INPUT' });
    const j = await a.upsertNode(c.id, node('jump'));
    const m = await a.upsertNode(c.id, node('m1', { jumpNodeId: j.id }));
    await expect(a.upsertNode(c.id, node('m1b'))).resolves.toBeTruthy();
    await expect(a.upsertNode(c.id, node('M1'))).rejects.toMatchObject({ code: 'INVALID_INPUT' });
    await expect(a.upsertNode(c.id, { ...node('jump', { jumpNodeId: m.id }), id: j.id })).rejects.toMatchObject({
      code: 'INVALID_INPUT',
      message: expect.stringMatching(/loop/),
    });
    await expect(a.removeNode(c.id, j.id)).rejects.toMatchObject({ code: 'CONFLICT' });
  });

  it('reports unknown ids as NOT_FOUND', async () => {
    const a = await InventoryStore.open(dir);
    expect(() => a.get('nope')).toThrow(expect.objectContaining({ code: 'NOT_FOUND' }));
  });

  it('records the external etcd members a provision set up (after initialize only), and drops them with the node', async () => {
    const a = await InventoryStore.open(dir);
    const c = await a.createCluster('prod');
    const s1 = await a.upsertNode(c.id, node('s1', { roles: ['etcd'] }));
    const fact = { provisionedAt: '2026-01-01T00:00:00Z', version: '3.4.23', dataDir: '/var/lib/etcd' };
    await a.recordExternalEtcd(c.id, s1.id, fact);
    expect(a.get(c.id).facts).toBeNull();
    await a.setFacts(c.id, ClusterFacts.parse({ ...FACTS }));
    expect(a.get(c.id).facts?.externalEtcd).toEqual({}); // older facts files have none
    await a.recordExternalEtcd(c.id, s1.id, fact);
    expect((await InventoryStore.open(dir)).get(c.id).facts?.externalEtcd).toEqual({ [s1.id]: fact });
    await a.removeNode(c.id, s1.id);
    expect(a.get(c.id).facts?.externalEtcd).toEqual({});
  });
});

const FACTS = {
  initializedAt: '2026-01-01T00:00:00Z',
  seedNodeId: 'm1',
  controlPlaneEndpoint: null,
  etcdCaCert: null,
  etcdCaKeyOn: [],
  etcdVersion: '3.4.23',
  masters: [],
  members: [],
  mode: 'embedded-up',
  modeDetails: [],
};
