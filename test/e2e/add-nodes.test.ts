// Adding nodes in Chromium, without a lab (nodes need not be reachable to be added; nothing is
// contacted but the app's own loopback server): "Add node" starts from the node added last (port,
// user, key file, jump host; a stored key offered as a copy, never shown); "Add several…" takes a
// pasted list — comments skipped, an invalid line and a duplicate flagged on their rows, roles
// ticked per row — and Hosts from ~/.ssh/config with roles per row, and writes the valid rows in
// one go. Addresses are 198.18.0.0/15 only. Screenshots: test-results/add-nodes-*.png.
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { startSeededApp, stopSeededApp, type SeededApp, screenshot, type Session, type WebApp } from './support/app';

const CLUSTER = 'grow';
const FAKE_KEY = '-----BEGIN OPENSSH PRIVATE KEY-----\nAAAAfakekeyforthee2etest\n-----END OPENSSH PRIVATE KEY-----';

const inventory = {
  version: 1,
  clusters: [
    {
      id: 'cgrow',
      name: CLUSTER,
      createdAt: '2026-01-01T00:00:00.000Z',
      facts: null,
      creation: null,
      nodes: [
        {
          id: 'nlb',
          name: 'lb',
          address: '198.18.0.2',
          port: 22,
          user: 'root',
          roles: ['lb'],
          auth: { method: 'agent' },
          jumpNodeId: null,
        },
        {
          id: 'nm1',
          name: 'm1',
          address: '198.18.0.3',
          port: 2222,
          user: 'ops',
          roles: ['master', 'etcd'],
          auth: { method: 'key-file', keyPath: '/home/ops/.ssh/id_lab' },
          jumpNodeId: 'nlb',
        },
      ],
    },
  ],
};

const SSH_CONFIG = [
  'Host lb2',
  '  HostName 198.18.0.20',
  '  User admin',
  '  Port 2200',
  '  IdentityFile ~/.ssh/id_lb2',
  'Host w5',
  '  HostName 198.18.0.21',
  '  ProxyJump lb',
  'Host *',
  '  User root',
  '',
].join('\n');

let env: SeededApp | undefined;
let app: WebApp;
let s: Session;
let page: Page;
const tid = (id: string) => page.getByTestId(id);
const card = (name: string) => page.locator(`[data-testid="node-card"][data-node-name="${name}"]`);
const row = (i: number) => page.locator(`[data-testid="add-nodes-row"][data-index="${i}"]`);

interface StoredNode {
  id: string;
  name: string;
  address: string;
  port: number;
  user: string;
  roles: string[];
  auth: { method: string; keyPath?: string };
  jumpNodeId: string | null;
}
async function storedNodes(): Promise<Record<string, StoredNode>> {
  const inv = JSON.parse(await fs.readFile(join(app.dataDir, 'inventory.json'), 'utf8')) as typeof inventory;
  return Object.fromEntries((inv.clusters[0].nodes as StoredNode[]).map((n) => [n.name, n]));
}

/** Edit `name`: the form says a private key is stored (never showing it). */
async function expectStoredKey(name: string): Promise<void> {
  await card(name).getByTestId('node-edit').click();
  await tid('stored-privateKey').waitFor();
  expect(await tid('node-form').innerText()).not.toContain('PRIVATE KEY-----');
  await tid('node-form').getByRole('button', { name: 'Cancel' }).click();
  await tid('node-form').waitFor({ state: 'detached' });
}

beforeAll(async () => {
  env = await startSeededApp(inventory, { width: 1440, height: 1000 }, async (dataDir, home) => {
    await fs.writeFile(join(home, '.ssh', 'config'), SSH_CONFIG, { mode: 0o600 });
  });
  ({ app, session: s, page } = env);
  await page.locator(`[data-testid="nav-cluster"][data-cluster-name="${CLUSTER}"]`).click();
  await tid('node-map').waitFor();
});

afterAll(() => stopSeededApp(env ?? {}));

describe('Add node: the previous node’s settings are offered', () => {
  it('prefills port, user, key file and jump host from m1 (the node added last); every field can change', async () => {
    await tid('node-add').click();
    await expect(tid('node-form-prefill').getAttribute('data-from')).resolves.toBe('m1');
    await expect(tid('field-port').inputValue()).resolves.toBe('2222');
    await expect(tid('field-user').inputValue()).resolves.toBe('ops');
    await expect(tid('auth-key-file').isChecked()).resolves.toBe(true);
    await expect(tid('field-keyPath').inputValue()).resolves.toBe('/home/ops/.ssh/id_lab');
    await expect(tid('field-jump').inputValue()).resolves.toBe('nlb');
    await expect(tid('field-name').inputValue()).resolves.toBe('');
    await expect(tid('field-address').inputValue()).resolves.toBe('');
    await tid('field-name').fill('m2');
    await tid('field-address').fill('198.18.0.4');
    await tid('field-user').fill('root');
    await tid('role-master').check();
    await screenshot(page, 'add-nodes-prefill.png');
    await tid('node-save').click();
    await card('m2').waitFor();
    await expect(card('m2').getByTestId('node-address').textContent()).resolves.toBe('root@198.18.0.4:2222');
    const m2 = (await storedNodes()).m2;
    expect(m2).toMatchObject({ port: 2222, user: 'root', jumpNodeId: 'nlb', roles: ['master'] });
    expect(m2.auth).toEqual({ method: 'key-file', keyPath: '/home/ops/.ssh/id_lab' });
  });

  it('offers the key stored for the previous node as a copy instead of a paste', async () => {
    // m3: a pasted key, kept in the (memory) keychain.
    await tid('node-add').click();
    await tid('field-name').fill('m3');
    await tid('field-address').fill('198.18.0.5');
    await tid('field-port').fill('22');
    await tid('field-jump').selectOption('');
    await tid('auth-key-stored').check();
    await tid('field-pastedKey').fill(FAKE_KEY);
    await tid('node-save').click();
    await card('m3').waitFor();

    // m4 starts from m3: its stored key is offered, and no key has to be pasted.
    await tid('node-add').click();
    await expect(tid('node-form-prefill').getAttribute('data-from')).resolves.toBe('m3');
    await expect(tid('auth-key-stored').isChecked()).resolves.toBe(true);
    await tid('node-form-reuse').waitFor();
    await expect(tid('node-form-reuse').innerText()).resolves.toContain('m3');
    await expect(tid('field-pastedKey').count()).resolves.toBe(0);
    // "Enter another" brings the paste back, "Use the private key stored for m3" the copy.
    await tid('node-form-reuse-off').click();
    await tid('field-pastedKey').waitFor();
    await tid('node-form-reuse-on').click();
    await tid('node-form-reuse').waitFor();
    await tid('field-name').fill('m4');
    await tid('field-address').fill('198.18.0.6');
    await tid('node-save').click();
    await card('m4').waitFor();
    await expectStoredKey('m4');
  });
});

describe('Add several…: a pasted list with roles per row', () => {
  it('reads the list into a table: comments skipped, an invalid line and a duplicate flagged per row', async () => {
    await tid('node-add-many').click();
    await tid('add-nodes').waitFor();
    await expect(tid('add-nodes-prefill').getAttribute('data-from')).resolves.toBe('m4');
    await tid('add-nodes-paste').fill(
      [
        '# the external etcd and a worker',
        '198.18.0.10 e1 etcd',
        '198.18.0.11 e2 etcd',
        '',
        'root@198.18.0.12:22 w1 worker   # first worker',
        '198.18.0.11 e2-again            # the same machine again',
        '300.1.1.1 bad                   # not an address',
        '198.18.0.13:99999 w9            # no such port',
        '198.18.0.3:2222 m1-again        # m1 is in the cluster already',
      ].join('\n'),
    );
    await tid('add-nodes-parse').click();
    await expect(tid('add-nodes-row').count()).resolves.toBe(7);
    await expect(tid('add-nodes-paste').inputValue()).resolves.toBe('');
    const validity = await tid('add-nodes-row').evaluateAll((els) => els.map((e) => e.getAttribute('data-valid')));
    expect(validity).toEqual(['true', 'true', 'true', 'false', 'false', 'false', 'false']);
    const errors = await tid('add-nodes-row-error').evaluateAll((els) =>
      els.map((e) => `${e.getAttribute('data-index')}.${e.getAttribute('data-field')}: ${e.textContent!.trim()}`),
    );
    expect(errors).toEqual([
      '3.address: Same machine as line 3',
      '4.address: Not a valid host name or IP address',
      '5.port: Port must be between 1 and 65535',
      '6.address: Same machine already in the cluster as m1',
    ]);
    await expect(row(0).locator('td').first().textContent()).resolves.toBe('line 2');
    await expect(tid('add-nodes-port-2').inputValue()).resolves.toBe('22');
    await expect(tid('add-nodes-user-2').inputValue()).resolves.toBe('root');
    await expect(tid('add-nodes-summary').getAttribute('data-valid')).resolves.toBe('3');
    await expect(tid('add-nodes-summary').getAttribute('data-skipped')).resolves.toBe('4');
  });

  it('edits roles per row and fixes a row in place; the stored key of m4 is offered for all', async () => {
    // Roles from the list are ticked; e2 becomes a master instead of an etcd node.
    await expect(tid('add-nodes-role-etcd-0').isChecked()).resolves.toBe(true);
    await expect(tid('add-nodes-role-worker-2').isChecked()).resolves.toBe(true);
    await tid('add-nodes-role-etcd-1').uncheck();
    await tid('add-nodes-role-master-1').check();
    // Fix the bad port in its cell: the row becomes valid; then remove it again.
    await tid('add-nodes-port-5').fill('2201');
    await expect(row(5).getAttribute('data-valid')).resolves.toBe('true');
    await expect(tid('add-nodes-summary').getAttribute('data-valid')).resolves.toBe('4');
    await tid('add-nodes-remove-5').click();
    await expect(tid('add-nodes-row').count()).resolves.toBe(6);
    await expect(tid('add-nodes-summary').getAttribute('data-valid')).resolves.toBe('3');
    // The shared credential starts as m4's: a pasted key, the stored one reused.
    await expect(tid('add-nodes-auth-key-stored').isChecked()).resolves.toBe(true);
    await tid('add-nodes-reuse').waitFor();
    await expect(tid('add-nodes-pasted-key').count()).resolves.toBe(0);
    await screenshot(page, 'add-nodes-paste.png');
  });

  it('adds the three valid rows in one go with their roles; the others are not written', async () => {
    await expect(tid('add-nodes-confirm').textContent()).resolves.toContain('Add 3 nodes');
    await tid('add-nodes-confirm').click();
    await tid('add-nodes').waitFor({ state: 'detached' });
    for (const n of ['e1', 'e2', 'w1']) await card(n).waitFor();
    const nodes = await storedNodes();
    expect(Object.keys(nodes)).toEqual(['lb', 'm1', 'm2', 'm3', 'm4', 'e1', 'e2', 'w1']);
    expect(nodes.e1).toMatchObject({ address: '198.18.0.10', port: 22, user: 'root', roles: ['etcd'] });
    expect(nodes.e2).toMatchObject({ address: '198.18.0.11', roles: ['master'] });
    expect(nodes.w1).toMatchObject({ address: '198.18.0.12', roles: ['worker'] });
    for (const n of ['e1', 'e2', 'w1']) expect(nodes[n].auth).toEqual({ method: 'key-stored' });
    await expect(page.getByTestId('tier-master').locator('[data-node-name="e2"]').count()).resolves.toBe(1);
    // Each new node has its own copy of m4's key in the keychain.
    await expectStoredKey('w1');
  });
});

describe('Add several…: Hosts from ~/.ssh/config with roles per row', () => {
  it('lists the concrete Hosts, takes the picked ones into the table, adds them with their roles', async () => {
    await tid('node-add-many').click();
    await tid('add-nodes-source-ssh').click();
    await tid('add-nodes-ssh-table').waitFor();
    await expect(page.locator('[data-testid^="add-nodes-ssh-host-"]').count()).resolves.toBe(2);
    await tid('add-nodes-ssh-host-lb2').check();
    await tid('add-nodes-ssh-host-w5').check();
    await tid('add-nodes-ssh-add').click();
    await expect(tid('add-nodes-row').count()).resolves.toBe(2);
    await expect(row(0).locator('td').first().textContent()).resolves.toBe('Host lb2');
    await expect(tid('add-nodes-address-0').inputValue()).resolves.toBe('198.18.0.20');
    await expect(tid('add-nodes-port-0').inputValue()).resolves.toBe('2200');
    await expect(tid('add-nodes-user-0').inputValue()).resolves.toBe('admin');
    await expect(tid('add-nodes-user-1').inputValue()).resolves.toBe('root');
    await tid('add-nodes-role-lb-0').check();
    await tid('add-nodes-role-worker-1').check();
    // w5 has no IdentityFile: it takes the shared credential, here the ssh-agent.
    await tid('add-nodes-auth-agent').check();
    await screenshot(page, 'add-nodes-ssh-config.png');
    await tid('add-nodes-confirm').click();
    await tid('add-nodes').waitFor({ state: 'detached' });
    await card('lb2').waitFor();
    await card('w5').waitFor();
    const nodes = await storedNodes();
    expect(nodes.lb2).toMatchObject({ address: '198.18.0.20', port: 2200, user: 'admin', roles: ['lb'] });
    expect(nodes.lb2.auth).toEqual({ method: 'key-file', keyPath: join(app.home, '.ssh', 'id_lb2') });
    expect(nodes.w5).toMatchObject({ address: '198.18.0.21', port: 22, user: 'root', roles: ['worker'] });
    expect(nodes.w5.auth).toEqual({ method: 'agent' });
    expect(nodes.w5.jumpNodeId).toBe('nlb');
    await screenshot(page, 'add-nodes-done.png');
    expect(s.errors).toEqual([]);
  });
});
