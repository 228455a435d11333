// Intent: the shipped remote scripts behave as their headers promise when run the way the app
// runs them (`bash -s -- ARGS` with the script on stdin) — checked here against a local etcd.
import { execFile, spawn } from 'node:child_process';
import { existsSync, promises as fs, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalEtcd, type LocalEtcd } from './support/local-etcd';
import { parseEtcdEnv, renderEtcdEnv } from '../../src/main/etcd/external-config';
import { batchProgram, splitBatch } from '../../src/main/remote/scripts';

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

// ----------------------------------------------------------------------------------------------
// The etcd version matrix: the real etcd 3.4, 3.5 and 3.6 the lab caches (test/lab/build-binaries.sh).
// Each minor is skipped, with the reason printed, when its binaries are not there.

const CACHE = join(process.env.KES_LAB_CACHE ?? '/var/cache/kes-lab', 'etcd');
function cachedEtcd(minor: string): { version: string; bin: string } | null {
  const names = existsSync(CACHE) ? readdirSync(CACHE) : [];
  const best = names
    .filter((n) => n.startsWith(`v${minor}.`) && existsSync(join(CACHE, n, 'etcd')))
    .sort((a, b) => a.localeCompare(b, undefined, { numeric: true }))
    .at(-1);
  return best ? { version: best.slice(1), bin: join(CACHE, best) } : null;
}
const matrix = ['3.4', '3.5', '3.6'].map((minor) => ({ minor, etcd: cachedEtcd(minor) }));
for (const m of matrix) if (!m.etcd) console.log(`[scripts-local] etcd ${m.minor} skipped: not in ${CACHE}`);
const e34 = matrix[0].etcd;
const e35 = matrix[1].etcd;
const e36 = matrix[2].etcd;

/** A PATH holding only the basics the scripts use plus the given tools (no system etcd tools). */
async function toolPath(tools: Record<string, string>): Promise<NodeJS.ProcessEnv> {
  const d = await fs.mkdtemp(join(dir, 'path-'));
  for (const b of [
    'bash',
    'ls',
    'sha256sum',
    'cut',
    'rm',
    'mkdir',
    'dirname',
    'rmdir',
    'mv',
    'chmod',
    'hostname',
    'grep',
    'head',
    'tar',
    'find',
    'install',
    'mktemp',
    'basename',
    'uname',
    'gzip',
  ])
    await fs.symlink((await run('bash', ['-c', `command -v ${b}`])).stdout.trim(), join(d, b));
  for (const [name, path] of Object.entries(tools)) await fs.symlink(path, join(d, name));
  return { PATH: d, HOME: dir, LANG: 'C' };
}

async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

/** One member of `version` on loopback, plain HTTP, on `dataDir` (new, or restored). */
async function startEtcd(bin: string, dataDir: string, peerPort: number, token: string) {
  const cp = await freePort();
  const endpoint = `http://127.0.0.1:${cp}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const proc = spawn(
    join(bin, 'etcd'),
    [
      '--name=r1',
      `--data-dir=${dataDir}`,
      `--listen-client-urls=${endpoint}`,
      `--advertise-client-urls=${endpoint}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=r1=${peer}`,
      `--initial-cluster-token=${token}`,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  proc.stderr!.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
  const ctl = async (...args: string[]) =>
    (
      await run(join(bin, 'etcdctl'), [`--endpoints=${endpoint}`, ...args], {
        env: { ...process.env, ETCDCTL_API: '3' },
      })
    ).stdout;
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      await ctl('endpoint', 'health');
      break;
    } catch (e) {
      if (Date.now() > deadline || proc.exitCode !== null) {
        proc.kill('SIGKILL');
        throw new Error(`etcd (${bin}) did not start: ${(e as Error).message}\n${stderr}`, { cause: e });
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    ctl,
    async stop() {
      proc.kill('SIGTERM');
      await new Promise((r) => (proc.exitCode !== null ? r(null) : proc.once('exit', r)));
    },
  };
}

/** A snapshot of 20 keys taken from a real etcd of this version with its own etcdctl. */
async function snapshotOf(bin: string): Promise<{ file: string; sha: string }> {
  const data = await fs.mkdtemp(join(dir, 'src-'));
  const e = await startEtcd(bin, join(data, 'data'), await freePort(), 'src');
  try {
    for (let i = 0; i < 20; i++) await e.ctl('put', `/registry/pods/default/p${i}`, `v${i}`);
    const file = join(data, 'snap.db');
    await e.ctl('snapshot', 'save', file);
    return { file, sha: (await run('sha256sum', [file])).stdout.split(' ')[0] };
  } finally {
    await e.stop();
  }
}

describe('restore-member.sh with the real etcd of each version', () => {
  const cases = [
    // [server, tools the node has] — the tools of the server's own release
    ...[e34, e35, e36].filter((e) => !!e).map((e) => ({ server: e!, tools: e! })),
    // etcdutl 3.6 also writes data dirs an etcd 3.4 starts from (tool newer than the server)
    ...(e34 && e36 ? [{ server: e34, tools: e36 }] : []),
  ];
  it.each(cases.map((c) => [`etcd ${c.server.version} restored with the tools of ${c.tools.version}`, c] as const))(
    '%s: the member starts from it with every key, revision bumped where etcdutl can',
    async (_label, c) => {
      const snapFile = await snapshotOf(c.server.bin);
      const bins: Record<string, string> = { etcdctl: join(c.tools.bin, 'etcdctl') };
      if (existsSync(join(c.tools.bin, 'etcdutl'))) bins.etcdutl = join(c.tools.bin, 'etcdutl');
      const target = join(dir, `m-${c.server.version}-${c.tools.version}`);
      const peerPort = await freePort();
      const r = await runScript(
        'restore-member.sh',
        [
          snapFile.file,
          snapFile.sha,
          'r1',
          `r1=http://127.0.0.1:${peerPort}`,
          'tok-v',
          `http://127.0.0.1:${peerPort}`,
          target,
          c.server.version,
        ],
        await toolPath(bins),
      );
      expect(r.code, r.stderr).toBe(0);
      const e = await startEtcd(c.server.bin, target, peerPort, 'tok-v');
      try {
        const keys = (await e.ctl('get', '--prefix', '/registry/', '--keys-only')).split('\n').filter(Boolean);
        expect(keys).toHaveLength(20);
        const status = JSON.parse(await e.ctl('endpoint', 'status', '-w', 'json')) as {
          Status: { header: { revision: number }; version: string };
        }[];
        expect(status[0].Status.version).toBe(c.server.version);
        // kubernetes#131115: with etcdutl (etcd >= 3.5 tools) the revision jumps ahead
        if (bins.etcdutl) expect(status[0].Status.header.revision).toBeGreaterThan(1_000_000_000);
        else expect(status[0].Status.header.revision).toBeLessThan(1000);
      } finally {
        await e.stop();
      }
    },
    60_000,
  );

  const refusals: { label: string; server: { version: string }; only: Record<string, string>; why: RegExp }[] = [
    ...(e34 && e35
      ? [
          {
            label: 'etcdctl 3.4 alone',
            server: e35,
            only: { etcdctl: join(e34.bin, 'etcdctl') },
            why: /only etcdctl 3\.4/,
          },
        ]
      : []),
    ...(e34 && e36
      ? [
          {
            label: 'etcdctl 3.4 alone',
            server: e36,
            only: { etcdctl: join(e34.bin, 'etcdctl') },
            why: /only etcdctl 3\.4/,
          },
        ]
      : []),
    ...(e35 && e36
      ? [
          {
            label: 'etcdutl 3.5',
            server: e36,
            only: { etcdutl: join(e35.bin, 'etcdutl') },
            why: /etcdutl 3\.5\.\d+ is older/,
          },
        ]
      : []),
  ];
  it.each(refusals.map((c) => [`a restore for etcd ${c.server.version} with ${c.label}`, c] as const))(
    'refuses %s, before writing anything, and says how to fix it',
    async (_label, c) => {
      const target = join(dir, `refused-${c.server.version}`);
      const r = await runScript(
        'restore-member.sh',
        [snap, sha, 'r1', 'r1=http://127.0.0.1:23800', 't', 'http://127.0.0.1:23800', target, c.server.version],
        await toolPath(c.only),
      );
      expect(r.code).toBe(5);
      expect(r.stderr).toMatch(c.why);
      expect(r.stderr).toContain(`Install etcd tools ${c.server.version}`);
      await expect(fs.stat(target)).rejects.toThrow();
      await expect(fs.stat(`${target}.part`)).rejects.toThrow();
    },
  );
});

describe('restore-member.sh server version argument', () => {
  it('is data, and anything but x.y[.z] is refused before anything is written', async () => {
    const target = join(dir, 'bad-version');
    const r = await runScript('restore-member.sh', [
      snap,
      sha,
      'r1',
      'r1=http://127.0.0.1:23800',
      't',
      'http://127.0.0.1:23800',
      target,
      '3.6; touch pwned3',
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('bad server version');
    await expect(fs.stat(join(process.cwd(), 'pwned3'))).rejects.toThrow();
    await expect(fs.stat(target)).rejects.toThrow();
  });
});

describe('/etc/default/etcd spelling against each real etcd', () => {
  it.each(matrix.filter((m) => m.etcd).map((m) => [m.etcd!.version, m.etcd!] as const))(
    'etcd %s knows every ETCD_* setting the app writes for it, none of them deprecated',
    async (_v, e) => {
      const env = renderEtcdEnv(
        { name: 'e1', address: '198.18.0.9', dataDir: '/var/lib/etcd' },
        { initialCluster: 'e1=https://198.18.0.9:2380', token: 't', state: 'new' },
        e.version,
      );
      const help = await new Promise<string>((resolve) =>
        execFile(join(e.bin, 'etcd'), ['--help'], (_err, out, err) => resolve(`${out}\n${err}`)),
      );
      const lines = help.split('\n');
      for (const key of parseEtcdEnv(env).keys()) {
        const flag = `--${key.slice(5).toLowerCase().replace(/_/g, '-')}`;
        const at = lines.findIndex((l) => new RegExp(`^\\s+${flag}(\\s|$)`).test(l));
        expect(at, `etcd ${e.version} has no ${flag} (${key})`).toBeGreaterThanOrEqual(0);
        const next = lines.findIndex((l, i) => i > at && /^\s+--/.test(l));
        expect(lines.slice(at, next).join(' '), `${flag} is deprecated in etcd ${e.version}`).not.toMatch(
          /deprecated/i,
        );
      }
    },
  );
});

describe('systemd-unit.sh', () => {
  async function fakeSystemctl() {
    const bin = await fs.mkdtemp(join(dir, 'sysd-'));
    const calls = join(bin, 'calls');
    await fs.writeFile(
      join(bin, 'systemctl'),
      `#!/bin/bash\nprintf '%s\\n' "$*" >> ${calls}\n[ "$1" = is-active ] && echo activating\nexit 0\n`,
      { mode: 0o755 },
    );
    return {
      env: { ...process.env, PATH: `${bin}:${process.env.PATH}` },
      calls: async () => (await fs.readFile(calls, 'utf8')).trim().split('\n'),
    };
  }

  it('queues a start or restart with --no-block (Type=notify: one member alone never gets ready)', async () => {
    for (const action of ['start', 'restart']) {
      const s = await fakeSystemctl();
      const r = await runScript('systemd-unit.sh', [action, 'etcd', '--no-block'], s.env);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain('KES_ACTIVE=activating');
      expect(await s.calls()).toEqual(['daemon-reload', `--no-block ${action} etcd`, 'is-active etcd']);
    }
    const plain = await fakeSystemctl();
    expect((await runScript('systemd-unit.sh', ['stop', 'etcd'], plain.env)).code).toBe(0);
    expect(await plain.calls()).toEqual(['daemon-reload', 'stop etcd', 'is-active etcd']);
  });

  it('refuses other units and unknown options', async () => {
    const s = await fakeSystemctl();
    // only etcd, the runtime (containerd, kubelet) and the load balancers are the app's to manage
    expect((await runScript('systemd-unit.sh', ['start', 'sshd', '--no-block'], s.env)).code).toBe(2);
    expect((await runScript('systemd-unit.sh', ['restart', 'kubelet; id'], s.env)).code).toBe(2);
    expect((await runScript('systemd-unit.sh', ['start', 'etcd', '--now; id'], s.env)).code).toBe(2);
  });
});

describe('install-etcd-tools.sh', () => {
  const machine = process.arch === 'arm64' ? 'arm64' : 'amd64';
  async function archive(version: string, arch: string, from: string): Promise<{ file: string; sha: string }> {
    const root = await fs.mkdtemp(join(dir, 'arc-'));
    const top = `etcd-v${version}-linux-${arch}`;
    await fs.mkdir(join(root, top));
    await fs.copyFile(join(from, 'etcdctl'), join(root, top, 'etcdctl')); // one binary keeps the archive small
    const file = join(root, `${top}.tar.gz`);
    await run('tar', ['-czf', file, '-C', root, top]);
    return { file, sha: (await run('sha256sum', [file])).stdout.split(' ')[0] };
  }

  it.skipIf(!e36)("installs a release built for this node's CPU and refuses one built for another", async () => {
    const other = machine === 'amd64' ? 'arm64' : 'amd64';
    const wrong = await archive(e36!.version, other, e36!.bin);
    const dest = join(dir, 'bin-install');
    const refused = await runScript('install-etcd-tools.sh', [wrong.file, wrong.sha, dest]);
    expect(refused.code).toBe(6);
    expect(refused.stderr).toMatch(new RegExp(`built for ${other}`));
    await expect(fs.stat(join(dest, 'etcdctl'))).rejects.toThrow();
    const right = await archive(e36!.version, machine, e36!.bin);
    const ok = await runScript('install-etcd-tools.sh', [right.file, right.sha, dest]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain('KES_INSTALLED=etcdctl');
    expect(ok.stdout).toContain(`KES_VERSION=${e36!.version}`);
  });
});

describe('snapshot-status.sh with the real tools of each version', () => {
  const cases = [e34, e35, e36].filter((e) => !!e).map((e) => [e!.version, e!] as const);
  it.each(cases)('etcd %s: describes a snapshot with the tools a node of that version has', async (_v, e) => {
    const s = await snapshotOf(e.bin);
    const tools: Record<string, string> = { etcdctl: join(e.bin, 'etcdctl') };
    if (existsSync(join(e.bin, 'etcdutl'))) tools.etcdutl = join(e.bin, 'etcdutl');
    const r = await runScript('snapshot-status.sh', [s.file, s.sha], await toolPath(tools));
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(/KES_STATUS=(.*)/.exec(r.stdout)![1]).totalKey).toBeGreaterThanOrEqual(20);
  });
});

describe('etcd tools by the absolute paths the app passes (KES_ETCDCTL, KES_ETCDUTL)', () => {
  // sudo's secure_path often lacks /usr/local/bin, where the app installs tools: the app passes the
  // paths it discovered on the node, and the scripts call those, not whatever PATH finds.
  const server = e36 ?? e35;
  it.skipIf(!server)('restore-member.sh restores with the etcdutl it is given, though PATH has none', async () => {
    const s = server!;
    const snapFile = await snapshotOf(s.bin);
    const args = (target: string, peer: number) => [
      snapFile.file,
      snapFile.sha,
      'r1',
      `r1=http://127.0.0.1:${peer}`,
      'tok-p',
      `http://127.0.0.1:${peer}`,
      target,
      s.version,
    ];
    const bare = await toolPath({}); // no etcd tools on PATH (at most the system's etcdctl 3.4 elsewhere)
    const without = await runScript('restore-member.sh', args(join(dir, 'no-path'), 23801), bare);
    expect(without.code).toBe(5);
    const target = join(dir, 'by-path');
    const peer = await freePort();
    const r = await runScript('restore-member.sh', args(target, peer), {
      ...bare,
      KES_ETCDUTL: join(s.bin, 'etcdutl'),
      KES_ETCDCTL: join(s.bin, 'etcdctl'),
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`restoring with etcdutl ${s.version}`);
    const e = await startEtcd(s.bin, target, peer, 'tok-p');
    try {
      expect((await e.ctl('get', '--prefix', '/registry/', '--keys-only')).split('\n').filter(Boolean)).toHaveLength(
        20,
      );
    } finally {
      await e.stop();
    }
  });

  it.skipIf(!e34)('snapshot-save.sh and snapshot-status.sh use the etcdctl they are given, not PATH', async () => {
    // an etcdctl in a folder no PATH names, noting each call (and dropping the empty TLS flags a
    // plain-HTTP test etcd does not need)
    const bin = await fs.mkdtemp(join(dir, 'tools-'));
    const calls = join(bin, 'calls');
    await fs.writeFile(
      join(bin, 'etcdctl'),
      `#!/bin/bash\necho called >> ${calls}\nargs=()\nfor a in "$@"; do case "$a" in --cacert=|--cert=|--key=) ;; *) args+=("$a");; esac; done\nexec ${join(e34!.bin, 'etcdctl')} "\${args[@]}"\n`,
      { mode: 0o755 },
    );
    const env = { ...(await toolPath({})), KES_ETCDCTL: join(bin, 'etcdctl') };
    const out = join(dir, 'by-path.db');
    const saved = await runScript('snapshot-save.sh', [etcd.endpoint, '', '', '', out], env);
    expect(saved.code, saved.stderr).toBe(0);
    expect(JSON.parse(/KES_STATUS=(.*)/.exec(saved.stdout)![1]).totalKey).toBeGreaterThanOrEqual(20);
    const st = await runScript('snapshot-status.sh', [out, '--no-sha256'], env);
    expect(st.code, st.stderr).toBe(0);
    expect(JSON.parse(/KES_STATUS=(.*)/.exec(st.stdout)![1]).totalKey).toBeGreaterThanOrEqual(20);
    // snapshot save, endpoint status and snapshot status, then snapshot status again
    expect((await fs.readFile(calls, 'utf8')).trim().split('\n')).toHaveLength(4);
  });

  it.skipIf(!e34)(
    'a path that no longer holds the tool is said on stderr, and the usual places are searched',
    async () => {
      const env = {
        ...(await toolPath({ etcdctl: join(e34!.bin, 'etcdctl') })),
        KES_ETCDCTL: join(dir, 'gone/etcdctl'),
      };
      const r = await runScript('snapshot-status.sh', [snap, '--no-sha256'], env);
      expect(r.stderr).toContain(`no etcdctl at ${join(dir, 'gone/etcdctl')} any more`);
      expect(r.code, r.stderr).toBe(0);
    },
  );
});

describe('a batch of scripts in one run (the health view: one round trip per node)', () => {
  // Each part runs in its own bash with its own text, so one part's `exit` or `set -e` ends only
  // that part; each part's stdout, stderr and exit code come back apart, arguments stay data.
  const runBatch = (program: string) =>
    new Promise<{ stdout: string; stderr: string }>((resolve) => {
      const child = execFile('bash', ['-s'], (_err, stdout, stderr) => resolve({ stdout, stderr }));
      child.stdin!.end(program);
    });

  it('splits each part’s output and exit code; a part’s exit does not end the others', async () => {
    const nonce = 'a1b2c3d4e5f60718';
    const hostile = `x'y $(touch ${join(dir, 'pwned')}) \`id\` KES_SCRIPT_${nonce}`;
    const parts = [
      { text: 'echo one; echo "err $1" >&2; exit 7', args: ['a b'], env: [] },
      { text: 'printf "%s" "$1"', args: [hostile], env: [] },
      { text: 'set -e\nfalse\necho never', args: [], env: [] },
      { text: 'echo "$KES_ETCDCTL"', args: [], env: ['KES_ETCDCTL=/opt/x/etcdctl'] },
    ];
    const { stdout, stderr } = await runBatch(batchProgram(parts, nonce));
    const r = splitBatch(stdout, stderr, parts.length, nonce);
    expect(r).toEqual([
      { code: 7, stdout: 'one\n', stderr: 'err a b\n' },
      { code: 0, stdout: hostile, stderr: '' },
      { code: 1, stdout: '', stderr: '' },
      { code: 0, stdout: '/opt/x/etcdctl\n', stderr: '' },
    ]);
    expect(existsSync(join(dir, 'pwned'))).toBe(false);
    expect(() => batchProgram([{ text: `echo\nKES_SCRIPT_${nonce}\n`, args: [], env: [] }], nonce)).toThrow(
      /delimiter/,
    );
  });

  it('a part that needs an earlier one runs only when that one succeeded (else code 125, not run)', async () => {
    const nonce = 'feedfacecafe0001';
    const parts = [
      { text: 'exit 4', args: [], env: [] },
      { text: 'echo ran-after-failure', args: [], env: [], needs: 0 },
      { text: 'echo ok', args: [], env: [] },
      { text: 'echo ran-after-success', args: [], env: [], needs: 2 },
    ];
    const { stdout, stderr } = await runBatch(batchProgram(parts, nonce));
    const r = splitBatch(stdout, stderr, parts.length, nonce);
    expect(r.map((p) => [p.code, p.stdout])).toEqual([
      [4, ''],
      [125, ''],
      [0, 'ok\n'],
      [0, 'ran-after-success\n'],
    ]);
    expect(r[1].stderr).toMatch(/skipped: part 0 failed/);
    expect(() => batchProgram([{ text: 'true', args: [], env: [], needs: 0 }], nonce)).toThrow(/does not run before/);
  });

  it('a part cut short leaves code null and what it printed so far', () => {
    const n = '0011223344556677';
    const r = splitBatch(`KES_PART_${n}=0\nok\n\nKES_PART_END_${n}=0:0\nKES_PART_${n}=1\nhalf`, '', 3, n);
    expect(r.map((p) => [p.code, p.stdout])).toEqual([
      [0, 'ok\n'],
      [null, 'half'],
      [null, ''],
    ]);
  });

  it('etcdctl.sh says at once that nothing listens on this node’s own member (no dial timeout)', async () => {
    const port = await freePort();
    const t0 = Date.now();
    const r = await runScript('etcdctl.sh', [`https://127.0.0.1:${port}`, 'ca', 'crt', 'key', 'member', 'list']);
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(new RegExp(`nothing listens on 127\\.0\\.0\\.1:${port}`));
    // a listening member is asked as before
    const ok = await runScript('etcdctl.sh', [etcd.endpoint, '', '', '', 'endpoint', 'health'], {
      ...process.env,
    });
    expect(ok.stderr).not.toMatch(/nothing listens/);
  });
});
