// Intent: install-etcd-tools.sh (run as root on a node) installs only regular files from a release
// archive: an archive whose etcdctl is a symlink (to a secret, say) is refused and nothing is
// installed, while a plain one installs — a second line of defence behind the desktop's own check.
import { execFile } from 'node:child_process';
import { promises as fs, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const script = readFileSync(join(import.meta.dirname, '../../resources/scripts/install-etcd-tools.sh'));
const arch = process.arch === 'arm64' ? 'arm64' : 'amd64';
let dir: string;

beforeAll(async () => {
  dir = await fs.mkdtemp(join(tmpdir(), 'kes-install-tools-'));
});
afterAll(async () => {
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

function install(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile('bash', ['-s', '--', ...args], (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
    child.stdin!.end(script);
  });
}

/** A release-shaped archive whose etcdctl is made by `make` inside its top folder. */
async function archive(label: string, make: (top: string) => Promise<void>): Promise<{ file: string; sha: string }> {
  const root = await fs.mkdtemp(join(dir, `${label}-`));
  const top = `etcd-v3.9.1-linux-${arch}`;
  await fs.mkdir(join(root, top));
  await make(join(root, top));
  const file = join(root, `${top}.tar.gz`);
  await run('tar', ['-czf', file, '-C', root, top]);
  return { file, sha: (await run('sha256sum', [file])).stdout.split(' ')[0] };
}

describe('install-etcd-tools.sh', () => {
  it('refuses an archive holding a symlink and installs nothing', async () => {
    const secret = join(dir, 'secret');
    await fs.writeFile(secret, 'not for /usr/local/bin\n', { mode: 0o600 });
    const a = await archive('link', (top) => fs.symlink(secret, join(top, 'etcdctl')));
    const dest = join(dir, 'bin-link');
    const r = await install([a.file, a.sha, dest]);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/links or special files/);
    await expect(fs.stat(join(dest, 'etcdctl'))).rejects.toThrow();
  });

  it('installs the regular files of a plain archive', async () => {
    const a = await archive('plain', (top) =>
      fs.writeFile(join(top, 'etcdctl'), '#!/bin/sh\necho "etcdctl version: 3.9.1"\n', { mode: 0o755 }),
    );
    const dest = join(dir, 'bin-plain');
    const r = await install([a.file, a.sha, dest]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('KES_INSTALLED=etcdctl');
    expect(r.stdout).toContain('KES_VERSION=3.9.1');
  });
});
