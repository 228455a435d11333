// The story through the UI in Chromium: create a cluster, add a node that points at a
// real sshd on loopback (key pasted into the form, stored in the memory keychain), accept its
// host key after comparing the fingerprint, see it connected on the node map, run a command in
// its SSH terminal and in the local console; plus validation, import and a changed host key.
import { promises as fs } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { makeKey, type KeyPair } from '../integration/fixtures/keys';
import { startSshd, type Sshd } from '../integration/fixtures/sshd';
import {
  launchBrowser,
  openApp,
  screenshot,
  startWebApp,
  tempDir,
  waitForTerminalText,
  type Session,
  type WebApp,
} from './support/app';

let app: WebApp;
let sshd: Sshd;
let key: KeyPair;
let keyDir: string;
let browser: Browser;
let s: Session;
let page: Page;

const CLUSTER = 'e2e-cluster';
const NODE = 'sshd-1';

const card = (name: string) => page.locator(`[data-testid="node-card"][data-node-name="${name}"]`);
const stateOf = (name: string) => card(name).getAttribute('data-state');

async function waitState(name: string, state: string, timeout = 20_000) {
  await card(name)
    .and(page.locator(`[data-state="${state}"]`))
    .waitFor({ timeout });
}

beforeAll(async () => {
  keyDir = await tempDir('kes-e2e-keys-');
  key = await makeKey(keyDir, 'id_e2e');
  sshd = await startSshd({ authorizedKeys: [key.publicKey] });
  app = await startWebApp();
  browser = await launchBrowser();
  s = await openApp(browser, app);
  page = s.page;
});

afterAll(async () => {
  await s?.context.close().catch(() => undefined);
  await browser?.close().catch(() => undefined);
  await app?.stop();
  await sshd?.stop();
  if (keyDir) await fs.rm(keyDir, { recursive: true, force: true });
});

describe('cluster and node map', () => {
  it('creates a cluster and opens its page', async () => {
    await page.getByTestId('cluster-create').click();
    await page.getByTestId('field-cluster-name').fill(CLUSTER);
    await page.getByTestId('cluster-name-save').click();
    await expect(page.getByTestId('cluster-title').textContent()).resolves.toBe(CLUSTER);
    await page.locator(`[data-testid="nav-cluster"][data-cluster-name="${CLUSTER}"]`).waitFor();
  });

  it('shows validation messages next to bad fields (bad IP, port 70000, "Bad User")', async () => {
    await page.getByTestId('node-add').click();
    await page.getByTestId('field-name').fill(NODE);
    await page.getByTestId('field-address').fill('300.1.1.1');
    await page.getByTestId('field-port').fill('70000');
    await page.getByTestId('field-user').fill('Bad User');
    await page.getByTestId('auth-key-stored').check();
    await page.getByTestId('node-save').click();
    await expect(page.getByTestId('error-address').textContent()).resolves.toBe('Not a valid host name or IP address');
    await expect(page.getByTestId('error-port').textContent()).resolves.toBe('Port must be between 1 and 65535');
    await expect(page.getByTestId('error-user').textContent()).resolves.toMatch(/^User names start with a letter/);
    await expect(page.getByTestId('error-pastedKey').textContent()).resolves.toMatch(/Paste the private key/);
    await expect(page.getByTestId('error-name').count()).resolves.toBe(0);
    // Each message sits right under its own input.
    for (const f of ['address', 'port', 'user']) {
      const input = await page.getByTestId(`field-${f}`).boundingBox();
      const msg = await page.getByTestId(`error-${f}`).boundingBox();
      expect(msg!.y).toBeGreaterThan(input!.y);
      expect(msg!.y - (input!.y + input!.height)).toBeLessThan(24);
      expect(Math.abs(msg!.x - input!.x)).toBeLessThan(4);
      await expect(page.getByTestId(`field-${f}`).getAttribute('aria-invalid')).resolves.toBe('true');
    }
    await screenshot(page, 'node-form-errors.png');
  });

  it('adds the node with a pasted private key kept in the keychain', async () => {
    await page.getByTestId('field-address').fill('127.0.0.1');
    await page.getByTestId('field-port').fill(String(sshd.port));
    await page.getByTestId('field-user').fill('root');
    await page.getByTestId('role-master').check();
    await page.getByTestId('role-etcd').check();
    await page.getByTestId('field-pastedKey').fill(await fs.readFile(key.path, 'utf8'));
    await expect(page.getByTestId('error-address').count()).resolves.toBe(0);
    await page.getByTestId('node-save').click();
    await card(NODE).waitFor();
    await expect(page.getByTestId('node-form').count()).resolves.toBe(0);
    await expect(card(NODE).getByTestId('node-address').textContent()).resolves.toBe(`root@127.0.0.1:${sshd.port}`);
    await expect(page.getByTestId('tier-master').locator(`[data-node-name="${NODE}"]`).count()).resolves.toBe(1);
    expect(await stateOf(NODE)).toBe('disconnected');

    // Editing shows that a key is stored, but never the key itself.
    await card(NODE).getByTestId('node-edit').click();
    await page.getByTestId('stored-privateKey').waitFor();
    await expect(page.getByTestId('field-pastedKey').count()).resolves.toBe(0);
    expect(await page.getByTestId('node-form').innerText()).not.toContain('PRIVATE KEY');
    await page.getByTestId('node-form').getByRole('button', { name: 'Cancel' }).click();
  });

  it('maps a server-side INVALID_INPUT onto the field (duplicate node name)', async () => {
    await page.getByTestId('node-add').click();
    await page.getByTestId('field-name').fill(NODE.toUpperCase());
    await page.getByTestId('field-address').fill('127.0.0.2');
    await page.getByTestId('auth-agent').check();
    await page.getByTestId('node-save').click();
    await expect(page.getByTestId('error-name').textContent()).resolves.toBe('Name already used in this cluster');
    await page.getByTestId('node-form').getByRole('button', { name: 'Cancel' }).click();
  });

  it('asks to trust the unknown host key, showing the fingerprint ssh-keygen computes, then connects', async () => {
    await card(NODE).getByTestId('node-connect').click();
    const dialog = page.getByTestId('hostkey-unknown');
    await dialog.waitFor();
    const shown = await page.getByTestId('hostkey-fingerprint').textContent();
    expect(shown).toBe(await sshd.fingerprint());
    expect(await stateOf(NODE)).not.toBe('connected');
    await page.getByTestId('hostkey-trust').click();
    await waitState(NODE, 'connected');
    await expect(dialog.count()).resolves.toBe(0);
  });

  it('draws the map in tiers: load balancer → control plane → workers, and external etcd', async () => {
    // Extra machines for the picture (loopback addresses; nothing connects to them).
    const extra = [
      { name: 'lb-1', address: '127.0.0.10', roles: ['lb'] },
      { name: 'worker-1', address: '127.0.0.21', roles: ['worker'] },
      { name: 'worker-2', address: '127.0.0.22', roles: ['worker'] },
      { name: 'etcd-ext-1', address: '127.0.0.31', roles: ['etcd'] },
    ];
    for (const n of extra) {
      await page.getByTestId('node-add').click();
      await page.getByTestId('field-name').fill(n.name);
      await page.getByTestId('field-address').fill(n.address);
      for (const r of n.roles) await page.getByTestId(`role-${r}`).check();
      await page.getByTestId('auth-agent').check();
      await page.getByTestId('node-save').click();
      await card(n.name).waitFor();
    }
    const tiers = await page
      .locator('[data-testid^="tier-"]')
      .evaluateAll((els) =>
        els.map((e) => [
          e.getAttribute('data-testid'),
          [...e.querySelectorAll('[data-testid="node-card"]')].map((c) => c.getAttribute('data-node-name')).join(','),
        ]),
      );
    expect(tiers).toEqual([
      ['tier-lb', 'lb-1'],
      ['tier-master', NODE],
      ['tier-worker', 'worker-1,worker-2'],
      ['tier-etcd', 'etcd-ext-1'],
    ]);
    expect(await stateOf(NODE)).toBe('connected');
    expect(await stateOf('lb-1')).toBe('disconnected');
    await page
      .getByTestId('toast')
      .first()
      .waitFor({ state: 'detached', timeout: 10_000 })
      .catch(() => undefined);
    // Tall enough to show every tier, then back to the usual size.
    await page.setViewportSize({ width: 1440, height: 1200 });
    await screenshot(page, 'node-map.png');
    await page.setViewportSize({ width: 1440, height: 960 });
  });

  it('tests the connection: reachable, auth ok, trusted key, hostname, root', async () => {
    await card(NODE).getByTestId('node-test').click();
    const panel = page.getByTestId('conn-test-panel');
    await panel.waitFor({ timeout: 20_000 });
    await expect(panel.getAttribute('data-ok')).resolves.toBe('true');
    await expect(panel.getByTestId('ct-reachable').textContent()).resolves.toBe('yes');
    await expect(panel.getByTestId('ct-auth').textContent()).resolves.toBe('ok');
    const hk = await panel.getByTestId('ct-hostkey').innerText();
    expect(hk).toContain(await sshd.fingerprint());
    expect(hk).toContain('trusted');
    await expect(panel.getByTestId('ct-hostname').textContent()).resolves.toBe(hostname());
    await expect(panel.getByTestId('ct-user').textContent()).resolves.toBe('root');
    await expect(panel.getByTestId('ct-root').textContent()).resolves.toBe('yes');
    await screenshot(page, 'connection-test.png');
  });
});

describe('terminals', () => {
  it('opens an SSH terminal on the node and runs a command', async () => {
    await card(NODE).getByTestId('node-terminal').click();
    const tab = page.locator(`[data-testid="terminal-tab"][data-title="SSH: ${NODE}"]`);
    await tab.and(page.locator('[data-state="open"]')).waitFor({ timeout: 20_000 });
    await page.locator('[data-testid="terminal-view"][data-active="true"] .xterm').click();
    await page.keyboard.type('echo kes-$((6*7))');
    await page.keyboard.press('Enter');
    // The typed line holds "kes-$((6*7))"; only the shell's output holds "kes-42".
    await waitForTerminalText(page, /^kes-42\s*$/m);
    await screenshot(page, 'terminal-ssh.png');
  });

  it('keeps up with a flood of output (flow control acks let main resume the shell)', async () => {
    // ~1.3 MB: far above main's high-water mark, so it only completes if acks come back.
    await page.keyboard.type('seq 1 200000; echo flood-$((1+1))-done');
    await page.keyboard.press('Enter');
    await waitForTerminalText(page, /^flood-2-done\s*$/m, 60_000);
    const screen = await waitForTerminalText(page, '200000');
    expect(screen).toContain('199999');
  });

  it('opens the local console in the scripts folder and runs a command', async () => {
    await page.getByTestId('open-local-console').click();
    const tab = page.locator('[data-testid="terminal-tab"][data-title="Local console"]');
    await tab.and(page.locator('[data-state="open"]')).waitFor({ timeout: 20_000 });
    await page.locator('[data-testid="terminal-view"][data-active="true"] .xterm').click();
    await page.keyboard.type('echo local-$((40+2)); pwd');
    await page.keyboard.press('Enter');
    const text = await waitForTerminalText(page, /^local-42\s*$/m);
    expect(text).toContain(app.dataDir);
    await screenshot(page, 'terminal-local.png');
  });

  it('marks a tab ended when its shell exits, and closes tabs', async () => {
    await page.keyboard.type('exit');
    await page.keyboard.press('Enter');
    await page
      .locator('[data-testid="terminal-tab"][data-title="Local console"][data-state="ended"]')
      .waitFor({ timeout: 10_000 });
    await page
      .locator('[data-testid="terminal-tab"][data-title="Local console"] [data-testid="terminal-tab-close"]')
      .click();
    await page
      .locator(`[data-testid="terminal-tab"][data-title="SSH: ${NODE}"] [data-testid="terminal-tab-close"]`)
      .click();
    await expect(page.getByTestId('terminal-tab').count()).resolves.toBe(0);
  });
});

describe('host keys and import', () => {
  it('disconnects from the node map', async () => {
    await card(NODE).getByTestId('node-disconnect').click();
    await waitState(NODE, 'disconnected');
  });

  it('refuses a changed host key until the old one is forgotten with explicit confirmation', async () => {
    const oldFp = await sshd.fingerprint();
    await sshd.regenerateHostKey();
    const newFp = await sshd.fingerprint();
    expect(newFp).not.toBe(oldFp);

    await card(NODE).getByTestId('node-connect').click();
    const warn = page.getByTestId('hostkey-changed');
    await warn.waitFor({ timeout: 20_000 });
    await expect(page.getByTestId('hostkey-expected').textContent()).resolves.toContain(oldFp);
    await expect(page.getByTestId('hostkey-presented').textContent()).resolves.toContain(newFp);
    await expect(page.getByTestId('hostkey-forget').isDisabled()).resolves.toBe(true);
    await screenshot(page, 'hostkey-changed.png');
    await page.getByTestId('hostkey-ack').check();
    await page.getByTestId('hostkey-forget').click();

    // Forgotten: the retry meets the new key as a first contact.
    await page.getByTestId('hostkey-unknown').waitFor({ timeout: 20_000 });
    await expect(page.getByTestId('hostkey-fingerprint').textContent()).resolves.toBe(newFp);
    await page.getByTestId('hostkey-trust').click();
    await waitState(NODE, 'connected');
  });

  it('lists the trusted key in settings, with the keychain status and its reason', async () => {
    await page.getByTestId('nav-settings').click();
    const row = page.locator(`[data-testid="hostkey-row"][data-host="127.0.0.1"][data-port="${sshd.port}"]`);
    await row.waitFor();
    expect(await row.innerText()).toContain(await sshd.fingerprint());
    await expect(page.getByTestId('keychain-reason').textContent()).resolves.toContain('KES_SECRET_BACKEND');
    await screenshot(page, 'settings.png');
  });

  it('validates and saves the SSH settings', async () => {
    await page.getByTestId('settings-timeout').fill('0.5');
    await page.getByTestId('settings-sshconfig').fill('relative/path');
    await page.getByTestId('settings-save').click();
    await expect(page.getByTestId('error-connectTimeoutMs').textContent()).resolves.toBe('Between 1 and 120 seconds');
    await expect(page.getByTestId('error-sshConfigPath').textContent()).resolves.toBe('Path must be absolute');
    await page.getByTestId('settings-timeout').fill('20');
    await page.getByTestId('settings-sshconfig').fill('~/.ssh/config');
    // streaming snapshots straight from etcd is on by default; turned off, snapshots go through SSH
    await expect(page.getByTestId('settings-etcd-direct').isChecked()).resolves.toBe(true);
    await page.getByTestId('settings-etcd-direct').uncheck();
    await page.getByTestId('settings-save').click();
    await page.locator('[data-testid="toast"]', { hasText: 'Settings saved' }).waitFor();
    // Read back through the API the way a fresh page would.
    await page.reload();
    await page.getByTestId('settings-view').waitFor();
    await expect(page.getByTestId('settings-timeout').inputValue()).resolves.toBe('20');
    await expect(page.getByTestId('settings-etcd-direct').isChecked()).resolves.toBe(false);
    await page.getByTestId('settings-etcd-direct').check();
    await page.getByTestId('settings-save').click();
    await page.locator('[data-testid="toast"]', { hasText: 'Settings saved' }).waitFor();
  });

  it('imports a host from ~/.ssh/config', async () => {
    await fs.writeFile(
      join(app.home, '.ssh', 'config'),
      [
        `Host imported-1`,
        `  HostName 127.0.0.1`,
        `  Port ${sshd.port}`,
        `  User root`,
        `  IdentityFile ${key.path}`,
        '',
        'Host *',
        '  ServerAliveInterval 30',
        '',
      ].join('\n'),
    );
    await page.locator(`[data-testid="nav-cluster"][data-cluster-name="${CLUSTER}"]`).click();
    await page.getByTestId('import-ssh-config').click();
    await page.getByTestId('import-host-imported-1').check();
    await page.getByTestId('import-confirm').click();
    await card('imported-1').waitFor();
    await expect(card('imported-1').getByTestId('node-address').textContent()).resolves.toBe(
      `root@127.0.0.1:${sshd.port}`,
    );
    // Same host:port as the trusted node, so no prompt: it connects straight away with the key file.
    await card('imported-1').getByTestId('node-connect').click();
    await waitState('imported-1', 'connected');
  });

  it('removes a node and deletes the cluster only after confirmation', async () => {
    await card('imported-1').getByTestId('node-remove').click();
    await page.getByTestId('node-remove-confirm').getByTestId('confirm-ok').click();
    await card('imported-1').waitFor({ state: 'detached' });

    await page.getByTestId('nav-clusters').click();
    const row = page.locator(`[data-testid="cluster-row"][data-cluster-name="${CLUSTER}"]`);
    await row.getByTestId('cluster-delete').click();
    await page.getByTestId('cluster-delete-confirm').getByRole('button', { name: 'Cancel' }).click();
    await expect(row.count()).resolves.toBe(1);
    await row.getByTestId('cluster-rename').click();
    await page.getByTestId('field-cluster-name').fill('renamed');
    await page.getByTestId('cluster-name-save').click();
    const renamed = page.locator('[data-testid="cluster-row"][data-cluster-name="renamed"]');
    await renamed.waitFor();
    await renamed.getByTestId('cluster-delete').click();
    await page.getByTestId('cluster-delete-confirm').getByTestId('confirm-ok').click();
    await renamed.waitFor({ state: 'detached' });
    expect(s.errors).toEqual([]);
  });
});
