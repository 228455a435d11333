// What the user sees around the edges: data files that could not be read are reported in a
// banner (and kept aside, not overwritten), and the status line follows the server connection.
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { launchBrowser, openApp, screenshot, startWebApp, type Session, type WebApp } from './support/app';

const OLD_STATIC_POD = '#!/usr/bin/env bash\n# static-pod.sh as an older version shipped it\n';
const OLD_REMOVE_FILE = '#!/usr/bin/env bash\n# remove-file.sh as an older version shipped it\n';
const SHIPPED = join(__dirname, '../../resources/scripts');

let app: WebApp;
let browser: Browser;
let s: Session;

beforeAll(async () => {
  app = await startWebApp({
    prepare: async (dataDir) => {
      await fs.writeFile(join(dataDir, 'inventory.json'), '{"version": 1, "clusters": [ {"oops"');
      // The scripts folder of an older app version: one copy the user edited, one untouched.
      const dir = join(dataDir, 'scripts');
      await fs.mkdir(join(dir, '.shipped'), { recursive: true });
      for (const [name, text] of [
        ['static-pod.sh', OLD_STATIC_POD + '# my edit\n'],
        ['remove-file.sh', OLD_REMOVE_FILE],
      ])
        await fs.writeFile(join(dir, name), text);
      await fs.writeFile(join(dir, '.shipped', 'static-pod.sh'), OLD_STATIC_POD);
      await fs.writeFile(join(dir, '.shipped', 'remove-file.sh'), OLD_REMOVE_FILE);
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

  it('after an upgrade: untouched scripts follow the new version; an edited one offers its diff and "take the new version"', async () => {
    const dir = join(app.dataDir, 'scripts');
    const shipped = await fs.readFile(join(SHIPPED, 'remove-file.sh'), 'utf8');
    expect(await fs.readFile(join(dir, 'remove-file.sh'), 'utf8')).toBe(shipped);
    expect(await fs.readFile(join(dir, 'static-pod.sh'), 'utf8')).toContain('# my edit');

    await s.page.getByTestId('nav-settings').click();
    const row = s.page.locator('[data-testid="script-row"][data-name="static-pod.sh"]');
    await row.getByTestId('script-update').waitFor();
    expect(
      await s.page
        .locator('[data-testid="script-row"][data-name="remove-file.sh"]')
        .getByTestId('script-update')
        .count(),
    ).toBe(0);
    await row.getByTestId('script-review').click();
    const dialog = s.page.getByTestId('script-upgrade-confirm');
    const diff = await dialog.getByTestId('diff').innerText();
    expect(diff).toContain('# my edit');
    expect(diff).toContain('park|unpark'); // from the shipped version
    await screenshot(s.page, 'script-upgrade.png');
    await dialog.getByRole('button', { name: 'Take the new version' }).click();
    await row.getByTestId('script-update').waitFor({ state: 'detached' });
    expect(await fs.readFile(join(dir, 'static-pod.sh'), 'utf8')).toBe(
      await fs.readFile(join(SHIPPED, 'static-pod.sh'), 'utf8'),
    );
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
