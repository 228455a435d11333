// A stand-in `electron` module: records what the built main/preload bundles ask of Electron so
// tests can check the window's security settings and IPC wiring without the Electron binary.
import Module from 'node:module';

export interface Recorded {
  windows: {
    options: Record<string, unknown>;
    webContents?: unknown;
    handlers: Record<string, (...a: unknown[]) => unknown>;
    openHandler?: (d: { url: string }) => { action: string };
    loaded?: string;
  }[];
  ipcHandlers: Map<string, (...a: unknown[]) => unknown>;
  headerHooks: ((
    d: { responseHeaders: Record<string, string[]> },
    cb: (r: { responseHeaders: Record<string, string[]> }) => void,
  ) => void)[];
  permissionHandler?: (wc: unknown, perm: string, cb: (ok: boolean) => void) => void;
  exposed: Map<string, unknown>;
  sent: unknown[][];
  appHandlers: Record<string, (...a: unknown[]) => unknown>;
}

export function makeElectronStandIn(userData: string): { module: Record<string, unknown>; rec: Recorded } {
  const rec: Recorded = {
    windows: [],
    ipcHandlers: new Map(),
    headerHooks: [],
    exposed: new Map(),
    sent: [],
    appHandlers: {},
  };
  class BrowserWindow {
    static all: BrowserWindow[] = [];
    static getAllWindows() {
      return BrowserWindow.all;
    }
    webContents: Record<string, unknown>;
    constructor(options: Record<string, unknown>) {
      const entry: Recorded['windows'][number] = { options, handlers: {} };
      rec.windows.push(entry);
      BrowserWindow.all.push(this);
      this.webContents = {
        setWindowOpenHandler: (h: (d: { url: string }) => { action: string }) => (entry.openHandler = h),
        on: (ev: string, h: (...a: unknown[]) => unknown) => (entry.handlers[ev] = h),
        send: (...a: unknown[]) => rec.sent.push(a),
      };
      entry.webContents = this.webContents;
      (this as unknown as { entry: typeof entry }).entry = entry;
    }
    once() {}
    show() {}
    isDestroyed() {
      return false;
    }
    async loadFile(p: string) {
      (this as unknown as { entry: Recorded['windows'][number] }).entry.loaded = p;
    }
    async loadURL(u: string) {
      (this as unknown as { entry: Recorded['windows'][number] }).entry.loaded = u;
    }
  }
  const module = {
    app: {
      whenReady: () => Promise.resolve(),
      getPath: () => userData,
      isPackaged: false,
      on: (ev: string, h: (...a: unknown[]) => unknown) => (rec.appHandlers[ev] = h),
      quit: () => undefined,
      exit: () => undefined,
    },
    BrowserWindow,
    ipcMain: { handle: (ch: string, h: (...a: unknown[]) => unknown) => rec.ipcHandlers.set(ch, h) },
    ipcRenderer: { on: () => undefined, invoke: async () => undefined },
    contextBridge: { exposeInMainWorld: (k: string, v: unknown) => rec.exposed.set(k, v) },
    session: {
      defaultSession: {
        webRequest: { onHeadersReceived: (h: Recorded['headerHooks'][number]) => rec.headerHooks.push(h) },
        setPermissionRequestHandler: (h: Recorded['permissionHandler']) => (rec.permissionHandler = h),
      },
    },
    shell: { openExternal: async () => undefined },
  };
  return { module, rec };
}

/** Make `require('electron')` return the stand-in for the duration of `fn`. */
export async function withElectron<T>(standIn: Record<string, unknown>, fn: () => Promise<T> | T): Promise<T> {
  const M = Module as unknown as { _load: (req: string, ...rest: unknown[]) => unknown };
  const orig = M._load;
  M._load = function (req: string, ...rest: unknown[]) {
    if (req === 'electron') return standIn;
    return orig.call(this, req, ...rest);
  };
  try {
    return await fn();
  } finally {
    M._load = orig;
  }
}
