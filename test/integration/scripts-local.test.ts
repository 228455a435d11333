// Intent: the shipped remote scripts behave as their headers promise when run the way the app
// runs them (`bash -s -- ARGS` with the script on stdin) — checked here against a local etcd.
import { execFile } from 'node:child_process';
import { promises as fs, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalEtcd, type LocalEtcd } from './support/local-etcd';

const scripts = join(__dirname, '../../resources/scripts');
function runScript(
  name: string,
  args: string[],
  env?: NodeJS.ProcessEnv,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile('bash', ['-s', '--', ...args], { maxBuffer: 16 << 20, env }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
    child.stdin!.end(readFileSync(join(scripts, name)));
  });
}
const run = promisify(execFile);

let etcd: LocalEtcd;
let dir: string;
let snap: string;
let sha: string;
beforeAll(async () => {
  etcd = await startLocalEtcd();
  dir = await fs.mkdtemp(join(tmpdir(), 'kes-scripts-'));
  for (let i = 0; i < 20; i++) await etcd.etcdctl('put', `/registry/pods/default/p${i}`, `v${i}`);
  snap = join(dir, 'snap.db');
  await etcd.etcdctl('snapshot', 'save', snap);
  sha = (await run('sha256sum', [snap])).stdout.split(' ')[0];
});
afterAll(async () => {
  await etcd?.stop();
  await fs.rm(dir, { recursive: true, force: true });
});

describe('snapshot-status.sh', () => {
  it('prints sha256 and status JSON, and fails on a sha mismatch', async () => {
    const ok = await runScript('snapshot-status.sh', [snap, sha]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain(`KES_SHA256=${sha}`);
    const status = JSON.parse(/KES_STATUS=(.*)/.exec(ok.stdout)![1]);
    expect(status.totalKey).toBeGreaterThanOrEqual(20);
    const bad = await runScript('snapshot-status.sh', [snap, 'f'.repeat(64)]);
    expect(bad.code).toBe(3);
  });

  it('with --no-sha256 only describes the file (the app verifies the bytes it downloads itself)', async () => {
    const r = await runScript('snapshot-status.sh', [snap, '--no-sha256']);
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain('KES_SHA256=');
    expect(JSON.parse(/KES_STATUS=(.*)/.exec(r.stdout)![1]).totalKey).toBeGreaterThanOrEqual(20);
  });
});

describe('restore-member.sh', () => {
  const cluster = 'r1=http://127.0.0.1:23800';
  it('restores into a new data dir that etcd can start from', async () => {
    const target = join(dir, 'restored');
    const r = await runScript('restore-member.sh', [
      snap,
      sha,
      'r1',
      cluster,
      'tok-1',
      'http://127.0.0.1:23800',
      target,
    ]);
    expect(r.stderr + r.stdout).toContain(`KES_RESTORED=${target}`);
    expect(r.code).toBe(0);
    expect(await fs.readdir(join(target, 'member'))).toEqual(expect.arrayContaining(['snap', 'wal']));
    expect((await fs.stat(target)).mode & 0o777).toBe(0o700);
    await expect(fs.stat(`${target}.part`)).rejects.toThrow();
  });

  // This machine has etcd 3.4 (no etcdutl). A stand-in etcdutl records how the scripts call it
  // and does the real work with etcdctl 3.4, so the etcd ≥ 3.5 branch is exercised too.
  async function fakeEtcdutl(opts: {
    bumpRevision: boolean;
  }): Promise<{ env: NodeJS.ProcessEnv; calls: () => Promise<string[]> }> {
    const bin = await fs.mkdtemp(join(dir, 'bin-'));
    const log = join(bin, 'calls');
    await fs.writeFile(
      join(bin, 'etcdutl'),
      [
        '#!/bin/bash',
        `printf '%s\\n' "$*" >> ${log}`,
        'if [ "$3" = --help ]; then echo "  --data-dir string"; ' +
          (opts.bumpRevision ? 'echo "  --bump-revision uint64"; echo "  --mark-compacted"; ' : '') +
          'exit 0; fi',
        // drop the 3.5+ only flags, then let etcdctl 3.4 do the same restore / status
        'args=(); skip=0; for a in "$@"; do if [ $skip = 1 ]; then skip=0; continue; fi; case "$a" in --bump-revision) skip=1;; --mark-compacted) ;; *) args+=("$a");; esac; done',
        'ETCDCTL_API=3 exec etcdctl "${args[@]}"',
      ].join('\n'),
      { mode: 0o755 },
    );
    return {
      env: { ...process.env, PATH: `${bin}:${process.env.PATH}` },
      calls: async () => (await fs.readFile(log, 'utf8')).trim().split('\n'),
    };
  }

  it('uses etcdutl when the node has it (etcd ≥ 3.5), bumping the revision where supported', async () => {
    for (const bumpRevision of [true, false]) {
      const shim = await fakeEtcdutl({ bumpRevision });
      const target = join(dir, `restored-etcdutl-${bumpRevision}`);
      const r = await runScript(
        'restore-member.sh',
        [snap, sha, 'r1', cluster, 'tok-2', 'http://127.0.0.1:23800', target],
        shim.env,
      );
      expect(r.code, r.stderr).toBe(0);
      expect(await fs.readdir(join(target, 'member'))).toEqual(expect.arrayContaining(['snap', 'wal']));
      const restore = (await shim.calls()).find((c) => c.startsWith('snapshot restore /'))!;
      expect(restore).toContain(`--name r1 --initial-cluster ${cluster} --initial-cluster-token tok-2`);
      expect(restore).toContain(`--data-dir ${target}.part`);
      // kubernetes#131115: watchers must not see time run backwards
      expect(restore.includes('--bump-revision 1000000000 --mark-compacted')).toBe(bumpRevision);
      const status = await runScript('snapshot-status.sh', [snap, '--no-sha256'], shim.env);
      expect(JSON.parse(/KES_STATUS=(.*)/.exec(status.stdout)![1]).totalKey).toBeGreaterThanOrEqual(20);
      expect(await shim.calls()).toContain(`snapshot status -w json ${snap}`);
    }
  });

  it('refuses a non-empty target and a snapshot whose sha256 differs', async () => {
    const target = join(dir, 'busy');
    await fs.mkdir(target);
    await fs.writeFile(join(target, 'keep-me'), 'x');
    const busy = await runScript('restore-member.sh', [
      snap,
      sha,
      'r1',
      cluster,
      't',
      'http://127.0.0.1:23800',
      target,
    ]);
    expect(busy.code).toBe(4);
    expect(await fs.readFile(join(target, 'keep-me'), 'utf8')).toBe('x');
    const mismatch = await runScript('restore-member.sh', [
      snap,
      '0'.repeat(64),
      'r1',
      cluster,
      't',
      'http://127.0.0.1:23800',
      join(dir, 'other'),
    ]);
    expect(mismatch.code).toBe(3);
    await expect(fs.stat(join(dir, 'other'))).rejects.toThrow();
  });

  it('treats hostile arguments as data', async () => {
    const evil = join(dir, 'x; touch pwned');
    const r = await runScript('restore-member.sh', [
      snap,
      sha,
      "r1'$(touch pwned2)",
      cluster,
      '`id`',
      'http://127.0.0.1:23800',
      evil,
    ]);
    await expect(fs.stat(join(process.cwd(), 'pwned2'))).rejects.toThrow();
    await expect(fs.stat(join(process.cwd(), 'pwned'))).rejects.toThrow();
    void r;
  });
});
