// Electron entry. Deliberately thin: window, IPC transport, keychain. Every behaviour lives in
// services that also run under plain Node (see src/main/server/web.ts).
import { app, BrowserWindow, ipcMain, session, shell, type IpcMainInvokeEvent, type WebContents } from 'electron';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { IPC_EVENT, IPC_INVOKE } from '@shared/contract';
import { createServices, type Services } from './services';
import { createSecretStore } from './secrets';
import { ELECTRON_CSP, rendererUrl, SECURE_WEB_PREFERENCES } from './window';
import { APP_VERSION } from './version';

let services: Services | null = null;
let mainWindow: BrowserWindow | null = null;

/** Only our own window's top frame, showing our own page, may call the API. */
function trustedSender(e: IpcMainInvokeEvent): boolean {
  const frame = e.senderFrame;
  if (!mainWindow || e.sender !== mainWindow.webContents || !frame || frame.parent) return false;
  const url = frame.url;
  const devUrl = rendererUrl(app.isPackaged, process.env);
  if (devUrl && url.startsWith(devUrl)) return true;
  return url.startsWith(pathToFileURL(join(__dirname, '../renderer/')).href);
}

function lockDown(contents: WebContents): void {
  contents.setWindowOpenHandler(({ url }) => {
    // External links open in the user's browser, never inside the app.
    if (/^https:\/\//.test(url)) void shell.openExternal(url);
    return { action: 'deny' };
  });
  contents.on('will-navigate', (e) => e.preventDefault());
  contents.on('will-attach-webview', (e) => e.preventDefault());
}

async function createWindow(): Promise<void> {
  mainWindow = new BrowserWindow({
    width: 1280,
    height: 820,
    title: 'Kube Etcd Switch',
    show: false,
    icon: join(__dirname, '../../resources/icon.png'),
    webPreferences: { ...SECURE_WEB_PREFERENCES, preload: join(__dirname, '../preload/index.js') },
  });
  lockDown(mainWindow.webContents);
  mainWindow.once('ready-to-show', () => mainWindow?.show());
  const devUrl = rendererUrl(app.isPackaged, process.env);
  if (devUrl) await mainWindow.loadURL(devUrl);
  else await mainWindow.loadFile(join(__dirname, '../renderer/index.html'));
}

async function start(): Promise<void> {
  await app.whenReady();
  session.defaultSession.webRequest.onHeadersReceived((details, cb) => {
    cb({ responseHeaders: { ...details.responseHeaders, 'Content-Security-Policy': [ELECTRON_CSP] } });
  });
  session.defaultSession.setPermissionRequestHandler((_wc, _perm, cb) => cb(false));
  const secrets = await createSecretStore({});
  services = await createServices({
    dataDir: process.env.KES_DATA_DIR || app.getPath('userData'),
    resourcesDir: app.isPackaged ? process.resourcesPath : join(__dirname, '../../resources'),
    secrets,
    transport: 'electron',
    version: APP_VERSION,
    log: (l) => console.log(`[kes] ${l}`),
  });
  const svc = services;
  ipcMain.handle(IPC_INVOKE, async (e, method: unknown, input: unknown) => {
    if (!trustedSender(e)) return { ok: false, error: { code: 'FORBIDDEN', message: 'Untrusted sender' } };
    return svc.dispatch(method, input, { client: 'electron' });
  });
  svc.events.subscribe((event, payload) => {
    if (mainWindow && !mainWindow.isDestroyed()) mainWindow.webContents.send(IPC_EVENT, event, payload);
  });
  app.on('web-contents-created', (_e, contents) => lockDown(contents));
  await createWindow();
  app.on('activate', () => {
    if (BrowserWindow.getAllWindows().length === 0) void createWindow();
  });
}

app.on('window-all-closed', () => {
  void services?.close().finally(() => app.quit());
});

start().catch((e) => {
  console.error('Kube Etcd Switch failed to start:', e);
  app.exit(1);
});
