// Intent: a state archive keeps each node's files byte-for-byte with a readable manifest, records
// files that did not exist, detects damage, and never lets a node name escape its folder.
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import * as tar from 'tar';
import { StateVault } from '../../src/main/vault/states';

let dir: string;
beforeEach(async () => {
  dir = await fs.mkdtemp(join(tmpdir(), 'kes-states-'));
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

const etcdYaml = Buffer.from('apiVersion: v1\nkind: Pod\n# m1 etcd\n');
const input = (name = 'm1') => ({
  clusterId: 'c1',
  clusterName: 'lab',
  mode: 'embedded-up',
  reason: 'before restore of snapshot 1234',
  nodes: [
    {
      name,
      nodeId: 'n1',
      address: '198.18.0.2',
      roles: ['master', 'etcd'],
      etcdDataDir: '/var/lib/etcd',
      etcdUnitActive: null,
      files: [
        { path: '/etc/kubernetes/manifests/etcd.yaml', mode: 0o600, content: etcdYaml },
        { path: '/etc/systemd/system/etcd.service', mode: 0o644, content: null },
      ],
    },
  ],
});

describe('StateVault', () => {
  it('round-trips files and the manifest', async () => {
    const v = await StateVault.open(dir);
    const m = await v.save(input());
    expect((await v.list('c1')).map((x) => x.id)).toEqual([m.id]);
    const loaded = await v.load(m.id);
    expect(loaded.manifest.nodes[0].files).toEqual([
      { path: '/etc/kubernetes/manifests/etcd.yaml', mode: 0o600, sha256: expect.stringMatching(/^[0-9a-f]{64}$/) },
      { path: '/etc/systemd/system/etcd.service', mode: 0o644, sha256: null },
    ]);
    expect(loaded.content('m1', '/etc/kubernetes/manifests/etcd.yaml')).toEqual(etcdYaml);
    expect(loaded.content('m1', '/etc/systemd/system/etcd.service')).toBeNull();
    expect(await fs.readdir(dir + '/vault/states')).toEqual([`${m.id}.tar.gz`]);
  });

  it('refuses node names that could escape the archive folder', async () => {
    const v = await StateVault.open(dir);
    await expect(v.save(input('../evil'))).rejects.toMatchObject({ code: 'INVALID_INPUT' });
    expect(await v.list()).toEqual([]);
  });

  it('detects a damaged archive member', async () => {
    const v = await StateVault.open(dir);
    const m = await v.save(input());
    // Rebuild the archive with a changed etcd.yaml but the old manifest.
    const x = join(dir, 'x');
    await fs.mkdir(x);
    await tar.extract({ file: v.path(m.id), cwd: x });
    await fs.writeFile(join(x, 'files/m1/etc/kubernetes/manifests/etcd.yaml'), 'tampered');
    await tar.create({ gzip: true, file: v.path(m.id), cwd: x }, ['manifest.json', 'files']);
    await expect(v.load(m.id)).rejects.toMatchObject({ code: 'STATE_INVALID' });
  });
});
