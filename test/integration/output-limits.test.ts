// Intent: remote command output is bounded (issue 9, items 13 and 14) — checked against the real
// OpenSSH server of the SSH tests: a 32 MB single line does not stall the main process, output
// past the per-command cap stops the command with a clear error, and a failing script that returns
// a secret (the etcd CA key) never puts that secret in its error or the job log on disk.
import { execFileSync } from 'node:child_process';
import { promises as fs, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterOps } from '../../src/main/cluster/ops';
import type { EtcdDeps } from '../../src/main/etcd/deps';
import { readCa } from '../../src/main/etcd/external';
import { JobHistory } from '../../src/main/jobs/history';
import { JobRunner } from '../../src/main/jobs/runner';
import type { JobDef } from '../../src/main/jobs/types';
import { runScript, ScriptLibrary } from '../../src/main/remote/scripts';
import { DEFAULT_MAX_OUTPUT_BYTES } from '../../src/main/ssh/exec';
import { SshError, type SshTarget } from '../../src/main/ssh/types';
import { makePool, target, tempDir, trustSshd, type PoolHarness } from './fixtures/harness';
import { makeKey } from './fixtures/keys';
import { startSshd, type Sshd } from './fixtures/sshd';

const SCRIPTS = join(__dirname, '../../resources/scripts');

let dir: string;
let sshd: Sshd;
let h: PoolHarness;
let t: () => SshTarget;

beforeAll(async () => {
  dir = await tempDir();
  const key = await makeKey(dir, 'id_ed25519');
  sshd = await startSshd({ authorizedKeys: [key.publicKey] });
  h = await makePool(dir);
  await trustSshd(h.hostKeys, sshd);
  const node = target(sshd, { method: 'key-file', keyPath: key.path });
  t = () => node;
});

afterAll(async () => {
  await h?.pool.closeAll();
  await sshd?.stop();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

/** A script library whose only script is `name` with `text` (as a user's edited copy). */
async function library(name: string, text: string): Promise<ScriptLibrary> {
  const defaults = await fs.mkdtemp(join(dir, 'defaults-'));
  const user = await fs.mkdtemp(join(dir, 'user-'));
  await fs.writeFile(join(defaults, name), text);
  await fs.writeFile(join(user, name), text);
  return new ScriptLibrary(defaults, user);
}

/** Longest stretch the event loop was blocked while `fn` ran (ms), sampled every 5 ms. */
async function maxBlockMs<T>(fn: () => Promise<T>): Promise<{ value: T; blockMs: number }> {
  const h = monitorEventLoopDelay({ resolution: 5 });
  let worst = 0;
  let last = performance.now();
  const tick = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last);
    last = now;
  }, 5);
  h.enable();
  try {
    const value = await fn();
    return { value, blockMs: Math.max(worst, h.max / 1e6) };
  } finally {
    clearInterval(tick);
    h.disable();
  }
}

describe('output limits', () => {
  it('logs a 32 MB single line as one truncated line without blocking the main process for long', async () => {
    const lib = await library('big-line.sh', `head -c ${32 << 20} /dev/zero | tr '\\0' a; echo; echo after\n`);
    const lines: { stream: string; text: string }[] = [];
    const { value: res, blockMs } = await maxBlockMs(() =>
      runScript(h.pool, t(), lib, 'big-line.sh', [], { log: (stream, text) => lines.push({ stream, text }) }),
    );
    console.log(`32 MB single line: longest event-loop block ${blockMs.toFixed(1)} ms`);
    expect(res.code).toBe(0);
    expect(res.stdout.length).toBe((32 << 20) + '\nafter\n'.length);
    const out = lines.filter((l) => l.stream === 'stdout');
    expect(out).toHaveLength(2);
    expect(out[0].text.length).toBeLessThan(64 * 1024);
    expect(out[0].text).toMatch(/^a+… \[line truncated: \d+ more bytes\]$/);
    expect(out[1].text).toBe('after');
    expect(blockMs).toBeLessThan(500);
  });

  it('stops a command whose output passes the cap, with an error that says so', async () => {
    const started = Date.now();
    const err = await h.pool
      .exec(t(), 'head -c 50000000 /dev/zero; echo finished > /dev/null; sleep 30', { maxOutputBytes: 4 << 20 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SshError);
    expect((err as SshError).code).toBe('OUTPUT_TOO_LARGE');
    expect((err as SshError).message).toMatch(/more than 4 MiB of output.*stopped/);
    expect(Date.now() - started).toBeLessThan(15_000);
    // The connection stays usable.
    expect((await h.pool.exec(t(), 'echo ok')).stdout).toBe('ok\n');
  });

  it('applies a 64 MiB default cap to script runs, killing the remote command', async () => {
    expect(DEFAULT_MAX_OUTPUT_BYTES).toBe(64 * 1024 * 1024);
    const mark = `/tmp/kes-output-cap-${process.pid}`;
    const lib = await library(
      'flood.sh',
      `rm -f ${mark}; head -c ${80 << 20} /dev/zero | tr '\\0' 'b'; sleep 2; touch ${mark}\n`,
    );
    const err = await runScript(h.pool, t(), lib, 'flood.sh', []).catch((e: unknown) => e);
    expect((err as SshError).code).toBe('OUTPUT_TOO_LARGE');
    expect((err as Error).message).toMatch(/more than 64 MiB of output/);
    await new Promise((r) => setTimeout(r, 3000));
    // Killed: it never got past its sleep.
    await expect(fs.access(mark)).rejects.toThrow();
  });
});

describe('secret output', () => {
  it('a failing CA read (key on stdout, empty stderr) leaves no key material in the error or the job log', async () => {
    // A real kubeadm-style etcd CA, in a folder standing in for /etc/kubernetes/pki/etcd.
    const pki = await fs.mkdtemp(join(dir, 'pki-'));
    execFileSync('openssl', ['genrsa', '-traditional', '-out', join(pki, 'ca.key'), '2048'], { stdio: 'ignore' });
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-new',
        '-key',
        join(pki, 'ca.key'),
        '-subj',
        '/CN=etcd-ca',
        '-days',
        '1',
        '-out',
        join(pki, 'ca.crt'),
      ],
      { stdio: 'ignore' },
    );
    const keyPem = readFileSync(join(pki, 'ca.key'), 'utf8');
    const keyB64 = Buffer.from(keyPem).toString('base64');
    // The shipped collect-files.sh, reading from that folder, that fails at the end without a word
    // on stderr (as a script killed or tripping `set -e` on a silent command would).
    const real = readFileSync(join(SCRIPTS, 'collect-files.sh'), 'utf8');
    const lib = await library(
      'collect-files.sh',
      `set -- "\${@/\\/etc\\/kubernetes\\/pki\\/etcd/${pki.replace(/\//g, '\\/')}}"\n${real}\nfalse\n`,
    );
    const node = t();
    const deps = {
      ops: new ClusterOps({ inventory: null as never, pool: h.pool, scripts: lib, targetOf: () => node }),
      inventory: {
        get: () => ({
          nodes: [{ id: 'm1', name: 'master-1' }],
          facts: { etcdCaKeyOn: ['master-1'], masters: [{ nodeId: 'm1', name: 'master-1' }] },
        }),
      },
      targetOf: () => node,
    } as unknown as EtcdDeps;

    const jobsDir = await fs.mkdtemp(join(dir, 'data-'));
    const history = await JobHistory.open(jobsDir);
    const runner = new JobRunner({ history });
    const def: JobDef<null> = {
      kind: 'test',
      title: 'read the CA',
      destructive: false,
      clusterId: 'c1',
      clusterName: 'c1',
      steps: [
        { id: 'read-ca', title: 'Read the etcd CA', run: async (_c, s) => void (await readCa(deps, 'c1', s.log)) },
      ],
    };
    const rec = await runner.run(await runner.plan(def, null), def, null);
    await history.flush();
    expect(rec.status).toBe('failed');
    const onDisk = await fs.readFile(join(jobsDir, 'jobs', `${rec.id}.json`), 'utf8');
    // The failure is explained (which script, which node, exit code) …
    expect(onDisk).toMatch(/collect-files\.sh on node-\S+ exited with 1/);
    // … and nothing of the key is there: no PEM, no base64 of it, no long base64 run at all.
    for (const text of [onDisk, rec.error ?? '', JSON.stringify(rec.log)]) {
      expect(text).not.toContain('PRIVATE KEY');
      expect(text).not.toContain(keyB64.slice(0, 40));
      expect(text).not.toContain(keyPem.split('\n')[1]);
      expect(text).not.toMatch(/[A-Za-z0-9+/]{80,}/);
    }
  });
});
