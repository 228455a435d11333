// Intent: a member's private key goes from memory straight to the node over SFTP (a 0600 file in
// the private transfer folder), never through a local file: while it is being written no file
// under the temp dir or the data dir holds it, and the path-based upload is never used for it.
import { generateKeyPairSync } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ClusterNode } from '@shared/domain';
import type { EtcdDeps } from '../../src/main/etcd/deps';
import { putFile } from '../../src/main/etcd/files';

let root: string;
let savedTmp: string | undefined;

beforeEach(async () => {
  root = await fs.mkdtemp(join(tmpdir(), 'kes-put-file-'));
  await fs.mkdir(join(root, 'tmp'));
  await fs.mkdir(join(root, 'data'));
  // Everything that asks the OS for a temp dir from here on gets our empty one.
  savedTmp = process.env.TMPDIR;
  process.env.TMPDIR = join(root, 'tmp');
});
afterEach(async () => {
  if (savedTmp === undefined) delete process.env.TMPDIR;
  else process.env.TMPDIR = savedTmp;
  await fs.rm(root, { recursive: true, force: true });
});

/** Every file under `dir` whose bytes contain `needle`. */
async function filesHolding(dir: string, needle: string): Promise<string[]> {
  const hits: string[] = [];
  for (const e of await fs.readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    const p = join(e.parentPath, e.name);
    if ((await fs.readFile(p, 'utf8').catch(() => '')).includes(needle)) hits.push(p);
  }
  return hits;
}

describe('putFile', () => {
  it('writes a private key from memory with mode 0600, with no local copy at any time', async () => {
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({
      type: 'pkcs8',
      format: 'pem',
    }) as string;
    const marker = key.split('\n')[1]; // a line of the key's base64 body
    const writes: { path: string; content: string; mode?: number; localCopies: string[] }[] = [];
    const uploads: string[] = [];
    const scripts: string[] = [];
    const scan = async () => [
      ...(await filesHolding(tmpdir(), marker)),
      ...(await filesHolding(join(root, 'data'), marker)),
    ];
    const deps = {
      targetOf: () => ({ nodeId: 'e1' }),
      pool: {
        writeFile: async (_t: unknown, path: string, content: Buffer | string, opts: { mode?: number }) => {
          writes.push({ path, content: content.toString(), mode: opts.mode, localCopies: await scan() });
          return { bytes: Buffer.byteLength(content), sha256: '' };
        },
        upload: async (_t: unknown, local: string) => {
          uploads.push(local);
          return { bytes: 0, sha256: '' };
        },
      },
      ops: {
        run: async (_c: string, _n: string, script: string, args: string[]) => {
          scripts.push(`${script} ${args.join(' ')}`);
          if (script === 'install-file.sh') expect(await scan()).toEqual([]);
          return {
            code: 0,
            stdout:
              script === 'transfer-dir.sh' ? 'KES_DIR=/var/lib/kube-etcd-switch/transfer/root\nKES_FREE_KB=9\n' : '',
            stderr: '',
          };
        },
      },
    } as unknown as EtcdDeps;
    const node = { id: 'e1', name: 'e1', address: '198.18.0.10', user: 'root', roles: [] } as unknown as ClusterNode;

    await putFile(deps, 'c1', node, '/etc/etcd/pki/server.key', key, 0o600);

    expect(uploads).toEqual([]);
    expect(writes).toHaveLength(1);
    expect(writes[0]).toMatchObject({ content: key, mode: 0o600, localCopies: [] });
    expect(writes[0].path).toMatch(/^\/var\/lib\/kube-etcd-switch\/transfer\/root\/put-[0-9a-f-]+$/);
    expect(scripts.at(-1)).toBe(`install-file.sh ${writes[0].path} /etc/etcd/pki/server.key 0600`);
    expect(await scan()).toEqual([]);
  });
});
