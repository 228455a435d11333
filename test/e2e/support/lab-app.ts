// What the lab browser tests (story, new-cluster) share: a lab, the web app and a browser page,
// started together and always torn down together; the demo pod; and waits on what the lab's API
// endpoint answers. Only the lab's own 198.18.0.0/15 addresses and loopback are contacted.
import type { Browser, Page } from 'playwright-core';
import { expect } from 'vitest';
import { Lab, type LabOptions } from '../../lab';
import { labReadyz, podStatus } from '../../system/support';
import { launchBrowser, openApp, startWebApp, type Session, type WebApp } from './app';

export { countDrillObjects, createDemoPod, createDrillObjects, podStatus } from '../../system/support';

export const isRoot = process.getuid?.() === 0;

export interface LabApp {
  lab: Lab;
  app: WebApp;
  browser: Browser;
  session: Session;
  page: Page;
  clusterName: string;
}

/** Lab + web app (memory secret store) + browser page; on a failed start, whatever started is stopped. */
export async function startLabApp(
  opts: LabOptions,
  app: { prepare?: (dataDir: string, home: string) => Promise<void> } = {},
): Promise<LabApp> {
  const parts: Partial<LabApp> = {};
  try {
    parts.lab = await Lab.up({ cleanupOnExit: true, ...opts });
    parts.app = await startWebApp({ env: { KES_SECRET_BACKEND: 'memory' }, prepare: app.prepare });
    parts.browser = await launchBrowser();
    parts.session = await openApp(parts.browser, parts.app, { width: 1440, height: 1000 });
    return {
      ...(parts as Required<Omit<LabApp, 'page' | 'clusterName'>>),
      page: parts.session.page,
      clusterName: parts.lab.state.clusterName,
    };
  } catch (e) {
    await stopLabApp(parts);
    throw e;
  }
}

export async function stopLabApp(x: Partial<LabApp> | undefined): Promise<void> {
  await x?.session?.context.close().catch(() => undefined);
  await x?.browser?.close().catch(() => undefined);
  await x?.app?.stop().catch(() => undefined);
  await x?.lab?.down().catch(() => undefined);
}

/** The demo pod's GET status, retried until it is `want` (e.g. while apiservers settle); returns the last. */
export async function waitPodStatus(lab: Lab, want: number, timeoutMs = 30_000): Promise<number> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const last = await podStatus(lab);
    if (last === want || Date.now() > end) return last;
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Whether an anonymous GET of /readyz through the LB answers 200 "ok" within `timeoutMs`, polling each second. */
export async function waitLbReady(lab: Lab, timeoutMs = 60_000): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await labReadyz(lab, 5000)) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** In the UI: add a lab host as a node (root, the lab key file), connect, and trust its host key. */
/** Add a lab host as a node; with `connect` (default) connect and trust its host key now. */
export async function addNode(page: Page, lab: Lab, name: string, roles: string[], connect = true): Promise<void> {
  const tid = (id: string) => page.getByTestId(id);
  const card = page.locator(`[data-testid="node-card"][data-node-name="${name}"]`);
  await tid('tab-nodes').click();
  await tid('node-add').click();
  await tid('field-name').fill(name);
  await tid('field-address').fill(lab.host(name).address);
  await tid('field-user').fill('root');
  for (const r of roles) await tid(`role-${r}`).check();
  await tid('auth-key-file').check();
  await tid('field-keyPath').fill(lab.keyPath);
  await tid('node-save').click();
  await card.waitFor();
  if (!connect) return;
  await card.getByTestId('node-connect').click();
  await tid('hostkey-unknown').waitFor({ timeout: 30_000 });
  await expect(tid('hostkey-fingerprint').textContent()).resolves.toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
  await tid('hostkey-trust').click();
  await card.and(page.locator('[data-state="connected"]')).waitFor({ timeout: 30_000 });
}
