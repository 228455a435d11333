// A throwaway single-member etcd on loopback (Debian etcd-server), for tests that need a real
// snapshot file. Plain HTTP on 127.0.0.1 with random ports; killed and deleted afterwards.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

export interface LocalEtcd {
  endpoint: string;
  dir: string;
  etcdctl(...args: string[]): Promise<string>;
  stop(): Promise<void>;
}

export async function startLocalEtcd(): Promise<LocalEtcd> {
  const dir = await fs.mkdtemp(join(tmpdir(), 'kes-etcd-'));
  const [cp, pp] = [await freePort(), await freePort()];
  const endpoint = `http://127.0.0.1:${cp}`;
  const proc: ChildProcess = spawn(
    'etcd',
    [
      '--name=t',
      `--data-dir=${join(dir, 'data')}`,
      `--listen-client-urls=${endpoint}`,
      `--advertise-client-urls=${endpoint}`,
      `--listen-peer-urls=http://127.0.0.1:${pp}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${pp}`,
      `--initial-cluster=t=http://127.0.0.1:${pp}`,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ETCD_UNSUPPORTED_ARCH: '' } },
  );
  let stderr = '';
  proc.stderr!.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
  const etcdctl = async (...args: string[]) =>
    (
      await run('etcdctl', [`--endpoints=${endpoint}`, ...args], {
        env: { ...process.env, ETCDCTL_API: '3' },
        maxBuffer: 64 << 20,
      })
    ).stdout;
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      await etcdctl('endpoint', 'health');
      break;
    } catch (e) {
      if (Date.now() > deadline || proc.exitCode !== null) {
        proc.kill('SIGKILL');
        throw new Error(`local etcd did not start: ${(e as Error).message}\n${stderr}`, { cause: e });
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    endpoint,
    dir,
    etcdctl,
    async stop() {
      proc.kill('SIGTERM');
      await new Promise((r) => (proc.exitCode !== null ? r(null) : proc.once('exit', r)));
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}
