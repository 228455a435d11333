// Intent: the packaged-style app starts in real Electron and shows its UI. Needs the Electron
// binary, which cannot be downloaded in our sandboxes (ELECTRON_SKIP_BINARY_DOWNLOAD=1); there
// the test is skipped with that reason, and main-bundle.test.ts covers the entry without it.
import { existsSync, promises as fs, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * Where the Electron binary would be, without `require('electron')`: that call tries to download
 * the binary when it is missing, and tests must never reach the internet.
 */
function electronBinary(): string | null {
  const pkg = resolve(__dirname, '../../node_modules/electron');
  const pathFile = join(pkg, 'path.txt');
  if (!existsSync(pathFile)) return null;
  const bin = join(pkg, 'dist', readFileSync(pathFile, 'utf8').trim());
  return existsSync(bin) ? bin : null;
}

const binary = electronBinary();
const reason = 'Electron binary not installed (ELECTRON_SKIP_BINARY_DOWNLOAD=1 in this environment)';
if (!binary) console.warn(`[skip] electron smoke: ${reason}`);

describe('Electron smoke', () => {
  it.skipIf(!binary)(
    `launches the built app and shows the cluster list${binary ? '' : ` — skipped: ${reason}`}`,
    async () => {
      const { _electron } = await import('playwright-core');
      const dataDir = await fs.mkdtemp(join(tmpdir(), 'kes-smoke-'));
      const app = await _electron.launch({
        executablePath: binary!,
        args: [resolve(__dirname, '../..'), '--no-sandbox'],
        env: { ...process.env, KES_DATA_DIR: dataDir, KES_SECRET_BACKEND: 'memory' } as Record<string, string>,
      });
      try {
        const page = await app.firstWindow();
        await expect(page.title()).resolves.toMatch(/Kube Etcd Switch/);
        const nodeIntegration = await page.evaluate(() => typeof (globalThis as { require?: unknown }).require);
        expect(nodeIntegration).toBe('undefined');
        await page.screenshot({ path: 'test-results/electron-smoke.png' });
      } finally {
        await app.close();
        await fs.rm(dataDir, { recursive: true, force: true });
      }
    },
  );
});
