// Intent: the handler table implements the contract exactly — checked by the compiler (missing
// or extra handlers are type errors, proven below with @ts-expect-error) and again at run time.
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { methods } from '../../src/shared/contract';
import type { Handlers } from '../../src/main/api/dispatch';
import { createServices, type Services } from '../../src/main/services';
import { MemorySecretStore } from '../../src/main/secrets/memory';

let dir: string;
let svc: Services;
beforeAll(async () => {
  dir = await fs.mkdtemp(join(tmpdir(), 'kes-handlers-'));
  svc = await createServices({
    dataDir: dir,
    resourcesDir: join(__dirname, '../../resources'),
    secrets: new MemorySecretStore(),
    transport: 'web',
    version: '0.0.0-test',
  });
});
afterAll(async () => {
  await svc.close();
  await fs.rm(dir, { recursive: true, force: true });
});

describe('handler table', () => {
  it('type-checks only when it covers the contract exactly', () => {
    type Full = Handlers;
    // @ts-expect-error a table missing a method is rejected
    const missing: Full = {} as Omit<Full, 'clusters.list'>;
    // @ts-expect-error a table with an extra method is rejected
    const extra: Full = { ...({} as Full), 'clusters.explode': () => undefined };
    void missing;
    void extra;
    expect(true).toBe(true);
  });

  it('answers every contract method through the dispatcher (never UNKNOWN_METHOD)', async () => {
    for (const m of Object.keys(methods)) {
      const r = await svc.dispatch(m, {}, { client: 'test' });
      if (!r.ok) expect(r.error.code, m).not.toBe('UNKNOWN_METHOD');
    }
  });

  it('runs a realistic sequence: cluster, node, secrets flags, status; secrets never echoed', async () => {
    const call = async (m: string, i: unknown) => {
      const r = await svc.dispatch(m, i, { client: 'test' });
      if (!r.ok) throw new Error(`${m}: ${r.error.code} ${r.error.message}`);
      return r.value as Record<string, unknown>;
    };
    const c = await call('clusters.create', { name: 'lab' });
    const n = await call('nodes.upsert', {
      clusterId: c.id,
      node: { name: 'm1', address: '198.18.0.2', auth: { method: 'password' } },
    });
    const flags = await call('secrets.set', { clusterId: c.id, nodeId: n.id, kind: 'password', value: 's3cr3t-value' });
    expect(flags).toEqual({ privateKey: false, passphrase: false, password: true });
    const everything = JSON.stringify([await call('clusters.list', {}), await call('app.info', {}), flags]);
    expect(everything).not.toContain('s3cr3t-value');
    expect(await fs.readFile(join(dir, 'inventory.json'), 'utf8')).not.toContain('s3cr3t-value');
    expect(await call('nodes.status', { clusterId: c.id })).toEqual([
      { clusterId: c.id, nodeId: n.id, state: 'disconnected' },
    ]);
    await call('nodes.remove', { clusterId: c.id, nodeId: n.id });
    expect(await svc.secrets.get(`node:${n.id}:password`)).toBeNull();
  });

  it('copies the default scripts into the data dir, where the console opens', async () => {
    const info = (await svc.dispatch('app.info', {}, { client: 'test' })) as {
      ok: true;
      value: { scriptsDir: string };
    };
    expect(info.value.scriptsDir).toBe(join(dir, 'scripts'));
    expect(await fs.readdir(info.value.scriptsDir)).toEqual(expect.arrayContaining(['README.md', 'node-facts.sh']));
  });
});

describe('adding several nodes (nodes.addMany) and reusing stored secrets (secrets.copy)', () => {
  const call = async (m: string, i: unknown) => {
    const r = await svc.dispatch(m, i, { client: 'test' });
    if (!r.ok) throw Object.assign(new Error(`${m}: ${r.error.code} ${r.error.message}`), { error: r.error });
    return r.value as Record<string, unknown> & { id: string };
  };
  const node = (name: string, address: string, auth: unknown = { method: 'key-stored' }) => ({
    name,
    address,
    roles: ['worker'],
    auth,
  });

  it('writes all nodes and gives each the shared and the copied secrets; values never come back', async () => {
    const c = await call('clusters.create', { name: 'many' });
    const m1 = await call('nodes.upsert', { clusterId: c.id, node: node('m1', '198.18.1.1') });
    await call('secrets.set', { clusterId: c.id, nodeId: m1.id, kind: 'privateKey', value: 'KEY-OF-M1' });
    await call('secrets.set', { clusterId: c.id, nodeId: m1.id, kind: 'passphrase', value: 'PASS-OF-M1' });
    const added = (await call('nodes.addMany', {
      clusterId: c.id,
      nodes: [node('w1', '198.18.1.2'), node('w2', '198.18.1.3')],
      credential: { copyFrom: m1.id, passphrase: 'NEW-PASS' },
    })) as unknown as { id: string; name: string }[];
    expect(added.map((n) => n.name)).toEqual(['w1', 'w2']);
    for (const n of added) {
      expect(await svc.secrets.get(`node:${n.id}:privateKey`)).toBe('KEY-OF-M1');
      expect(await svc.secrets.get(`node:${n.id}:passphrase`)).toBe('NEW-PASS');
    }
    expect(JSON.stringify(added)).not.toContain('KEY-OF-M1');
    const flags = await call('secrets.status', { clusterId: c.id, nodeId: added[0].id });
    expect(flags).toEqual({ privateKey: true, passphrase: true, password: false });
  });

  it('writes nothing when one entry is refused, and names every refused entry', async () => {
    const c = await call('clusters.create', { name: 'many-refused' });
    await call('nodes.upsert', { clusterId: c.id, node: node('m1', '198.18.2.1', { method: 'agent' }) });
    type Refused = { code: string; details: { issues: { path: unknown[] }[] } };
    const err = (await call('nodes.addMany', {
      clusterId: c.id,
      nodes: [
        node('w1', '198.18.2.2', { method: 'agent' }),
        node('w2', '198.18.2.1', { method: 'agent' }), // m1's machine
        node('W1', '198.18.2.3', { method: 'agent' }), // w1's name
      ],
    }).then(
      () => null,
      (e: { error: Refused }) => e.error,
    )) as Refused;
    expect(err.code).toBe('INVALID_INPUT');
    expect(err.details.issues.map((i) => i.path.join('.'))).toEqual(['nodes.1.address', 'nodes.2.name']);
    const after = (await call('clusters.list', {})) as unknown as { id: string; nodes: unknown[] }[];
    expect(after.find((x) => x.id === c.id)!.nodes).toHaveLength(1);
  });

  it('removes the nodes it just added when a secret cannot be copied (nothing half-written)', async () => {
    const c = await call('clusters.create', { name: 'many-rollback' });
    const m1 = await call('nodes.upsert', { clusterId: c.id, node: node('m1', '198.18.3.1') }); // no key stored
    const err = await call('nodes.addMany', {
      clusterId: c.id,
      nodes: [node('w1', '198.18.3.2'), node('w2', '198.18.3.3')],
      credential: { copyFrom: m1.id },
    }).catch((e: { error: { code: string; message: string } }) => e.error);
    expect(err.message).toMatch(/No private key is stored for m1/);
    const after = (await call('clusters.list', {})) as unknown as { id: string; nodes: { name: string }[] }[];
    expect(after.find((x) => x.id === c.id)!.nodes.map((n) => n.name)).toEqual(['m1']);
  });

  it('secrets.copy gives one node the secrets another has stored, for its own auth method', async () => {
    const c = await call('clusters.create', { name: 'copy' });
    const a = await call('nodes.upsert', { clusterId: c.id, node: node('a', '198.18.4.1', { method: 'password' }) });
    const b = await call('nodes.upsert', { clusterId: c.id, node: node('b', '198.18.4.2', { method: 'password' }) });
    await call('secrets.set', { clusterId: c.id, nodeId: a.id, kind: 'password', value: 'PW-A' });
    const flags = await call('secrets.copy', { clusterId: c.id, fromNodeId: a.id, toNodeId: b.id });
    expect(flags).toEqual({ privateKey: false, passphrase: false, password: true });
    expect(await svc.secrets.get(`node:${b.id}:password`)).toBe('PW-A');
  });
});
