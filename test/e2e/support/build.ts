// Builds the app (electron-vite) when out/ is missing or older than its sources, so browser tests
// always drive the current code. Used by the e2e globalSetup and, as a fallback, by each file.
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const ROOT = resolve(__dirname, '..', '..', '..');
const OUTPUTS = ['out/main/web.js', 'out/renderer/index.html'].map((p) => join(ROOT, p));
const INPUTS = ['src', 'resources', 'electron.vite.config.ts', 'package.json'].map((p) => join(ROOT, p));

function newestMtime(path: string): number {
  if (!existsSync(path)) return 0;
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let max = st.mtimeMs;
  for (const e of readdirSync(path)) {
    if (e === 'node_modules' || e.startsWith('.')) continue;
    max = Math.max(max, newestMtime(join(path, e)));
  }
  return max;
}

export function buildIsStale(): boolean {
  if (!OUTPUTS.every((p) => existsSync(p))) return true;
  const built = Math.min(...OUTPUTS.map((p) => statSync(p).mtimeMs));
  return INPUTS.some((p) => newestMtime(p) > built);
}

let building: Promise<void> | null = null;

/** Run `electron-vite build` once if needed. */
export function ensureBuilt(): Promise<void> {
  if (!buildIsStale()) return Promise.resolve();
  building ??= new Promise<void>((resolvePromise, reject) => {
    const bin = join(ROOT, 'node_modules', '.bin', 'electron-vite');
    execFile(
      bin,
      ['build'],
      { cwd: ROOT, maxBuffer: 32 << 20, env: { ...process.env, ELECTRON_SKIP_BINARY_DOWNLOAD: '1' } },
      (err, stdout, stderr) => {
        building = null;
        if (err)
          reject(
            new Error(`electron-vite build failed: ${err.message}\n${stdout.slice(-3000)}\n${stderr.slice(-3000)}`),
          );
        else resolvePromise();
      },
    );
  });
  return building;
}
