// Intent: the built Electron entry opens a locked-down window (sandbox, context isolation, no Node,
// CSP, no navigation/new windows, permissions denied), answers only its own window, and routes
// every contract method to a handler. Runs against out/ with a stand-in `electron` module, so it
// needs no Electron binary.
import { existsSync, promises as fs } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { methods } from '../../src/shared/contract';
import { IPC_INVOKE } from '../../src/shared/ipc';
import { makeElectronStandIn, withElectron, type Recorded } from './stand-in';

const root = resolve(__dirname, '../..');
const mainBundle = join(root, 'out/main/index.js');
const preloadBundle = join(root, 'out/preload/index.js');
const req = createRequire(__filename);

let rec: Recorded;
let dataDir: string;

beforeAll(async () => {
  if (!existsSync(mainBundle)) throw new Error('out/main/index.js is missing: run `npm run build` first');
  dataDir = await fs.mkdtemp(join(tmpdir(), 'kes-electron-'));
  process.env.KES_SECRET_BACKEND = 'memory';
  const s = makeElectronStandIn(dataDir);
  rec = s.rec;
  await withElectron(s.module, async () => {
    delete req.cache[mainBundle];
    req(mainBundle);
    // the entry starts asynchronously; wait for its window
    for (let i = 0; i < 100 && rec.windows.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
  });
});

afterAll(async () => {
  await rec?.appHandlers['window-all-closed']?.();
  await fs.rm(dataDir, { recursive: true, force: true });
});

describe('built Electron main bundle', () => {
  it('opens one window with secure webPreferences and a sandboxed CommonJS preload', () => {
    expect(rec.windows).toHaveLength(1);
    const wp = rec.windows[0].options.webPreferences as Record<string, unknown>;
    expect(wp).toMatchObject({
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      webSecurity: true,
      webviewTag: false,
    });
    expect(wp.preload).toBe(preloadBundle);
    expect(existsSync(preloadBundle)).toBe(true);
    expect(rec.windows[0].loaded).toBe(join(root, 'out/renderer/index.html'));
  });

  it('sets a strict CSP on every response and denies permission requests', () => {
    let headers: Record<string, string[]> = {};
    rec.headerHooks[0]({ responseHeaders: {} }, (r) => (headers = r.responseHeaders));
    expect(headers['Content-Security-Policy'][0]).toMatch(/default-src 'self'; script-src 'self'/);
    let granted: boolean | undefined;
    rec.permissionHandler!(null, 'media', (ok) => (granted = ok));
    expect(granted).toBe(false);
  });

  it('blocks navigation and new windows', () => {
    const w = rec.windows[0];
    expect(w.openHandler!({ url: 'https://example.invalid' })).toEqual({ action: 'deny' });
    let prevented = false;
    w.handlers['will-navigate']({ preventDefault: () => (prevented = true) });
    expect(prevented).toBe(true);
  });

  it('refuses IPC from any sender but its own window', async () => {
    const handler = rec.ipcHandlers.get(IPC_INVOKE)!;
    const other = { sender: {}, senderFrame: { url: 'https://evil.invalid/', parent: null } };
    expect(await handler(other, 'clusters.list', {})).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
  });

  it('has a handler for every contract method (none answers UNKNOWN_METHOD)', async () => {
    const handler = rec.ipcHandlers.get(IPC_INVOKE)!;
    const own = {
      sender: rec.windows[0].webContents,
      senderFrame: { url: pathToFileURL(join(root, 'out/renderer/index.html')).href, parent: null },
    };
    for (const m of Object.keys(methods)) {
      const r = (await handler(own, m, {})) as { ok: boolean; error?: { code: string } };
      expect(r.ok === true || r.error?.code !== 'UNKNOWN_METHOD', m).toBe(true);
      expect(r.ok === true || r.error?.code !== 'FORBIDDEN', m).toBe(true);
    }
    const ok = (await handler(own, 'clusters.list', {})) as { ok: boolean; value: unknown };
    expect(ok).toEqual({ ok: true, value: [] });
  });

  it('the preload exposes only invoke/on under one name', async () => {
    const s = makeElectronStandIn(dataDir);
    await withElectron(s.module, () => {
      delete req.cache[preloadBundle];
      req(preloadBundle);
    });
    expect([...s.rec.exposed.keys()]).toEqual(['kesBridge']);
    expect(Object.keys(s.rec.exposed.get('kesBridge') as object).sort()).toEqual(['invoke', 'on']);
  });
});
