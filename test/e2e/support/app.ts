// Drives the app the way a user of `npm run web` does: starts `node out/main/web.js` with a
// throwaway data dir and HOME, reads the one-time URL it prints, and opens it in Debian's
// Chromium through playwright-core. Every process started here is stopped by `stop()`/`close()`
// and, as a last resort, when the test process exits. Only 127.0.0.0/8 is ever contacted.
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { killTree, track, waitExit } from '../../integration/fixtures/procs';
import { ROOT, ensureBuilt } from './build';

export const RESULTS_DIR = resolve(ROOT, 'test-results');

export interface WebApp {
  /** The one-time URL printed by the server (token included). */
  url: string;
  origin: string;
  dataDir: string;
  home: string;
  /** Everything the server wrote to stderr so far (for failure messages). */
  log(): string;
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Prepare the data dir (e.g. write a corrupt file) before the server starts. */
  prepare?: (dataDir: string, home: string) => Promise<void>;
  env?: Record<string, string>;
}

export async function tempDir(prefix = 'kes-e2e-'): Promise<string> {
  return fs.mkdtemp(join(tmpdir(), prefix));
}

export async function startWebApp(opts: StartOptions = {}): Promise<WebApp> {
  await ensureBuilt();
  const base = await tempDir();
  const dataDir = join(base, 'data');
  const home = join(base, 'home');
  await fs.mkdir(dataDir, { recursive: true });
  await fs.mkdir(join(home, '.ssh'), { recursive: true, mode: 0o700 });
  await opts.prepare?.(dataDir, home);

  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    LANG: process.env.LANG ?? 'C.UTF-8',
    HOME: home,
    SHELL: '/bin/bash',
    TERM: 'xterm-256color',
    KES_SECRET_BACKEND: 'memory',
    ...opts.env,
  };
  const child: ChildProcess = spawn(process.execPath, [join(ROOT, 'out/main/web.js'), '--data-dir', dataDir], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const untrack = track(child.pid!);
  let stderr = '';
  let stdout = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-64 * 1024);
  });

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await waitExit(child, 5000);
      // Still there (or its pty children are): take the whole tree down.
      killTree(child.pid!);
    }
    untrack();
    await fs.rm(base, { recursive: true, force: true }).catch(() => undefined);
  };

  try {
    const url = await new Promise<string>((resolveUrl, reject) => {
      const timer = setTimeout(() => reject(new Error(`web server printed no URL in 20 s\n${stderr}`)), 20_000);
      child.stdout!.on('data', (d: Buffer) => {
        stdout += d.toString();
        const m = /^KES_WEB_URL=(\S+)$/m.exec(stdout);
        if (m) {
          clearTimeout(timer);
          resolveUrl(m[1]);
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`web server exited (${code}) before printing its URL\n${stderr}`));
      });
    });
    const u = new URL(url);
    if (u.hostname !== '127.0.0.1') throw new Error(`web server must listen on 127.0.0.1, printed ${url}`);
    return { url, origin: u.origin, dataDir, home, log: () => stderr, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
  '--disable-domain-reliability',
  '--no-pings',
  // Belt and braces for the loopback-only rule: no host name resolves to anything.
  '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
];

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
}

export interface Session {
  context: BrowserContext;
  page: Page;
  /** Uncaught page errors and console errors, to assert the UI stayed healthy. */
  errors: string[];
}

/** A fresh context (own cookies and storage) with the app opened through its one-time URL. */
export async function openApp(
  browser: Browser,
  app: WebApp,
  viewport = { width: 1440, height: 960 },
): Promise<Session> {
  const context = await browser.newContext({ viewport });
  // Only our own server may be reached from the page.
  await context.route(
    (url) => !url.protocol.startsWith('data') && url.origin !== app.origin,
    (route) => route.abort('blockedbyclient'),
  );
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  await page.goto(app.url);
  await page.getByTestId('status-link').and(page.locator('[data-state="open"]')).waitFor({ timeout: 15_000 });
  return { context, page, errors };
}

export async function screenshot(page: Page, name: string): Promise<string> {
  await fs.mkdir(RESULTS_DIR, { recursive: true });
  const path = join(RESULTS_DIR, name);
  await page.screenshot({ path });
  return path;
}

/** Text currently on the screen of the visible terminal (xterm's DOM renderer rows). */
export async function terminalText(page: Page): Promise<string> {
  return page.locator('[data-testid="terminal-view"][data-active="true"] .xterm-rows').innerText();
}

/** Wait until the visible terminal shows `needle`; returns the screen text. */
export async function waitForTerminalText(page: Page, needle: string | RegExp, timeoutMs = 20_000): Promise<string> {
  const end = Date.now() + timeoutMs;
  let text = '';
  while (Date.now() < end) {
    text = await terminalText(page).catch(() => '');
    if (typeof needle === 'string' ? text.includes(needle) : needle.test(text)) return text;
    await page.waitForTimeout(100);
  }
  throw new Error(`terminal never showed ${String(needle)}; screen was:\n${text}`);
}

/** A node nothing can reach (port 1): enough for plans and screens of offline browser tests. */
export function offlineNode(id: string, name: string, roles: string[], address = '127.0.0.1') {
  return { id, name, address, port: 1, user: 'root', roles, auth: { method: 'agent' }, jumpNodeId: null };
}

export interface SeededApp {
  app: WebApp;
  browser: Browser;
  session: Session;
  page: Page;
}

/**
 * The offline browser tests' setup: a web app whose data dir holds `inventory` (and whatever
 * `prepare` adds), a browser and a page at `viewport`.
 */
export async function startSeededApp(
  inventory: unknown,
  viewport: { width: number; height: number },
  prepare?: (dataDir: string, home: string) => Promise<void>,
): Promise<SeededApp> {
  const app = await startWebApp({
    prepare: async (dataDir, home) => {
      await fs.writeFile(join(dataDir, 'inventory.json'), JSON.stringify(inventory, null, 2));
      await prepare?.(dataDir, home);
    },
  });
  const browser = await launchBrowser();
  const session = await openApp(browser, app, viewport);
  return { app, browser, session, page: session.page };
}

export async function stopSeededApp(x: Partial<SeededApp>): Promise<void> {
  await x.session?.context.close().catch(() => undefined);
  await x.browser?.close().catch(() => undefined);
  await x.app?.stop();
}
