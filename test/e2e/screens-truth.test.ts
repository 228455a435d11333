// Screens tell the truth, offline, in Chromium at 1280 px (issue 11, items 10 and 11): a data dir
// holds two initialized clusters whose nodes cannot be reached (127.0.0.1, port 1) — one on etcd
// 3.4 with etcd-role nodes that nothing was provisioned on, one switched to its external etcd
// (3.6) with snapshots, saved states and a job history. The External etcd tab before provisioning
// shows only Provision… and what it means; unprovisioned nodes carry no etcd label; healthy modes
// are green; etcdutl is "not in 3.4" on 3.4 and flagged missing on 3.6; a succeeded job is at
// 100 % and the Outcome column says how each job ended; every row's main action is on screen.
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import * as tar from 'tar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { offlineNode, startSeededApp, stopSeededApp, type SeededApp, screenshot } from './support/app';

const VIEWPORT = { width: 1280, height: 860 };
const BEFORE = 'before-external';
const SWITCHED = 'switched-external';
const EMPTY = 'no-masters';

const node = offlineNode;

const master = (id: string, name: string, manifest: 'active' | 'parked', servers: string[], version: string) => ({
  nodeId: id,
  name,
  hostname: name,
  etcdServers: servers,
  etcdDataDir: '/var/lib/etcd',
  etcdManifest: manifest,
  etcdPkiDir: '/etc/kubernetes/pki/etcd',
  tools: { etcd: null, etcdctl: '/usr/local/bin/etcdctl', etcdutl: null },
  versions: { etcd: null, etcdctl: version, etcdutl: null },
  problems: [],
});

const facts = (over: Record<string, unknown>) => ({
  initializedAt: '2026-01-01T00:00:00.000Z',
  seedNodeId: 'bm1',
  controlPlaneEndpoint: 'https://127.0.0.1:6443',
  etcdCaCert: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n',
  etcdCaKeyOn: ['m1'],
  members: [],
  modeDetails: [],
  nodeTools: {},
  externalEtcd: {},
  ...over,
});

const EXT_URLS = ['https://127.0.0.4:2379', 'https://127.0.0.5:2379'];
const inventory = {
  version: 1,
  clusters: [
    {
      id: 'cbefore',
      name: BEFORE,
      createdAt: '2026-01-01T00:00:00.000Z',
      creation: null,
      nodes: [
        node('bm1', 'm1', ['master', 'etcd'], '127.0.0.1'),
        node('bs1', 's1', ['etcd'], '127.0.0.2'),
        node('bs2', 's2', ['etcd'], '127.0.0.3'),
      ],
      facts: facts({
        etcdVersion: '3.4.23',
        masters: [master('bm1', 'm1', 'active', ['https://127.0.0.1:2379'], '3.4.23')],
        mode: 'embedded-up',
      }),
    },
    {
      id: 'cswitched',
      name: SWITCHED,
      createdAt: '2026-01-01T00:00:00.000Z',
      creation: null,
      nodes: [
        node('sm1', 'm1', ['master', 'etcd'], '127.0.0.1'),
        node('ss1', 'etcd-a', ['etcd'], '127.0.0.4'),
        node('ss2', 'etcd-b', ['etcd'], '127.0.0.5'),
      ],
      facts: facts({
        seedNodeId: 'sm1',
        etcdVersion: '3.6.5',
        masters: [master('sm1', 'm1', 'parked', EXT_URLS, '3.6.5')],
        mode: 'external-up',
        externalEtcd: Object.fromEntries(
          ['ss1', 'ss2'].map((id) => [
            id,
            { provisionedAt: '2026-01-01T00:00:00.000Z', version: '3.6.5', dataDir: '/var/lib/etcd' },
          ]),
        ),
      }),
    },
    {
      // Facts with no master and no etcd node: saving its state touches no node, so it succeeds offline.
      id: 'cempty',
      name: EMPTY,
      createdAt: '2026-01-01T00:00:00.000Z',
      creation: null,
      nodes: [node('ew1', 'w1', ['worker'], '127.0.0.6')],
      facts: facts({ seedNodeId: 'ew1', etcdVersion: null, masters: [], mode: 'unknown' }),
    },
  ],
};

const uuid = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
const LONG_NOTE =
  'before the upgrade of the ingress controller and the cert-manager CRDs — keep until the quarter ends, ask the platform team';

async function seedVault(dataDir: string): Promise<void> {
  for (let i = 1; i <= 3; i++) {
    const dir = join(dataDir, 'vault', 'snapshots', uuid(i));
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    await fs.writeFile(join(dir, 'snapshot.db'), 'not a real snapshot');
    await fs.writeFile(
      join(dir, 'meta.json'),
      JSON.stringify({
        id: uuid(i),
        note: i === 1 ? LONG_NOTE : `snapshot ${i}`,
        sha256: 'ab'.repeat(32),
        size: 123_456_789,
        revision: 123_456 + i,
        hash: 987_654_321,
        totalKeys: 4321,
        etcdVersion: '3.6.5',
        integrity: 'ok',
        source: {
          kind: 'cluster',
          clusterId: 'cswitched',
          clusterName: SWITCHED,
          mode: 'external-up',
          node: 'm1',
          originalName: null,
          etcd: 'external',
        },
        createdAt: `2026-01-0${i}T10:00:00.000Z`,
        verifiedAt: null,
      }),
    );
  }
  const states = join(dataDir, 'vault', 'states');
  await fs.mkdir(states, { recursive: true, mode: 0o700 });
  for (let i = 1; i <= 2; i++) {
    const build = join(dataDir, `state-build-${i}`);
    await fs.mkdir(build, { recursive: true });
    const manifest = {
      format: 1,
      id: uuid(100 + i),
      clusterId: 'cswitched',
      clusterName: SWITCHED,
      mode: i === 1 ? 'embedded-up' : 'external-up',
      reason: i === 1 ? `before switch to external — ${LONG_NOTE}` : 'saved on demand',
      createdAt: `2026-01-0${i}T11:00:00.000Z`,
      nodes: [
        {
          name: 'm1',
          nodeId: 'sm1',
          address: '127.0.0.1',
          roles: ['master', 'etcd'],
          files: [],
          etcdDataDir: '/var/lib/etcd-kes-20260101-110000',
          etcdUnitActive: null,
        },
      ],
    };
    await fs.writeFile(join(build, 'manifest.json'), JSON.stringify(manifest));
    await tar.create({ gzip: true, file: join(states, `${uuid(100 + i)}.tar.gz`), cwd: build, portable: true }, [
      'manifest.json',
    ]);
    await fs.rm(build, { recursive: true });
  }
  const jobs = join(dataDir, 'jobs');
  await fs.mkdir(jobs, { recursive: true, mode: 0o700 });
  const rec = (n: number, over: Record<string, unknown>) => ({
    id: uuid(200 + n),
    clusterId: 'cswitched',
    clusterName: SWITCHED,
    destructive: true,
    createdAt: `2026-01-0${n}T12:00:00.000Z`,
    startedAt: `2026-01-0${n}T12:00:00.000Z`,
    endedAt: `2026-01-0${n}T12:00:42.000Z`,
    plan: [],
    log: [],
    ...over,
  });
  const step = (path: string, status: string, depth = 0) => ({ path, title: `Step ${path}`, depth, status });
  const records = [
    rec(1, {
      kind: 'switch',
      title: 'Switch to the external etcd',
      status: 'succeeded',
      // A step a condition left out, recorded as pending in an older record: still 100 %.
      steps: [
        step('snapshot', 'done'),
        step('stop-external', 'skipped'),
        step('refresh', 'done'),
        step('x', 'pending'),
      ],
      metrics: { apiserverUnavailableMs: 12_345 },
    }),
    rec(2, {
      kind: 'member-remove',
      title: 'Remove etcd-b from the external etcd',
      status: 'failed',
      steps: [step('check', 'done'), step('remove', 'failed')],
      error: 'remove: etcdserver: re-configuration failed due to not enough started members',
      outcome: 'Nothing on the cluster was changed.',
    }),
  ];
  for (const r of records) await fs.writeFile(join(jobs, `${r.id}.json`), JSON.stringify(r));
}

let env: SeededApp | undefined;
let page: Page;
const tid = (id: string) => page.getByTestId(id);
const card = (name: string) => page.locator(`[data-testid="node-card"][data-node-name="${name}"]`);
const headerMode = () => page.locator('.page-head [data-testid="mode-badge"]');

async function openCluster(name: string, tab?: string): Promise<void> {
  await page.locator(`[data-testid="nav-cluster"][data-cluster-name="${name}"]`).click();
  await page.locator(`[data-testid="cluster-view"][data-cluster-name="${name}"]`).waitFor();
  if (tab) await tid(`tab-${tab}`).click();
}

/** Every element matching `selector` is fully inside the 1280 px width. */
async function allInside(selector: string, min = 1): Promise<void> {
  const items = page.locator(selector);
  await items.first().waitFor();
  const n = await items.count();
  expect(n, selector).toBeGreaterThanOrEqual(min);
  for (let i = 0; i < n; i++) {
    const box = await items.nth(i).boundingBox();
    expect(box, `${selector} #${i} has a box`).not.toBeNull();
    expect(box!.x, `${selector} #${i} left`).toBeGreaterThanOrEqual(0);
    expect(box!.x + box!.width, `${selector} #${i} right edge`).toBeLessThanOrEqual(VIEWPORT.width);
  }
}

beforeAll(async () => {
  env = await startSeededApp(inventory, VIEWPORT, async (dataDir) => {
    await seedVault(dataDir);
  });
  ({ page } = env);
});

afterAll(() => stopSeededApp(env ?? {}));

describe('before anything is provisioned (etcd 3.4)', () => {
  it('header: a healthy mode is green; the switch is offered by mode but waits for an external etcd', async () => {
    await openCluster(BEFORE);
    await tid('node-map').waitFor();
    await expect(headerMode().getAttribute('data-mode')).resolves.toBe('embedded-up');
    await expect(headerMode().getAttribute('data-tone')).resolves.toBe('ok');
    await expect(tid('switch-open').getAttribute('data-direction')).resolves.toBe('to-external');
    await expect(tid('switch-open').isDisabled()).resolves.toBe(true);
  });

  it('node chips: the stacked member is active, etcd-role nodes with nothing set up carry no etcd label', async () => {
    await expect(card('m1').getAttribute('data-etcd')).resolves.toBe('active');
    for (const n of ['s1', 's2']) {
      await expect(card(n).getAttribute('data-etcd')).resolves.toBe('');
      await expect(card(n).getByTestId('node-etcd').count()).resolves.toBe(0);
    }
  });

  it('facts: etcdutl is "not in 3.4" (not flagged), etcdctl is there with its version', async () => {
    const row = page.locator('[data-testid="facts-master"][data-node-name="m1"]');
    await expect(row.getByTestId('facts-tool-etcdutl').getAttribute('data-missing')).resolves.toBe('false');
    await expect(row.getByTestId('facts-tool-etcdutl').innerText()).resolves.toBe('not in 3.4');
    await expect(row.getByTestId('facts-tool-etcdctl').innerText()).resolves.toBe('3.4.23');
    await expect(row.getByTestId('facts-tool-etcd').getAttribute('data-missing')).resolves.toBe('false');
  });

  it('External etcd tab: only Provision… and what it means', async () => {
    await openCluster(BEFORE, 'external');
    await tid('external-empty').waitFor();
    await expect(tid('external-provision-open').innerText()).resolves.toContain('Provision…');
    await expect(tid('external-empty').innerText()).resolves.toMatch(/No external etcd yet[\s\S]*stay stopped/);
    await expect(tid('external-candidates').innerText()).resolves.toContain('s1, s2');
    for (const id of [
      'external-switch-open',
      'external-restore-open',
      'external-node',
      'external-start',
      'external-stop',
      'external-in-use',
      'members-section',
    ])
      await expect(tid(id).count(), id).resolves.toBe(0);
    await expect(page.getByText('parked').count()).resolves.toBe(0);
    await screenshot(page, 'external-before-provision.png');
  });
});

describe('switched to the external etcd (3.6), with history', () => {
  it('header: external-up is green, the switch goes back to embedded; etcdutl is flagged missing on 3.6', async () => {
    await openCluster(SWITCHED);
    await tid('node-map').waitFor();
    await expect(headerMode().getAttribute('data-mode')).resolves.toBe('external-up');
    await expect(headerMode().getAttribute('data-tone')).resolves.toBe('ok');
    await expect(tid('switch-open').getAttribute('data-direction')).resolves.toBe('to-embedded');
    await expect(tid('switch-open').innerText()).resolves.toContain('Switch back to embedded etcd…');
    const row = page.locator('[data-testid="facts-master"][data-node-name="m1"]');
    await expect(row.getByTestId('facts-tool-etcdutl').getAttribute('data-missing')).resolves.toBe('true');
    await expect(row.getByTestId('facts-tool-etcdutl').innerText()).resolves.toBe('missing');
    await expect(card('m1').getAttribute('data-etcd')).resolves.toBe('parked');
  });

  it('Jobs: a succeeded job is at 100 %, and the Outcome column says how each job ended', async () => {
    await openCluster(SWITCHED, 'jobs');
    const ok = page.locator('[data-testid="job-row"][data-status="succeeded"]');
    await ok.waitFor();
    await expect(ok.getByTestId('job-row-progress').getAttribute('data-percent')).resolves.toBe('100');
    await expect(ok.getByTestId('job-row-outcome').innerText()).resolves.toBe(
      'Succeeded: 4 steps done in 42 s; the apiservers were unavailable for 12.3 s.',
    );
    await expect(ok.getByTestId('job-status').getAttribute('data-tone')).resolves.toBe('ok');
    const bad = page.locator('[data-testid="job-row"][data-status="failed"]');
    await expect(bad.getByTestId('job-row-outcome').innerText()).resolves.toMatch(
      /^Failed at “Step remove”: etcdserver: re-configuration failed.*Nothing on the cluster was changed\.$/,
    );
    await allInside('[data-testid="job-row"] button.link', 2);
    await allInside('[data-testid="job-row-outcome"]', 2);
    await screenshot(page, 'jobs-outcome.png');
    // The job itself: 100 % too.
    await ok.locator('button.link').click();
    await tid('job-view').waitFor();
    await expect(tid('job-progress').getAttribute('data-percent')).resolves.toBe('100');
    await expect(tid('job-outcome').getAttribute('data-summary')).resolves.toMatch(/^Succeeded: 4 steps done/);
    await tid('job-succeeded').waitFor();
    await expect(tid('job-progress').getAttribute('data-done')).resolves.toBe(
      await tid('job-progress').getAttribute('data-total'),
    );
  });

  it('Snapshots and States: every row action is on screen at 1280 px', async () => {
    await openCluster(SWITCHED, 'snapshots');
    await tid('snapshots-table').waitFor();
    for (const id of ['snapshot-verify', 'snapshot-export', 'snapshot-restore', 'snapshot-delete'])
      await allInside(`[data-testid="snapshot-row"] [data-testid="${id}"]`, 3);
    await screenshot(page, 'snapshots-1280.png');
    await openCluster(SWITCHED, 'states');
    await tid('states-table').waitFor();
    await allInside('[data-testid="state-row"] [data-testid="state-restore"]', 2);
  });

  it('External etcd: provisioned members named by the apiservers, Start/Stop on screen, the switch offered', async () => {
    await openCluster(SWITCHED, 'external');
    await tid('external-node').first().waitFor();
    await expect(tid('external-node').count()).resolves.toBe(2);
    await expect(tid('external-empty').count()).resolves.toBe(0);
    await expect(tid('external-provision-open').innerText()).resolves.toContain('Provision again…');
    // (No direction asserted here: the live health check of unreachable nodes rightly overrides the mode.)
    // Configured for the external etcd, up or (unreachable here) down: the switch goes back.
    await expect(tid('external-switch-open').innerText()).resolves.toContain('Switch back to embedded…');
    for (const n of ['etcd-a', 'etcd-b']) {
      const row = page.locator(`[data-testid="external-node"][data-node-name="${n}"]`);
      await expect(row.getAttribute('data-etcd')).resolves.toBe('active');
      await expect(row.getByTestId('external-apiservers').innerText()).resolves.toBe('active');
    }
    await allInside('[data-testid="external-node"] [data-testid="external-start"]', 2);
    await allInside('[data-testid="external-node"] [data-testid="external-stop"]', 2);
    await screenshot(page, 'external-provisioned.png');
  });

  it('a job that fails gives exactly one toast, red (no green one, no second one)', async () => {
    await openCluster(SWITCHED, 'states');
    await tid('state-capture').click();
    await tid('plan-run').click();
    // The nodes cannot be reached: the job fails.
    await page
      .locator('[data-testid="toast"]', { hasText: 'Save the current state: failed' })
      .waitFor({ timeout: 60_000 });
    await page.waitForTimeout(500);
    const toasts = page.locator('[data-testid="toast"]', { hasText: 'Save the current state' });
    await expect(toasts.count()).resolves.toBe(1);
    await expect(toasts.getAttribute('data-kind')).resolves.toBe('error');
  });

  it('a job that succeeds gives exactly one toast, green (the old code added a red one)', async () => {
    // The previous test's red toast goes first (errors stay 9 s).
    await expect.poll(() => page.getByTestId('toast').count(), { timeout: 20_000 }).toBe(0);
    await openCluster(EMPTY, 'states');
    await tid('state-capture').click();
    await tid('plan-run').click();
    await page
      .locator('[data-testid="toast"]', { hasText: 'Save the current state: done' })
      .waitFor({ timeout: 60_000 });
    await page.waitForTimeout(500);
    const toasts = page.locator('[data-testid="toast"]', { hasText: 'Save the current state' });
    await expect(toasts.count()).resolves.toBe(1);
    await expect(toasts.getAttribute('data-kind')).resolves.toBe('success');
  });
});
