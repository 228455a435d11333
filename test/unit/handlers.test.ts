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
