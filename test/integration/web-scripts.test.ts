// Intent: the web-mode commands the README names really start the server — `npm run web:serve`
// (serves the existing build) and `npm run web` (builds, then serves) — honour `--data-dir`/`--port`
// and KES_DATA_DIR/KES_PORT, print the one-time URL, serve the UI behind it, survive the malformed
// upgrade request that used to crash web mode, and stop cleanly on SIGTERM.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ensureBuilt } from '../e2e/support/build';
import { alive, descendants, isZombie, killQuietly, track, waitFor } from './fixtures/procs';

const ROOT = resolve(__dirname, '..', '..');
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  // scripts/test.sh builds before this project; build here too when run on its own.
  await ensureBuilt();
}, 120_000);

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A port that was free a moment ago (loopback only). */
async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as { port: number };
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

interface Started {
  child: ChildProcess;
  url: string;
  stdout(): string;
  /** SIGTERM to the process group; resolves with the pids that had to be SIGKILLed afterwards. */
  stop(): Promise<number[]>;
}

/** `npm run <script> [-- args]` in its own process group, with a throwaway HOME and data dir. */
async function npmRun(script: string, args: string[], env: Record<string, string>, waitMs: number): Promise<Started> {
  const home = await fs.mkdtemp(join(tmpdir(), 'kes-npm-home-'));
  const child = spawn('npm', ['run', '--silent', script, ...(args.length ? ['--', ...args] : [])], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH,
      LANG: process.env.LANG ?? 'C.UTF-8',
      HOME: home,
      KES_SECRET_BACKEND: 'memory',
      ELECTRON_SKIP_BINARY_DOWNLOAD: '1',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // own process group: npm, its shell and node stop together
  });
  const untrack = track(child.pid!);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-16_000)));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  let stopped: Promise<number[]> | null = null;
  const stop = (): Promise<number[]> =>
    (stopped ??= (async () => {
      // npm, its shell and node: collected before the signal, since orphans lose their parent link.
      const tree = [child.pid!, ...descendants(child.pid!)];
      try {
        process.kill(-child.pid!, 'SIGTERM');
      } catch {
        /* already gone */
      }
      const running = () => tree.filter((p) => alive(p) && !isZombie(p));
      await waitFor(() => running().length === 0, 5000, 'the web server to stop').catch(() => undefined);
      const leftovers = running();
      for (const p of leftovers) killQuietly(p, 'SIGKILL');
      untrack();
      await fs.rm(home, { recursive: true, force: true });
      return leftovers;
    })());
  cleanups.push(async () => void (await stop()));
  const url = await new Promise<string>((resolveUrl, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`npm run ${script} printed no URL in ${waitMs} ms\n${stdout}\n${stderr}`)),
      waitMs,
    );
    child.stdout!.on('data', () => {
      const m = /^\s*(http:\/\/127\.0\.0\.1:\d+\/\?token=[A-Za-z0-9_-]+)\s*$/m.exec(stdout);
      if (m) {
        clearTimeout(timer);
        resolveUrl(m[1]);
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`npm run ${script} exited (${code}) before printing a URL\n${stdout}\n${stderr}`));
    });
  });
  return { child, url, stdout: () => stdout, stop };
}

/** Open the printed URL like a browser: token → cookie + redirect, then the page itself. */
async function openPrintedUrl(url: string): Promise<string> {
  const r = await fetch(url, { redirect: 'manual' });
  expect(r.status).toBe(302);
  const cookie = r.headers.get('set-cookie')!.split(';')[0];
  const page = await fetch(new URL(r.headers.get('location')!, url), { headers: { cookie } });
  expect(page.status).toBe(200);
  const html = await page.text();
  expect(html).toContain('<div id="app">');
  return html;
}

/** The request that used to crash web mode, on a raw socket; resolves with the answer. */
function sendCrashRequest(port: number): Promise<string> {
  return new Promise((resolveAnswer) => {
    let answer = '';
    const s = connect(port, '127.0.0.1', () =>
      s.write(
        `GET http://[ HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`,
      ),
    );
    const done = () => {
      clearTimeout(timer);
      s.destroy();
      resolveAnswer(answer);
    };
    const timer = setTimeout(done, 2000);
    s.on('data', (d) => (answer += d.toString()));
    s.on('close', done);
    s.on('error', done);
  });
}

describe('web-mode npm scripts', () => {
  it('the package.json scripts run the entry the build writes (out/main/web.js)', async () => {
    const pkg = JSON.parse(await fs.readFile(join(ROOT, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };
    for (const name of ['web', 'web:serve']) {
      const entry = /node (?:--\S+ )*(\S+\.js)/.exec(pkg.scripts[name])?.[1];
      expect(entry, `${name}: ${pkg.scripts[name]}`).toBe('out/main/web.js');
      expect(existsSync(join(ROOT, entry!))).toBe(true);
    }
  });

  it('the app starts with its V8 heap option, and every benchmark measures it that way', async () => {
    // Without --initial-old-space-size V8 runs a full GC every few MB of a streamed snapshot
    // (README, benchmarks); Node and Electron take the option only on the command line.
    const pkg = JSON.parse(await fs.readFile(join(ROOT, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };
    const heap = '--initial-old-space-size=96';
    const launchers = Object.keys(pkg.scripts).filter((n) => /^(web|web:serve|bench(:.*)?)$/.test(n));
    expect(launchers.length).toBeGreaterThanOrEqual(8);
    for (const name of launchers) expect(pkg.scripts[name], name).toContain(`node ${heap} `);
    const builder = parse(await fs.readFile(join(ROOT, 'build/electron-builder.yml'), 'utf8')) as {
      linux: { executableArgs?: string[] };
    };
    expect(builder.linux.executableArgs).toContain(`--js-flags=${heap}`);
  });

  it('`npm run web:serve -- --data-dir DIR --port N` serves the UI at the printed URL and stops on SIGTERM', async () => {
    const data = await fs.mkdtemp(join(tmpdir(), 'kes-web-serve-'));
    cleanups.push(() => fs.rm(data, { recursive: true, force: true }));
    const port = await freePort();
    const app = await npmRun('web:serve', ['--data-dir', data, '--port', String(port)], {}, 30_000);
    expect(new URL(app.url).port).toBe(String(port));
    expect(app.stdout()).toContain(`data in ${data}`);
    await openPrintedUrl(app.url);

    // One malformed upgrade request used to end the process; it must be refused and the server live on.
    expect(await sendCrashRequest(port)).toMatch(/^HTTP\/1\.1 4\d\d /);
    const alive = await fetch(`http://127.0.0.1:${port}/`);
    expect(alive.status).toBe(401);
    expect(app.child.exitCode).toBeNull();

    expect(await app.stop()).toEqual([]);
    await expect(fetch(`http://127.0.0.1:${port}/`)).rejects.toThrow();
  });

  it('`npm run web` builds, then serves with KES_DATA_DIR and KES_PORT', async () => {
    const data = await fs.mkdtemp(join(tmpdir(), 'kes-web-'));
    cleanups.push(() => fs.rm(data, { recursive: true, force: true }));
    const port = await freePort();
    const app = await npmRun('web', [], { KES_DATA_DIR: data, KES_PORT: String(port) }, 90_000);
    expect(new URL(app.url).port).toBe(String(port));
    expect(app.stdout()).toContain(`data in ${data}`);
    await openPrintedUrl(app.url);
    expect(await app.stop()).toEqual([]);
    await expect(fetch(`http://127.0.0.1:${port}/`)).rejects.toThrow();
  }, 120_000);
});
