// The external etcd story through the UI, against a kubeadm-shaped lab (3 masters behind haproxy,
// 2 spare hosts): create the cluster, add m1 by address, Initialize; demo pod and a snapshot; add
// s1, s2 and the LB host; provision an external etcd on them (preview, run); restore the
// snapshot onto it; switch the apiservers to it (preview with the apiserver diffs, typed name,
// measured unavailable time); the pod is served and /readyz through the LB answers; remove s2 from
// the member table and keep serving; add it back as a healthy voting member; switch back to
// embedded; the pod is still there. Screenshots of the node map in each mode.
// Needs root (the lab builds network namespaces). Only loopback and the lab's 198.18.0.0/15
// addresses are contacted.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Locator, Page } from 'playwright-core';
import type { Lab } from '../lab';
import { screenshot, type WebApp } from './support/app';
import {
  addNode,
  createDemoPod,
  isRoot,
  startLabApp,
  stopLabApp,
  waitLbReady,
  waitPodStatus,
  type LabApp,
} from './support/lab-app';

if (!isRoot) console.log('lab-external.test.ts skipped: the lab needs root (network namespaces, mounts)');

const LONG = 300_000;
let env: LabApp | undefined;
let lab: Lab;
let app: WebApp;
let page: Page;
let clusterName: string;

const tid = (id: string) => page.getByTestId(id);
const card = (name: string): Locator => page.locator(`[data-testid="node-card"][data-node-name="${name}"]`);
const headerMode = () => tid('cluster-view').locator('.page-head [data-testid="mode-badge"]');

/** Wait until the header shows `mode` (facts re-read after each job step). */
async function waitHeaderMode(mode: string, timeout = 60_000): Promise<void> {
  await tid('cluster-view').locator(`.page-head [data-testid="mode-badge"][data-mode="${mode}"]`).waitFor({ timeout });
}

/** The plan preview of `kind` is shown: type the name when it asks, run, and land on the job. */
async function runPreview(kind: string): Promise<Locator> {
  const preview = tid('plan-preview');
  await preview.locator(`[data-kind="${kind}"]`).waitFor({ timeout: 120_000 });
  if (await tid('plan-confirm-input').count()) {
    await expect(tid('plan-run').isDisabled()).resolves.toBe(true);
    await tid('plan-confirm-input').fill(clusterName);
  }
  await tid('plan-run').click();
  const view = page.locator(`[data-testid="job-view"][data-kind="${kind}"]`);
  await view.waitFor({ timeout: 30_000 });
  return view;
}

/** Wait until the job shown ends; fail with its text and the server log unless it succeeded. */
async function waitJobEnd(view: Locator, timeout = LONG - 30_000): Promise<void> {
  await view.and(page.locator(':not([data-status="running"])')).waitFor({ timeout });
  const status = await view.getAttribute('data-status');
  if (status !== 'succeeded') {
    const text = await view.innerText();
    throw new Error(`job ended ${status}:\n${text.slice(0, 4000)}\n--- server log ---\n${app.log().slice(-3000)}`);
  }
}

/** The Nodes tab (facts and node map with their etcd labels). */
async function showNodeMap(): Promise<void> {
  await tid('tab-nodes').click();
  await tid('node-map').waitFor();
}

/** A picture of the whole Nodes tab (header with the mode, facts, node map), toasts gone. */
async function shootNodeMap(name: string): Promise<void> {
  await page.setViewportSize({ width: 1440, height: 1900 });
  try {
    await expect.poll(() => page.getByTestId('toast').count(), { timeout: 20_000 }).toBe(0);
    await page.locator('main.content').evaluate((el) => el.scrollTo(0, 0));
    await screenshot(page, name);
  } finally {
    await page.setViewportSize({ width: 1440, height: 1000 });
  }
}

const etcdOf = (name: string) => card(name).getAttribute('data-etcd');

/** Open the switch from the header in `direction`, plan it and check the preview shows the apiserver diffs. */
async function planSwitch(
  direction: 'to-external' | 'to-embedded',
  data: 'fresh-snapshot' | 'on-target' = 'fresh-snapshot',
): Promise<Locator> {
  const open = page.locator(`[data-testid="switch-open"][data-direction="${direction}"]`);
  await open.waitFor({ timeout: 60_000 });
  await expect(open.isDisabled()).resolves.toBe(false);
  await open.click();
  await page.locator(`[data-testid="switch-dialog"] [data-direction="${direction}"]`).waitFor();
  // Back to embedded offers to keep the external members running (not by default).
  await expect(tid('switch-keep-running').count()).resolves.toBe(direction === 'to-embedded' ? 1 : 0);
  if (direction === 'to-embedded') await expect(tid('switch-keep-running').isChecked()).resolves.toBe(false);
  // Right after a restore onto the target, its data is offered first; otherwise a fresh snapshot.
  await expect(tid(data === 'on-target' ? 'switch-data-on-target' : 'switch-data-fresh').isChecked()).resolves.toBe(
    true,
  );
  if (data === 'on-target') await screenshot(page, 'switch-dialog.png');
  await tid('switch-plan').click();
  const preview = tid('plan-preview');
  await preview.locator(`[data-kind="switch-${direction}"]`).waitFor({ timeout: 120_000 });
  await expect(preview.getByTestId('plan-destructive').count()).resolves.toBe(1);
  const apiserverDiffs = preview.locator('[data-testid="diff"][data-path$="kube-apiserver.yaml"]');
  expect(await apiserverDiffs.count()).toBe(3);
  await expect(apiserverDiffs.first().locator('[data-kind="add"]').first().innerText()).resolves.toContain(
    '--etcd-servers',
  );
  return preview;
}

beforeAll(async () => {
  if (!isRoot) return;
  env = await startLabApp({ prefix: 'ke5', masters: 3, lb: 'haproxy', spares: 2 });
  ({ lab, app, page, clusterName } = env);
}, 240_000);

afterAll(() => stopLabApp(env), 120_000);

describe('lab story: external etcd — provision, restore, switch both ways, member repair', () => {
  it.skipIf(!isRoot)(
    'creates the cluster, adds m1, initializes (other masters’ keys in one dialog): embedded-up',
    async () => {
      await tid('cluster-create').click();
      await tid('field-cluster-name').fill(clusterName);
      await tid('cluster-name-save').click();
      await expect(tid('cluster-title').textContent()).resolves.toBe(clusterName);
      // No switch before initialize.
      await expect(tid('switch-open').count()).resolves.toBe(0);
      await addNode(page, lab, 'm1', ['master', 'etcd']);

      await tid('cluster-initialize').click();
      await tid('initialize-dialog').waitFor();
      await tid('initialize-run').click();
      const many = tid('hostkeys-many');
      await many.waitFor({ timeout: 90_000 });
      await tid('hostkeys-many-trust').click();
      await tid('facts-panel').waitFor({ timeout: 120_000 });
      await expect(headerMode().getAttribute('data-mode')).resolves.toBe('embedded-up');
      await expect(page.locator('[data-testid="tier-master"] [data-testid="node-card"]').count()).resolves.toBe(3);
      // The stacked members serve the apiservers.
      for (const m of ['m1', 'm2', 'm3']) await expect(etcdOf(m)).resolves.toBe('active');
      await expect(tid('tier-master').getAttribute('data-etcd-live')).resolves.toBe('true');
      // Nothing to switch to yet.
      await expect(tid('switch-open').isDisabled()).resolves.toBe(true);
    },
    LONG,
  );

  it.skipIf(!isRoot)(
    'creates the demo pod and takes a snapshot',
    async () => {
      expect(await createDemoPod(lab)).toBe(201);
      await tid('tab-snapshots').click();
      await tid('snapshots-view').waitFor();
      await tid('snapshot-note-new').fill('with demo pod');
      await tid('snapshot-take').click();
      await page
        .locator('[data-testid="snapshot-job"] [data-testid="job-view"][data-status="succeeded"]')
        .waitFor({ timeout: 120_000 });
      await page.locator('[data-testid="snapshot-row"][data-note="with demo pod"]').waitFor({ timeout: 30_000 });
      await tid('snapshot-job-dismiss').click();
    },
    LONG,
  );

  it.skipIf(!isRoot)(
    'adds s1, s2 and the LB host and provisions an external etcd on them (preview, run): configured, parked',
    async () => {
      await addNode(page, lab, 's1', []);
      await addNode(page, lab, 's2', []);
      // The LB host is never contacted before the provisioning: its key is confirmed in the table.
      await addNode(page, lab, 'lb', ['lb'], false);

      await tid('tab-external').click();
      await tid('external-view').waitFor();
      await tid('external-provision-open').click();
      await tid('provision-dialog').waitFor();
      const pick = (name: string) => page.locator(`[data-testid="provision-node"][data-node-name="${name}"]`).check();
      // Masters whose stacked member runs cannot be chosen.
      await expect(page.locator('[data-testid="provision-node"][data-node-name="m1"]').isDisabled()).resolves.toBe(
        true,
      );
      await pick('s1');
      await pick('s2');
      // An even count is allowed, with the quorum spelled out.
      await expect(tid('provision-size').innerText()).resolves.toMatch(/2 members need 2 for quorum/);
      await expect(tid('provision-plan').isDisabled()).resolves.toBe(false);
      await pick('lb');
      await expect(tid('provision-plan').isDisabled()).resolves.toBe(false);
      await tid('provision-plan').click();
      // lb's host key is not trusted yet: the same table as at initialize, then the plan.
      await tid('hostkeys-many').waitFor({ timeout: 60_000 });
      await expect(tid('hostkeys-many-row').count()).resolves.toBe(1);
      await expect(page.locator('[data-testid="hostkeys-many-row"][data-node-name="lb"]').count()).resolves.toBe(1);
      await tid('hostkeys-many-trust').click();

      const preview = tid('plan-preview');
      await preview.locator('[data-kind="provision-external"]').waitFor({ timeout: 120_000 });
      const text = await preview.innerText();
      expect(text).toContain('/etc/default/etcd');
      expect(text).toContain('/etc/systemd/system/etcd.service');
      expect(await preview.getByTestId('plan-command').count()).toBeGreaterThan(0);
      await screenshot(page, 'provision-preview.png');
      const view = await runPreview('provision-external');
      await waitJobEnd(view);

      await tid('tab-external').click();
      const rows = tid('external-node');
      await expect.poll(() => rows.count(), { timeout: 30_000 }).toBe(3);
      for (const n of ['s1', 's2', 'lb']) {
        const row = page.locator(`[data-testid="external-node"][data-node-name="${n}"]`);
        await expect(row.getAttribute('data-unit')).resolves.toBe('stopped');
        await expect(row.getAttribute('data-etcd')).resolves.toBe('parked');
      }
      await showNodeMap();
      for (const n of ['s1', 's2', 'lb']) await expect(etcdOf(n)).resolves.toBe('parked');
      for (const m of ['m1', 'm2', 'm3']) await expect(etcdOf(m)).resolves.toBe('active');
      await shootNodeMap('node-map-embedded.png');
    },
    LONG,
  );

  it.skipIf(!isRoot)(
    'restores the snapshot onto the external etcd (typed name): its units run',
    async () => {
      await tid('tab-external').click();
      await tid('external-restore-open').click();
      await tid('restore-dialog').waitFor();
      await expect(tid('restore-snapshot').locator('option:checked').textContent()).resolves.toContain('with demo pod');
      await expect(tid('restore-target-external').isChecked()).resolves.toBe(true);
      // As a standby this time: the apiservers are pointed at it by the switch that follows.
      await expect(tid('restore-point-apiservers').isChecked()).resolves.toBe(true);
      await tid('restore-point-apiservers').uncheck();
      await expect(tid('restore-after').innerText()).resolves.toMatch(/still use the embedded etcd/);
      await screenshot(page, 'restore-dialog.png');
      await tid('restore-plan').click();
      const view = await runPreview('restore-external');
      await waitJobEnd(view);
      await tid('tab-external').click();
      for (const n of ['s1', 's2', 'lb'])
        await expect(
          page.locator(`[data-testid="external-node"][data-node-name="${n}"]`).getAttribute('data-unit'),
        ).resolves.toBe('running');
      // Still embedded: the apiservers have not moved.
      await expect(headerMode().getAttribute('data-mode')).resolves.toBe('embedded-up');
      // The standby etcd can be snapshotted by name: the row says which etcd it came from.
      await tid('tab-snapshots').click();
      await tid('snapshot-source').selectOption('external');
      await tid('snapshot-note-new').fill('standby external');
      await tid('snapshot-take').click();
      await page
        .locator('[data-testid="snapshot-job"] [data-testid="job-view"][data-status="succeeded"]')
        .waitFor({ timeout: 90_000 });
      const row = page.locator('[data-testid="snapshot-row"][data-note="standby external"]');
      await row.waitFor({ timeout: 15_000 });
      await expect(row.innerText()).resolves.toMatch(/embedded-up \/ external etcd/);
    },
    LONG,
  );

  it.skipIf(!isRoot)(
    'switches the apiservers to the external etcd: preview with diffs, typed name, unavailable time, external-up',
    async () => {
      const preview = await planSwitch('to-external', 'on-target');
      // the data the apiservers will serve, as the target holds it
      await expect(preview.innerText()).resolves.toMatch(/used as it is: revision \d+, \d+ Kubernetes keys/);
      await preview.locator('[data-testid="diff"][data-path$="kube-apiserver.yaml"]').first().scrollIntoViewIfNeeded();
      await screenshot(page, 'switch-preview.png');
      const view = await runPreview('switch-to-external');
      await waitJobEnd(view);
      const unavailable = view.getByTestId('job-unavailable');
      await expect(unavailable.innerText()).resolves.toMatch(/unavailable for \d+(\.\d)? s/);
      expect(Number(await unavailable.getAttribute('data-ms'))).toBeGreaterThan(0);
      await screenshot(page, 'switch-done.png');
      await waitHeaderMode('external-up');

      await showNodeMap();
      for (const n of ['s1', 's2', 'lb']) await expect(etcdOf(n)).resolves.toBe('active');
      for (const m of ['m1', 'm2', 'm3']) await expect(etcdOf(m)).resolves.toBe('parked');
      await expect(tid('tier-etcd').getAttribute('data-etcd-live')).resolves.toBe('true');
      await expect(tid('tier-master').getAttribute('data-etcd-live')).resolves.toBe('false');
      await shootNodeMap('node-map-external.png');

      expect(await waitPodStatus(lab, 200, 60_000)).toBe(200);
      expect(await waitLbReady(lab)).toBe(true);
    },
    LONG,
  );

  it.skipIf(!isRoot)(
    'removes s2 from the member table (typed name), keeps serving, adds it back: healthy voting member',
    async () => {
      await tid('tab-external').click();
      const rows = page.locator('[data-testid="members-table"] [data-testid="member-row"]');
      const reachable = page.locator(
        '[data-testid="members-table"] [data-testid="member-row"][data-reachable="true"][data-external="true"]',
      );
      await expect.poll(() => reachable.count(), { timeout: 60_000 }).toBe(3);
      await expect(page.locator('[data-testid="member-row"][data-leader="true"]').count()).resolves.toBe(1);

      await page.locator('[data-testid="member-row"][data-name="s2"]').getByTestId('member-remove').click();
      const removed = await runPreview('member-remove');
      await waitJobEnd(removed);
      expect(await waitLbReady(lab)).toBe(true);
      expect(await waitPodStatus(lab, 200, 60_000)).toBe(200);

      await tid('tab-external').click();
      await expect.poll(() => rows.count(), { timeout: 60_000 }).toBe(2);
      await expect(
        page.locator('[data-testid="external-node"][data-node-name="s2"]').getAttribute('data-unit'),
      ).resolves.toBe('stopped');
      const addBack = page.locator('[data-testid="member-add"][data-node-name="s2"]');
      await addBack.waitFor({ timeout: 30_000 });
      await addBack.click();
      const added = await runPreview('member-add');
      await waitJobEnd(added);

      await tid('tab-external').click();
      await expect.poll(() => reachable.count(), { timeout: 90_000 }).toBe(3);
      const s2 = page.locator('[data-testid="member-row"][data-name="s2"]');
      await expect(s2.getAttribute('data-learner')).resolves.toBe('false');
      await expect(s2.getAttribute('data-reachable')).resolves.toBe('true');
      expect(await waitLbReady(lab)).toBe(true);
      await tid('members-section').scrollIntoViewIfNeeded();
      await screenshot(page, 'members.png');
    },
    LONG,
  );

  it.skipIf(!isRoot)(
    'refuses removing a member without quorum, explains the chicken-and-egg, and the offered restore works',
    async () => {
      // Two of the three external members fail (their units stopped on the hosts).
      for (const n of ['s1', 's2']) await lab.ssh(n, 'systemctl stop etcd');
      await tid('tab-external').click();
      const s1 = page.locator('[data-testid="member-row"][data-name="s1"][data-reachable="false"]');
      await s1.waitFor({ timeout: 120_000 });
      await s1.getByTestId('member-remove').click();
      const view = await runPreview('member-remove');
      await view.and(page.locator('[data-status="failed"]')).waitFor({ timeout: 150_000 });
      const help = view.getByTestId('quorum-lost');
      await help.waitFor();
      await expect(help.innerText()).resolves.toMatch(/chicken-and-egg/);
      await screenshot(page, 'quorum-lost.png');

      // One click: the newest snapshot of the cluster, planned onto the external etcd.
      await help.getByTestId('quorum-restore-latest').click();
      const restore = await runPreview('restore-external');
      await waitJobEnd(restore);
      await tid('tab-external').click();
      const reachable = page.locator(
        '[data-testid="members-table"] [data-testid="member-row"][data-reachable="true"][data-external="true"]',
      );
      await expect.poll(() => reachable.count(), { timeout: 120_000 }).toBe(3);
      expect(await waitLbReady(lab, 120_000)).toBe(true);
      expect(await waitPodStatus(lab, 200, 60_000)).toBe(200);
    },
    LONG,
  );

  it.skipIf(!isRoot)(
    'switches back to embedded: succeeded, embedded-up, the pod is still there',
    async () => {
      await planSwitch('to-embedded');
      const view = await runPreview('switch-to-embedded');
      await waitJobEnd(view);
      await expect(view.getByTestId('job-unavailable').innerText()).resolves.toMatch(/unavailable for/);
      await waitHeaderMode('embedded-up');

      await showNodeMap();
      for (const m of ['m1', 'm2', 'm3']) await expect(etcdOf(m)).resolves.toBe('active');
      for (const n of ['s1', 's2', 'lb']) await expect(etcdOf(n)).resolves.toBe('parked');
      await expect(tid('tier-master').getAttribute('data-etcd-live')).resolves.toBe('true');
      await shootNodeMap('node-map-embedded-again.png');

      expect(await waitPodStatus(lab, 200, 60_000)).toBe(200);
      expect(await waitLbReady(lab)).toBe(true);
      expect(env!.session.errors.filter((e) => e.startsWith('pageerror'))).toEqual([]);
    },
    LONG,
  );
});
