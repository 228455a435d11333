// What the user sees around the edges: data files that could not be read are reported in a
// banner (and kept aside, not overwritten), and the status line follows the server connection.
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { launchBrowser, openApp, screenshot, startWebApp, type Session, type WebApp } from './support/app';

let app: WebApp;
let browser: Browser;
let s: Session;

beforeAll(async () => {
  app = await startWebApp({
    prepare: async (dataDir) => {
      await fs.writeFile(join(dataDir, 'inventory.json'), '{"version": 1, "clusters": [ {"oops"');
    },
  });
  browser = await launchBrowser();
  s = await openApp(browser, app);
});

afterAll(async () => {
  await s?.context.close().catch(() => undefined);
  await browser?.close().catch(() => undefined);
  await app?.stop();
});

describe('start-up problems and connection state', () => {
  it('shows a banner naming the unreadable inventory file and where it was kept', async () => {
    const banner = s.page.getByTestId('problems-banner');
    await banner.waitFor();
    const text = await banner.innerText();
    expect(text).toContain(join(app.dataDir, 'inventory.json'));
    const kept = (await fs.readdir(app.dataDir)).find((f) => f.startsWith('inventory.json.corrupt-'));
    expect(kept).toBeTruthy();
    expect(text).toContain(kept!);
    await screenshot(s.page, 'problems-banner.png');
    await banner.getByRole('button', { name: 'Dismiss' }).click();
    await expect(banner.count()).resolves.toBe(0);
  });

  it('shows the transport and, when the server goes away, the lost connection', async () => {
    await expect(s.page.getByTestId('status-transport').innerText()).resolves.toBe('Web mode');
    await expect(s.page.getByTestId('status-link').getAttribute('data-state')).resolves.toBe('open');
    await app.stop();
    await s.page
      .locator('[data-testid="status-link"][data-state="closed"], [data-testid="status-link"][data-state="connecting"]')
      .first()
      .waitFor({ timeout: 10_000 });
    await expect(s.page.getByTestId('status-link').innerText()).resolves.toMatch(/Disconnected|Connecting/);
  });
});
