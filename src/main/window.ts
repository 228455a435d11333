// Secure BrowserWindow settings, kept as data so a test can check them without Electron.
export const SECURE_WEB_PREFERENCES = {
  contextIsolation: true,
  sandbox: true,
  nodeIntegration: false,
  nodeIntegrationInWorker: false,
  nodeIntegrationInSubFrames: false,
  webSecurity: true,
  allowRunningInsecureContent: false,
  experimentalFeatures: false,
  webviewTag: false,
  spellcheck: false,
} as const;

/** CSP for the Electron renderer (file:// or the dev server). */
export const ELECTRON_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/**
 * Where the window loads the renderer from: electron-vite's dev server (ELECTRON_RENDERER_URL) in
 * development only. A packaged app ignores the variable and loads its own files (null), so nobody
 * can point an installed app at another page by setting it; an unpackaged one takes only http(s).
 */
export function rendererUrl(isPackaged: boolean, env: Record<string, string | undefined>): string | null {
  if (isPackaged) return null;
  const url = env.ELECTRON_RENDERER_URL;
  return url && /^https?:\/\/[^\s]+$/.test(url) ? url : null;
}
