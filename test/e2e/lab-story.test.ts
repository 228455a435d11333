// The heart of the product through the UI, against a kubeadm-shaped lab (3 masters behind
// haproxy): create a cluster, add one master by address, trust its key, Initialize (the other
// masters' keys confirmed in one dialog), watch health (3 members, embedded-up), snapshot with a
// demo pod, run the drill (typed name) that wipes it, restore the snapshot through the plan
// preview (diffs shown, name typed), follow the run to success, and find the pod back.
// Needs root (the lab builds network namespaces). Only loopback and the lab's 198.18.0.0/15
// addresses are contacted.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Locator, Page } from 'playwright-core';
import type { Lab } from '../lab';
import { screenshot, type WebApp } from './support/app';
import {
  addNode,
  countDrillObjects,
  createDemoPod,
  createDrillObjects,
  isRoot,
  podStatus,
  startLabApp,
  stopLabApp,
  waitPodStatus,
  type LabApp,
} from './support/lab-app';

if (!isRoot) console.log('lab-story.test.ts skipped: the lab needs root (network namespaces, mounts)');

let env: LabApp | undefined;
let lab: Lab;
let app: WebApp;
let page: Page;
let clusterName: string;

const tid = (id: string) => page.getByTestId(id);
const jobView = (status?: string): Locator =>
  page.locator(`[data-testid="job-view"]${status ? `[data-status="${status}"]` : ''}`);

/** Wait until the job shown ends; fail with its error/outcome when it did not succeed. */
async function waitJobEnd(timeout: number): Promise<string> {
  await page.locator('[data-testid="job-view"]:not([data-status="running"])').waitFor({ timeout });
  const status = (await jobView().getAttribute('data-status'))!;
  if (status !== 'succeeded') {
    const text = await jobView().innerText();
    throw new Error(`job ended ${status}:\n${text.slice(0, 4000)}\n--- server log ---\n${app.log().slice(-3000)}`);
  }
  return status;
}

beforeAll(async () => {
  if (!isRoot) return;
  env = await startLabApp({ prefix: 'ke4', masters: 3, lb: 'haproxy' });
  ({ lab, app, page, clusterName } = env);
}, 240_000);

afterAll(() => stopLabApp(env), 120_000);

describe('lab story: initialize, health, snapshot, drill, restore', () => {
  /** Deployments, ConfigMaps, Secrets, Roles, RoleBindings in default and team-a before the snapshot. */
  let objectsBefore: Record<string, number>;
  it.skipIf(!isRoot)(
    'creates the cluster, adds m1 with the lab key and trusts its host key',
    async () => {
      await tid('cluster-create').click();
      await tid('field-cluster-name').fill(clusterName);
      await tid('cluster-name-save').click();
      await expect(tid('cluster-title').textContent()).resolves.toBe(clusterName);
      await expect(
        tid('cluster-view').locator('[data-testid="mode-badge"]').first().getAttribute('data-mode'),
      ).resolves.toBe('none');

      await addNode(page, lab, 'm1', ['master', 'etcd']);
    },
    60_000,
  );

  it.skipIf(!isRoot)(
    'initializes from m1: one dialog for the new masters’ keys, then facts and mode embedded-up',
    async () => {
      await tid('cluster-initialize').click();
      await tid('initialize-dialog').waitFor();
      const seed = await tid('initialize-seed').locator('option:checked').textContent();
      expect(seed).toContain('m1');
      await tid('initialize-run').click();

      const many = tid('hostkeys-many');
      await many.waitFor({ timeout: 60_000 });
      const rows = many.getByTestId('hostkeys-many-row');
      await expect(rows.evaluateAll((els) => els.map((e) => e.getAttribute('data-node-name')).sort())).resolves.toEqual(
        ['m2', 'm3'],
      );
      for (const fp of await many.getByTestId('hostkeys-many-fingerprint').allTextContents())
        expect(fp).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
      await tid('hostkeys-many-trust').click();

      await tid('facts-panel').waitFor({ timeout: 90_000 });
      await expect(tid('initialize-dialog').count()).resolves.toBe(0);
      await expect(tid('facts-master').count()).resolves.toBe(3);
      await expect(tid('facts-member').count()).resolves.toBe(3);
      await expect(tid('facts-endpoint').textContent()).resolves.toBe(`https://${lab.host('lb').address}:6443`);
      await expect(tid('facts-etcd-version').textContent()).resolves.toBe(lab.state.etcdVersion);
      await expect(tid('facts-ca').innerText()).resolves.toContain('certificate present');
      const header = tid('cluster-view').locator('.page-head [data-testid="mode-badge"]');
      await expect(header.getAttribute('data-mode')).resolves.toBe('embedded-up');
      // Initialize added the other masters to the node map.
      await expect(page.locator('[data-testid="tier-master"] [data-testid="node-card"]').count()).resolves.toBe(3);
      await screenshot(page, 'cluster-facts.png');
    },
    150_000,
  );

  it.skipIf(!isRoot)(
    'shows live health: 3 reachable members with one leader, ready apiservers, kube-system pods',
    async () => {
      await tid('tab-health').click();
      await page.locator('[data-testid="health-view"][data-mode="embedded-up"]').waitFor({ timeout: 60_000 });
      const members = tid('health-member');
      await expect(members.count()).resolves.toBe(3);
      await expect(page.locator('[data-testid="health-member"][data-leader="true"]').count()).resolves.toBe(1);
      await expect(page.locator('[data-testid="health-member"][data-reachable="true"]').count()).resolves.toBe(3);
      await expect(page.locator('[data-testid="health-apiserver"][data-ready="true"]').count()).resolves.toBe(3);
      await page.locator('[data-testid="health-pod"][data-phase="Running"]').first().waitFor({ timeout: 30_000 });
      await expect(tid('health-cluster-id').textContent()).resolves.toMatch(/^[0-9a-f]+$/);
      // The DB size is human readable.
      await expect(members.first().innerText()).resolves.toMatch(/\d(\.\d+)? (B|KiB|MiB)/);
      // The list shows the mode too (from the health report).
      await screenshot(page, 'health.png');
    },
    90_000,
  );

  it.skipIf(!isRoot)(
    'takes a snapshot with the demo pod and lists it',
    async () => {
      expect(await createDemoPod(lab)).toBe(201);
      expect(await podStatus(lab)).toBe(200);
      // what the drill deletes besides pods, in default and team-a (counted before, after, restored)
      expect(new Set(await createDrillObjects(lab))).toEqual(new Set([201]));
      objectsBefore = await countDrillObjects(lab);

      await tid('tab-snapshots').click();
      await tid('snapshots-view').waitFor();
      await tid('snapshot-note-new').fill('with demo pod');
      await tid('snapshot-take').click();
      await page
        .locator('[data-testid="snapshot-job"] [data-testid="job-view"][data-status="succeeded"]')
        .waitFor({ timeout: 90_000 });
      const row = page.locator('[data-testid="snapshot-row"][data-note="with demo pod"]');
      await row.waitFor({ timeout: 15_000 });
      const text = await row.innerText();
      expect(text).toMatch(/embedded-up/);
      expect(text).toContain(lab.state.etcdVersion);
      await tid('snapshot-job-dismiss').click();

      // Verify re-hashes and re-reads the status; the verified time appears.
      await expect(row.getByTestId('snapshot-verified').innerText()).resolves.toContain('never');
      await row.getByTestId('snapshot-verify').click();
      await row.getByTestId('snapshot-verified').getByText('✓').waitFor({ timeout: 30_000 });
      // The note is edited inline (Enter saves) and survives a reload of the list.
      await row.getByTestId('snapshot-note').click();
      await tid('snapshot-note-input').fill('with demo pod; checked');
      await tid('snapshot-note-input').press('Enter');
      const renamed = page.locator('[data-testid="snapshot-row"][data-note="with demo pod; checked"]');
      await renamed.waitFor();
      await tid('snapshots-refresh').click();
      await renamed.waitFor();
      await renamed.getByTestId('snapshot-note').click();
      await tid('snapshot-note-input').fill('with demo pod');
      await tid('snapshot-note-input').press('Enter');
      await row.waitFor();
      // The schedule is saved for the cluster.
      await tid('schedule-enabled').check();
      await tid('schedule-every').fill('12');
      await tid('schedule-keep').fill('5');
      await tid('schedule-save').click();
      await page.getByTestId('toast').getByText('Snapshots every 12 h, keeping 5').waitFor();
      await tid('schedule-enabled').uncheck();
      await tid('schedule-save').click();
      await page.getByTestId('toast').getByText('Scheduled snapshots off').waitFor();
      await screenshot(page, 'snapshots.png');
    },
    120_000,
  );

  it.skipIf(!isRoot)(
    'runs the drill only after the cluster name is typed: every kind in every namespace but kube-* is gone',
    async () => {
      await tid('drill-open').click();
      await expect(tid('drill-namespaces').inputValue()).resolves.toBe('default');
      // every kind is chosen by default; the scope widens to every namespace but kube-*
      for (const k of ['deployments', 'daemonsets', 'statefulsets', 'pods', 'configmaps', 'secrets', 'rbac'])
        await expect(tid(`drill-kind-${k}`).isChecked()).resolves.toBe(true);
      await tid('drill-all-namespaces').check();
      await expect(tid('drill-namespaces').count()).resolves.toBe(0);
      await screenshot(page, 'drill-dialog.png');
      await tid('drill-plan').click();
      const preview = tid('plan-preview');
      await preview.waitFor({ timeout: 60_000 });
      // the scope the plan resolved: the user's namespaces, never kube-system
      await expect(preview.innerText()).resolves.toMatch(/Scope: default, team-a \(every namespace but kube-\*/);
      await expect(preview.locator('[data-destructive="true"]').count()).resolves.toBe(1);
      await expect(tid('plan-run').isDisabled()).resolves.toBe(true);
      await tid('plan-confirm-input').fill('not-the-name');
      await expect(tid('plan-run').isDisabled()).resolves.toBe(true);
      await tid('plan-confirm-input').fill(clusterName);
      await tid('plan-run').click();
      await jobView().waitFor({ timeout: 15_000 });
      await expect(preview.count()).resolves.toBe(0);
      await waitJobEnd(120_000);
      expect(await waitPodStatus(lab, 404, 15_000)).toBe(404);
      expect(await countDrillObjects(lab)).toEqual({
        deployments: 0,
        configmaps: 0,
        secrets: 0,
        roles: 0,
        rolebindings: 0,
      });
    },
    180_000,
  );

  it.skipIf(!isRoot)(
    'restores the snapshot through the plan preview (diffs, typed name), shows progress, and the pod is back',
    async () => {
      await tid('tab-snapshots').click();
      const row = page.locator('[data-testid="snapshot-row"][data-note="with demo pod"]');
      await row.waitFor();
      await row.getByTestId('snapshot-restore').click();
      // The dialog opens on the row's snapshot and the etcd the apiservers use (embedded here).
      await tid('restore-dialog').waitFor();
      await expect(tid('restore-target-embedded').isChecked()).resolves.toBe(true);
      await expect(tid('restore-after').innerText()).resolves.toMatch(/use the embedded etcd already/);
      await tid('restore-plan').click();

      const preview = tid('plan-preview');
      await preview.waitFor({ timeout: 60_000 });
      await expect(preview.locator('[data-kind="restore-embedded"]').count()).resolves.toBe(1);
      const diffs = preview.getByTestId('diff');
      expect(await diffs.count()).toBeGreaterThanOrEqual(3);
      expect(await diffs.first().locator('[data-kind="del"]').count()).toBeGreaterThan(0);
      expect(await diffs.first().locator('[data-kind="add"]').count()).toBeGreaterThan(0);
      await expect(diffs.first().innerText()).resolves.toMatch(/etcd-kes-/);
      expect(await preview.getByTestId('plan-command').count()).toBeGreaterThan(0);
      // Scroll the first diff into view for the picture.
      await diffs.first().scrollIntoViewIfNeeded();
      await screenshot(page, 'plan-preview.png');

      await tid('plan-confirm-input').fill(clusterName);
      await tid('plan-run').click();
      await jobView().waitFor({ timeout: 15_000 });

      // While it runs: some steps done, status running, the log streaming.
      const end = Date.now() + 60_000;
      let shot = false;
      while (Date.now() < end) {
        const status = await jobView().getAttribute('data-status');
        if (status !== 'running') break;
        const done = Number(await tid('job-progress').getAttribute('data-done'));
        const lines = Number(await tid('job-log').getAttribute('data-lines'));
        if (done >= 3 && lines > 0) {
          await screenshot(page, 'job-running.png');
          shot = true;
          break;
        }
        await page.waitForTimeout(200);
      }
      expect(shot, 'a screenshot of the running restore').toBe(true);
      await expect(tid('job-elapsed').textContent()).resolves.toMatch(/\d/);

      await waitJobEnd(240_000);
      await tid('job-outcome').waitFor();
      const progress = tid('job-progress');
      await expect(progress.getAttribute('data-done')).resolves.toBe(await progress.getAttribute('data-total'));
      await screenshot(page, 'job-done.png');

      expect(await waitPodStatus(lab, 200, 30_000)).toBe(200);
      expect(await countDrillObjects(lab)).toEqual(objectsBefore);
    },
    300_000,
  );

  it.skipIf(!isRoot)(
    'lists the state saved before the restore, and the jobs history',
    async () => {
      await tid('tab-states').click();
      const pre = page.locator('[data-testid="state-row"][data-reason^="before restoring snapshot"]');
      await pre.first().waitFor({ timeout: 15_000 });
      await expect(pre.first().innerText()).resolves.toMatch(/\/var\/lib\/etcd/);
      await screenshot(page, 'states.png');

      await tid('tab-jobs').click();
      await tid('jobs-view').waitFor();
      for (const kind of ['snapshot', 'drill', 'restore-embedded'])
        await page
          .locator(`[data-testid="job-row"][data-kind="${kind}"][data-status="succeeded"]`)
          .first()
          .waitFor({ timeout: 10_000 });
      expect(env!.session.errors.filter((e) => e.startsWith('pageerror'))).toEqual([]);
    },
    60_000,
  );

  it.skipIf(!isRoot)(
    'lists the remote scripts and etcd tools archives in Settings',
    async () => {
      await tid('nav-settings').click();
      await tid('scripts-section').waitFor();
      await tid('script-row').first().waitFor({ timeout: 10_000 });
      expect(await tid('script-row').count()).toBeGreaterThan(3);
      await tid('tools-section').waitFor();
      await screenshot(page, 'settings-scripts.png');
    },
    60_000,
  );
});
