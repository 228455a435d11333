// The old tool's whole disaster-recovery story, through the UI only, against a kubeadm lab (real
// kubeadm 1.36, kube-apiserver and etcd; 3 masters behind haproxy, 2 spare hosts): add the nodes,
// initialize, health, deploy a pod and some objects (kubectl in the node terminal), snapshot,
// disaster (the drill), provision an external etcd, restore the snapshot onto it and run the
// cluster on it, repair a member, bring the embedded etcd back from a snapshot, bring back a saved
// state. After each step it asserts what the screens show (mode badge, node chips, External tab,
// members, Health workloads, job progress and outcome, toasts) and what the cluster holds (the demo
// objects, which etcd each apiserver uses, the Kubernetes keys in that etcd), and keeps a
// screenshot per step under test-results/ (story-NN-*.png).
// The lab itself is the only shortcut: it is created by the test, and read (never changed) to check
// the screens against it — except in the last block, which injects a fault (two external members
// stopped on their hosts) to show the quorum help.
// Needs root (the lab builds network namespaces). Only loopback and the lab's 198.18.0.0/15
// addresses are contacted.
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Locator, Page } from 'playwright-core';
import type { Lab } from '../lab';
import { kubernetesBinDir } from '../lab/binaries';
import { screenshot, waitForTerminalText, type WebApp } from './support/app';
import {
  countDrillObjects,
  isRoot,
  startLabApp,
  stopLabApp,
  waitLbReady,
  waitPodStatus,
  type LabApp,
} from './support/lab-app';

if (!isRoot) console.log('story.test.ts skipped: the lab needs root (network namespaces, mounts)');

const LONG = 300_000;
const MASTERS = ['m1', 'm2', 'm3'];
/** The hosts the external etcd is provisioned on (the old tool's example has two; three keep quorum with one repaired). */
const EXTERNAL = ['s1', 's2', 'lb'];
const NO_OBJECTS = { deployments: 0, configmaps: 0, secrets: 0, roles: 0, rolebindings: 0 };

let env: LabApp | undefined;
let lab: Lab;
let app: WebApp;
let page: Page;
let clusterName: string;
let step = 0;
/** Deployments, ConfigMaps, Secrets, Roles and RoleBindings in default and team-a once deployed. */
let objects: Record<string, number>;

const tid = (id: string) => page.getByTestId(id);
const card = (name: string): Locator => page.locator(`[data-testid="node-card"][data-node-name="${name}"]`);
const etcdChip = (name: string) => card(name).getAttribute('data-etcd');

/** A numbered screenshot of the step (toasts included: they are part of what the user sees). */
async function shoot(name: string): Promise<void> {
  step++;
  await screenshot(page, `story-${String(step).padStart(2, '0')}-${name}.png`);
}

/** The header's mode badge says `mode` (facts are re-read during and after each job). */
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

/**
 * Wait until the job shown ends; it must have succeeded (else its text and the server log are the
 * error), with its progress at 100 %, one green toast and no red one, and the Jobs list saying so.
 */
async function waitJobSucceeded(view: Locator, timeout = LONG - 30_000): Promise<void> {
  await view.and(page.locator(':not([data-status="running"])')).waitFor({ timeout });
  const status = await view.getAttribute('data-status');
  if (status !== 'succeeded') {
    const text = await view.innerText();
    throw new Error(`job ended ${status}:\n${text.slice(0, 4000)}\n--- server log ---\n${app.log().slice(-3000)}`);
  }
  const progress = view.getByTestId('job-progress');
  await expect(progress.getAttribute('data-done')).resolves.toBe(await progress.getAttribute('data-total'));
  await expect(progress.getAttribute('data-percent')).resolves.toBe('100');
  await expect(view.getByTestId('job-outcome').getAttribute('data-summary')).resolves.toMatch(/^Succeeded/);
  await page
    .locator('[data-testid="toast"][data-kind="success"]')
    .getByText(/: done$/)
    .first()
    .waitFor({ timeout: 10_000 });
  if (!process.env.STORY_TRIAL)
    await expect(page.locator('[data-testid="toast"][data-kind="error"]').count()).resolves.toBe(0);
}

/** The Nodes tab (facts and node map with their etcd chips). */
async function showNodeMap(): Promise<void> {
  await tid('tab-nodes').click();
  await tid('node-map').waitFor();
}

/** Which etcd each master's live kube-apiserver.yaml points at (read on the hosts). */
async function apiserverEtcd(): Promise<Record<string, 'embedded' | 'external' | string>> {
  const externals = EXTERNAL.map((h) => lab.host(h).address);
  const out: Record<string, string> = {};
  for (const m of MASTERS) {
    const text = await lab.readFile(m, '/etc/kubernetes/manifests/kube-apiserver.yaml');
    const servers = /--etcd-servers=(\S+)/.exec(text)?.[1] ?? '';
    const hosts = servers.split(',').map((u) => new URL(u).hostname);
    out[m] = hosts.every((h) => externals.includes(h))
      ? 'external'
      : hosts.every((h) => !externals.includes(h))
        ? 'embedded'
        : `mixed: ${servers}`;
  }
  return out;
}

/** Kubernetes keys (/registry/…) in the etcd at `endpoint`, read with m1's etcd client certificate. */
async function registryKeys(host: string): Promise<number> {
  const r = await lab.exec(
    'm1',
    `ETCDCTL_API=3 etcdctl --endpoints=https://${lab.host(host).address}:2379 --cacert=/etc/kubernetes/pki/etcd/ca.crt --cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt --key=/etc/kubernetes/pki/etcd/healthcheck-client.key get /registry/ --prefix --keys-only | grep -c .`,
  );
  return Number(r.stdout.trim());
}

/** What the cluster holds and serves: the demo pod, the drill objects, the etcd the apiservers use. */
async function expectCluster(want: { objects: 'present' | 'absent'; etcd: 'embedded' | 'external' }): Promise<void> {
  expect(await waitPodStatus(lab, want.objects === 'present' ? 200 : 404, 60_000)).toBe(
    want.objects === 'present' ? 200 : 404,
  );
  expect(await countDrillObjects(lab)).toEqual(want.objects === 'present' ? objects : NO_OBJECTS);
  expect(await apiserverEtcd()).toEqual(Object.fromEntries(MASTERS.map((m) => [m, want.etcd])));
  expect(await waitLbReady(lab)).toBe(true);
  // the etcd in use holds the cluster (a few hundred keys), the chips say the same
  expect(await registryKeys(want.etcd === 'external' ? 's1' : 'm1')).toBeGreaterThan(100);
}

/** Node map chips: which etcd serves (active) and which is parked. */
async function expectChips(active: 'embedded' | 'external'): Promise<void> {
  await showNodeMap();
  for (const m of MASTERS) await expect(etcdChip(m)).resolves.toBe(active === 'embedded' ? 'active' : 'parked');
  for (const n of EXTERNAL) await expect(etcdChip(n)).resolves.toBe(active === 'external' ? 'active' : 'parked');
}

/** The Health workloads of `default` list the demo pod Running (or not at all). */
async function expectWorkloadPod(present: boolean): Promise<void> {
  await tid('tab-health').click();
  const pod = page.locator('[data-testid="workload-pod-demo-nginx"]');
  if (present) await pod.and(page.locator('[data-phase="Running"][data-ready="1/1"]')).waitFor({ timeout: 90_000 });
  else await expect.poll(() => pod.count(), { timeout: 60_000 }).toBe(0);
}

beforeAll(async () => {
  if (!isRoot) return;
  // The web app's local consoles inherit this PATH: the user's kubectl (the lab's real one) is found there.
  const saved = process.env.PATH;
  process.env.PATH = `${kubernetesBinDir()}:${saved}`;
  try {
    env = await startLabApp({ prefix: 'ke4', masters: 3, lb: 'haproxy', spares: 2 });
  } finally {
    process.env.PATH = saved;
  }
  ({ lab, app, page, clusterName } = env);
}, 240_000);

afterAll(() => stopLabApp(env), 120_000);

/**
 * Add lab hosts as nodes in one go ("Add several…": a pasted list, roles per row, one credential:
 * root with the lab key); none is contacted yet.
 */
async function addNodes(rows: [string, string[]][]): Promise<void> {
  await tid('tab-nodes').click();
  await tid('node-add-many').click();
  await tid('add-nodes').waitFor();
  await tid('add-nodes-paste').fill(
    rows.map(([name, roles]) => `root@${lab.host(name).address} ${name} ${roles.join(',')}`.trim()).join('\n'),
  );
  await tid('add-nodes-parse').click();
  await expect(tid('add-nodes-row').count()).resolves.toBe(rows.length);
  // roles per row: the external etcd hosts get none yet (provisioning gives them the etcd role)
  for (const [i, [, roles]] of rows.entries())
    for (const r of ['master', 'worker', 'lb', 'etcd'])
      await expect(tid(`add-nodes-role-${r}-${i}`).isChecked()).resolves.toBe(roles.includes(r));
  await tid('add-nodes-auth-key-file').check();
  await tid('add-nodes-key-path').fill(lab.keyPath);
  await expect(tid('add-nodes-summary').getAttribute('data-valid')).resolves.toBe(String(rows.length));
  await shoot('add-nodes');
  await tid('add-nodes-confirm').click();
  await tid('add-nodes').waitFor({ state: 'detached' });
}

/** Type a command line into the visible terminal and wait for `done` on a line of its own. */
async function run(command: string, done: string, timeout = 60_000): Promise<string> {
  await page.keyboard.type(`${command}; echo ${done.slice(0, 4)}''${done.slice(4)}`);
  await page.keyboard.press('Enter');
  // The typed line holds the quotes; only the shell's output holds `done` whole.
  return waitForTerminalText(page, new RegExp(`^${done}\\s*$`, 'm'), timeout);
}

describe('the disaster-recovery story, through the UI', () => {
  it.skipIf(!isRoot)(
    '1. adds the nodes: m1 and the three hosts of the future external etcd, roles per row',
    async () => {
      await tid('cluster-create').click();
      await tid('field-cluster-name').fill(clusterName);
      await tid('cluster-name-save').click();
      await expect(tid('cluster-title').textContent()).resolves.toBe(clusterName);
      await addNodes([
        ['m1', ['master', 'etcd']],
        ['s1', []],
        ['s2', []],
        ['lb', ['lb']],
      ]);
      for (const n of ['m1', ...EXTERNAL]) await card(n).waitFor();
      // Not initialized: no mode, no switch, the External tab offers only provisioning.
      await expect(
        tid('cluster-view').locator('.page-head [data-testid="mode-badge"]').getAttribute('data-mode'),
      ).resolves.toBe('none');
      await expect(tid('switch-open').count()).resolves.toBe(0);
      await shoot('nodes-added');
    },
    LONG,
  );

  it.skipIf(!isRoot)(
    '2. initializes from m1 (the new masters’ keys in one table): facts, embedded-up, stacked members active',
    async () => {
      await tid('cluster-initialize').click();
      await tid('initialize-dialog').waitFor();
      await tid('initialize-run').click();
      // m1 was never contacted: its key first, then the masters it names, in one table
      await tid('hostkey-unknown').waitFor({ timeout: 60_000 });
      await expect(tid('hostkey-fingerprint').textContent()).resolves.toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
      await tid('hostkey-trust').click();
      const many = tid('hostkeys-many');
      await many.waitFor({ timeout: 90_000 });
      await expect(
        many
          .getByTestId('hostkeys-many-row')
          .evaluateAll((els) => els.map((e) => e.getAttribute('data-node-name')).sort()),
      ).resolves.toEqual(['m2', 'm3']);
      await tid('hostkeys-many-trust').click();
      await tid('facts-panel').waitFor({ timeout: 120_000 });
      await waitHeaderMode('embedded-up');
      await expect(tid('facts-master').count()).resolves.toBe(3);
      await expect(tid('facts-member').count()).resolves.toBe(3);
      await expect(page.locator('[data-testid="tier-master"] [data-testid="node-card"]').count()).resolves.toBe(3);
      for (const m of MASTERS) await expect(etcdChip(m)).resolves.toBe('active');
      // Nothing provisioned yet: no etcd chip on the future external hosts, and the External tab
      // shows only what provisioning means (no Switch, Restore, Start/Stop or "parked").
      for (const n of EXTERNAL) await expect(etcdChip(n)).resolves.toBeFalsy();
      await tid('tab-external').click();
      await tid('external-provision-open').waitFor();
      await expect(tid('external-empty').innerText()).resolves.toMatch(/^No external etcd yet\./);
      for (const absent of [
        'external-node',
        'external-switch-open',
        'external-restore-open',
        'external-start',
        'external-stop',
        'members-section',
      ])
        await expect(tid(absent).count(), absent).resolves.toBe(0);
      await expect(tid('switch-open').isDisabled()).resolves.toBe(true);
      await shoot('initialized-external-tab');
      await showNodeMap();
      await shoot('initialized');
    },
    LONG,
  );

  it.skipIf(!isRoot)(
    '3. health: 3 members with one leader, 3 ready apiservers, kube-system pods; workloads of default',
    async () => {
      await tid('tab-health').click();
      await page.locator('[data-testid="health-view"][data-mode="embedded-up"]').waitFor({ timeout: 60_000 });
      await expect
        .poll(() => page.locator('[data-testid="health-member"][data-reachable="true"]').count(), { timeout: 30_000 })
        .toBe(3);
      await expect(page.locator('[data-testid="health-member"][data-leader="true"]').count()).resolves.toBe(1);
      await expect(page.locator('[data-testid="health-apiserver"][data-ready="true"]').count()).resolves.toBe(3);
      await page.locator('[data-testid="health-pod"][data-phase="Running"]').first().waitFor({ timeout: 30_000 });
      await expect(tid('workloads').getAttribute('data-namespaces')).resolves.toBe('default');
      await expectWorkloadPod(false);
      await shoot('health');
    },
    LONG,
  );

  it.skipIf(!isRoot)(
    '4. deploys the demo pod and objects of every kind with kubectl in m1’s terminal; Health shows the pod',
    async () => {
      await showNodeMap();
      await card('m1').getByTestId('node-terminal').click();
      const tab = page.locator('[data-testid="terminal-tab"][data-title="SSH: m1"]');
      await tab.and(page.locator('[data-state="open"]')).waitFor({ timeout: 20_000 });
      await page.locator('[data-testid="terminal-view"][data-active="true"] .xterm').click();
      // the default ServiceAccount comes a little after a fresh cluster: wait for it
      await run('until kubectl get serviceaccount default >/dev/null 2>&1; do sleep 1; done', 'sa-ready');
      await run(
        `kubectl run demo-nginx --image=nginx --restart=Never --labels=app=demo-nginx --overrides='{"spec":{"tolerations":[{"operator":"Exists"}]}}'`,
        'pod-created',
      );
      await run('kubectl create namespace team-a', 'ns-created');
      await run(
        'for ns in default team-a; do kubectl -n $ns create deployment drill-demo --image=nginx && ' +
          'kubectl -n $ns create configmap drill-demo --from-literal=a=1 && ' +
          'kubectl -n $ns create secret generic drill-demo --from-literal=b=2 && ' +
          'kubectl -n $ns create role drill-demo --verb=get --resource=pods && ' +
          'kubectl -n $ns create rolebinding drill-demo --role=drill-demo --user=demo; done',
        'objects-created',
      );
      await run('kubectl get pods -o wide', 'pods-listed');
      await shoot('kubectl-in-terminal');
      objects = await countDrillObjects(lab);
      expect(objects).toEqual({ deployments: 2, configmaps: 2, secrets: 2, roles: 2, rolebindings: 2 });
      expect(await waitPodStatus(lab, 200)).toBe(200);
      await tab.getByTestId('terminal-tab-close').click();
      await expectWorkloadPod(true);
      await expect(page.locator('[data-testid="workload-pod-demo-nginx"]').getAttribute('data-node')).resolves.toMatch(
        /^m[123]$/,
      );
      await page.locator('[data-testid="workload-deployment-drill-demo"]').waitFor({ timeout: 30_000 });
      // the chooser: team-a added (its Deployment shows too), a bad name refused, team-a removed
      await tid('workloads-ns-input').fill('team-a');
      await tid('workloads-ns-add').click();
      await page
        .locator('[data-testid="workload-deployment-drill-demo"][data-namespace="team-a"]')
        .waitFor({ timeout: 30_000 });
      await expect(tid('workloads').getAttribute('data-namespaces')).resolves.toBe('default,team-a');
      await tid('workloads').scrollIntoViewIfNeeded();
      await shoot('health-workloads');
      await tid('workloads-ns-input').fill('Bad_Name');
      await tid('workloads-ns-add').click();
      await expect(tid('workloads-ns-error').textContent()).resolves.toContain('not a namespace name');
      await tid('workloads-ns-remove-team-a').click();
      await page
        .locator('[data-testid="workload-deployment-drill-demo"][data-namespace="team-a"]')
        .waitFor({ state: 'detached', timeout: 30_000 });
    },
    LONG,
  );

  it.skipIf(!isRoot)(
    '4b. kubectl access: a local console whose kubectl reaches the cluster through an SSH tunnel; closing it removes the kubeconfig',
    async () => {
      await tid('open-kubectl-console').click();
      const tab = page.locator(`[data-testid="terminal-tab"][data-kind="kubectl"]`);
      await tab.and(page.locator('[data-state="open"]')).waitFor({ timeout: 30_000 });
      const banner = await waitForTerminalText(page, /Try: kubectl get nodes/);
      // the path may wrap on the screen: join the rows, then take it up to its file name
      const path = /KUBECONFIG=(\S+?\/kubeconfig)/.exec(banner.replace(/\s*\n\s*/g, ''))?.[1] ?? '';
      expect(path).toMatch(/kubectl-access\/c-[^/]+\/kubeconfig$/);
      expect(existsSync(path)).toBe(true);
      await page.locator('[data-testid="terminal-view"][data-active="true"] .xterm').click();
      await run('kubectl get pods -n default -o name | sed s/^/got-/', 'listed-here');
      await waitForTerminalText(page, /^got-pod\/demo-nginx\s*$/m);
      await shoot('kubectl-local-console');
      await tab.getByTestId('terminal-tab-close').click();
      await expect.poll(() => existsSync(path), { timeout: 10_000 }).toBe(false);
    },
    LONG,
  );

  it.skipIf(!isRoot)(
    '5. takes a snapshot: listed with its mode and etcd version',
    async () => {
      await tid('tab-snapshots').click();
      await tid('snapshots-view').waitFor();
      await tid('snapshot-note-new').fill('with demo pod');
      await tid('snapshot-take').click();
      const view = page.locator('[data-testid="snapshot-job"] [data-testid="job-view"]');
      await waitJobSucceeded(view);
      const row = page.locator('[data-testid="snapshot-row"][data-note="with demo pod"]');
      await row.waitFor({ timeout: 15_000 });
      await expect(row.innerText()).resolves.toMatch(/embedded-up/);
      await expect(row.innerText()).resolves.toContain(lab.state.etcdVersion);
      await shoot('snapshot');
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
      // A schedule is saved for the cluster, then turned off again.
      await tid('schedule-enabled').check();
      await tid('schedule-every').fill('12');
      await tid('schedule-keep').fill('5');
      await tid('schedule-save').click();
      await page.getByTestId('toast').getByText('Snapshots every 12 h, keeping 5').waitFor();
      await tid('schedule-enabled').uncheck();
      await tid('schedule-save').click();
      await page.getByTestId('toast').getByText('Scheduled snapshots off').waitFor();
    },
    LONG,
  );

  it.skipIf(!isRoot)(
    '6. disaster: the drill (typed name) deletes every kind in every namespace but kube-*',
    async () => {
      await tid('drill-open').click();
      await tid('drill-all-namespaces').check();
      await tid('drill-plan').click();
      const preview = tid('plan-preview');
      await preview.waitFor({ timeout: 60_000 });
      await expect(preview.innerText()).resolves.toMatch(/Scope: default, team-a \(every namespace but kube-\*/);
      const view = await runPreview('drill');
      await waitJobSucceeded(view);
      await expectCluster({ objects: 'absent', etcd: 'embedded' });
      await expectWorkloadPod(false);
      await shoot('after-drill');
    },
    LONG,
  );

  it.skipIf(!isRoot)(
    '7. provisions an external etcd on s1, s2 and lb (their keys confirmed in one table): configured, parked',
    async () => {
      await tid('tab-external').click();
      await tid('external-provision-open').click();
      await tid('provision-dialog').waitFor();
      const pick = (n: string) => page.locator(`[data-testid="provision-node"][data-node-name="${n}"]`);
      // masters whose stacked member runs cannot be chosen
      await expect(pick('m1').isDisabled()).resolves.toBe(true);
      // the old tool's example, two members: allowed, with the quorum spelled out
      await pick('s1').check();
      await pick('s2').check();
      await expect(tid('provision-size').innerText()).resolves.toMatch(/2 members need 2 for quorum/);
      await expect(tid('provision-plan').isDisabled()).resolves.toBe(false);
      await pick('lb').check();
      await tid('provision-plan').click();
      // none of them was contacted yet: one host-key table, then the plan
      await tid('hostkeys-many').waitFor({ timeout: 60_000 });
      await tid('hostkeys-many-trust').click();
      const view = await runPreview('provision-external');
      await waitJobSucceeded(view);
      await tid('tab-external').click();
      await expect.poll(() => tid('external-node').count(), { timeout: 30_000 }).toBe(3);
      for (const n of EXTERNAL) {
        const row = page.locator(`[data-testid="external-node"][data-node-name="${n}"]`);
        await expect(row.getAttribute('data-unit')).resolves.toBe('stopped');
        await expect(row.getAttribute('data-etcd')).resolves.toBe('parked');
      }
      await shoot('provisioned');
      await expectChips('embedded');
      await waitHeaderMode('embedded-up');
    },
    LONG,
  );

  it.skipIf(!isRoot)(
    '8. restores the snapshot onto the external etcd and runs the cluster on it, as one job',
    async () => {
      await tid('tab-snapshots').click();
      const row = page.locator('[data-testid="snapshot-row"][data-note="with demo pod"]');
      await row.getByTestId('snapshot-restore').click();
      await tid('restore-dialog').waitFor();
      await tid('restore-target-external').check();
      await expect(tid('restore-point-apiservers').isChecked()).resolves.toBe(true);
      await expect(tid('restore-after').innerText()).resolves.toMatch(/use the external etcd, with the restored data/);
      await shoot('restore-dialog');
      await tid('restore-plan').click();
      const preview = tid('plan-preview');
      await preview.locator('[data-kind="switch-to-external"]').waitFor({ timeout: 120_000 });
      await expect(preview.innerText()).resolves.toMatch(/external etcd/);
      // its sentences are true for this job (state saved first, apiservers stopped) and read as sentences
      const banner = await tid('plan-destructive').innerText();
      expect(banner).toMatch(/saved first/);
      expect(banner).not.toMatch(/[a-z)]\.[A-Za-z]/);
      await shoot('restore-external-plan');
      const view = await runPreview('switch-to-external');
      await waitJobSucceeded(view);
      await waitHeaderMode('external-up');
      await shoot('running-on-external');
      await expectCluster({ objects: 'present', etcd: 'external' });
      await expectChips('external');
      await tid('tab-external').click();
      for (const n of EXTERNAL)
        await expect(
          page.locator(`[data-testid="external-node"][data-node-name="${n}"]`).getAttribute('data-etcd'),
        ).resolves.toBe('active');
      await expectWorkloadPod(true);
      await shoot('pod-back-on-external');
    },
    LONG,
  );

  it.skipIf(!isRoot)(
    '9. repairs a member: s2 removed (typed name) and added back; three reachable voting members',
    async () => {
      await tid('tab-external').click();
      const reachable = page.locator(
        '[data-testid="members-table"] [data-testid="member-row"][data-reachable="true"][data-external="true"]',
      );
      await expect.poll(() => reachable.count(), { timeout: 60_000 }).toBe(3);
      const oldId = await page.locator('[data-testid="member-row"][data-name="s2"]').getAttribute('data-id');
      await page.locator('[data-testid="member-row"][data-name="s2"]').getByTestId('member-remove').click();
      await waitJobSucceeded(await runPreview('member-remove'));
      await tid('tab-external').click();
      await expect.poll(() => page.locator('[data-testid="member-row"]').count(), { timeout: 60_000 }).toBe(2);
      await expect(
        page.locator('[data-testid="external-node"][data-node-name="s2"]').getAttribute('data-unit'),
      ).resolves.toBe('stopped');
      await shoot('member-removed');
      await page.locator('[data-testid="member-add"][data-node-name="s2"]').click();
      await waitJobSucceeded(await runPreview('member-add'));
      await tid('tab-external').click();
      await expect.poll(() => reachable.count(), { timeout: 90_000 }).toBe(3);
      const s2 = page.locator('[data-testid="member-row"][data-name="s2"]');
      await expect(s2.getAttribute('data-learner')).resolves.toBe('false');
      // a new member, not the removed one's ID shown again
      await expect(s2.getAttribute('data-id')).resolves.not.toBe(oldId);
      await shoot('member-repaired');
      await expectCluster({ objects: 'present', etcd: 'external' });
    },
    LONG,
  );

  it.skipIf(!isRoot)(
    '10. brings the embedded etcd back from the snapshot and points the apiservers at it',
    async () => {
      await tid('tab-snapshots').click();
      const row = page.locator('[data-testid="snapshot-row"][data-note="with demo pod"]');
      await row.getByTestId('snapshot-restore').click();
      await tid('restore-dialog').waitFor();
      await tid('restore-target-embedded').check();
      await expect(tid('restore-point-apiservers').isChecked()).resolves.toBe(true);
      await expect(tid('restore-after').innerText()).resolves.toMatch(/use the embedded etcd, with the restored data/);
      await tid('restore-plan').click();
      // the plan: a new data dir in every etcd.yaml, the apiservers pointed back at it
      const preview = tid('plan-preview');
      await preview.locator('[data-kind="switch-to-embedded"]').waitFor({ timeout: 120_000 });
      const diffs = preview.getByTestId('diff');
      const etcdDiffs = preview.locator('[data-testid="diff"][data-path$="etcd.yaml"]');
      expect(await etcdDiffs.count()).toBe(3);
      await expect(etcdDiffs.first().innerText()).resolves.toMatch(/etcd-kes-/);
      const apiserverDiffs = preview.locator('[data-testid="diff"][data-path$="kube-apiserver.yaml"]');
      expect(await apiserverDiffs.count()).toBe(3);
      await expect(apiserverDiffs.first().locator('[data-kind="add"]').first().innerText()).resolves.toContain(
        '--etcd-servers',
      );
      expect(await preview.getByTestId('plan-command').count()).toBeGreaterThan(0);
      await diffs.first().scrollIntoViewIfNeeded();
      await shoot('restore-embedded-plan');
      const view = await runPreview('switch-to-embedded');
      // While it runs: some steps done, the log streaming.
      const end = Date.now() + 60_000;
      let shot = false;
      while (Date.now() < end && (await view.getAttribute('data-status')) === 'running') {
        const done = Number(await view.getByTestId('job-progress').getAttribute('data-done'));
        const lines = Number(await view.getByTestId('job-log').getAttribute('data-lines'));
        if (done >= 3 && lines > 0) {
          await shoot('restore-embedded-running');
          shot = true;
          break;
        }
        await page.waitForTimeout(200);
      }
      expect(shot, 'a screenshot of the running job').toBe(true);
      await waitJobSucceeded(view);
      await expect(view.getByTestId('job-unavailable').innerText()).resolves.toMatch(/unavailable for \d+(\.\d)? s/);
      await waitHeaderMode('embedded-up');
      await expectCluster({ objects: 'present', etcd: 'embedded' });
      await expectChips('embedded');
      await shoot('embedded-back');
    },
    LONG,
  );

  it.skipIf(!isRoot)(
    '11. brings back the state saved before that: the cluster runs on the external etcd again',
    async () => {
      await tid('tab-states').click();
      const state = page
        .locator('[data-testid="state-row"]')
        .filter({ has: page.locator('[data-mode="external-up"]') });
      await state.first().waitFor({ timeout: 15_000 });
      await shoot('states');
      await state.first().getByTestId('state-restore').click();
      const view = await runPreview('restore-state');
      await waitJobSucceeded(view);
      await waitHeaderMode('external-up');
      await expectCluster({ objects: 'present', etcd: 'external' });
      await expectChips('external');
      await shoot('state-back');
      // every job of the story, succeeded, in the Jobs list with its outcome
      await tid('tab-jobs').click();
      for (const kind of [
        'snapshot',
        'drill',
        'provision-external',
        'switch-to-external',
        'member-remove',
        'member-add',
        'switch-to-embedded',
        'restore-state',
      ])
        await page
          .locator(`[data-testid="job-row"][data-kind="${kind}"][data-status="succeeded"]`)
          .first()
          .waitFor({ timeout: 10_000 });
      for (const text of await tid('job-row-outcome').allInnerTexts()) expect(text).toMatch(/^Succeeded/);
      for (const pct of await tid('job-row-progress').evaluateAll((els) =>
        els.map((e) => e.getAttribute('data-percent')),
      ))
        expect(pct).toBe('100');
      await shoot('jobs');
      expect(env!.session.errors.filter((e) => e.startsWith('pageerror'))).toEqual([]);
    },
    LONG,
  );
});

describe('after the story: a fault injected by the lab (two external members stopped)', () => {
  it.skipIf(!isRoot)(
    'refuses removing a member without quorum, explains the chicken-and-egg, and the offered restore works',
    async () => {
      for (const n of ['s1', 's2']) await lab.ssh(n, 'systemctl stop etcd');
      await tid('tab-external').click();
      const s1 = page.locator('[data-testid="member-row"][data-name="s1"][data-reachable="false"]');
      await s1.waitFor({ timeout: 120_000 }).catch(async (e) => {
        await screenshot(page, 'story-fault-not-seen.png');
        throw e;
      });
      await s1.getByTestId('member-remove').click();
      const view = await runPreview('member-remove');
      await view.and(page.locator('[data-status="failed"]')).waitFor({ timeout: 150_000 });
      const help = view.getByTestId('quorum-lost');
      await help.waitFor();
      await expect(help.innerText()).resolves.toMatch(/chicken-and-egg/);
      await screenshot(page, 'quorum-lost.png');
      await help.getByTestId('quorum-restore-latest').click();
      const restore = await runPreview('restore-external');
      await waitJobSucceeded(restore);
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
});

describe('the story ends: back home on the embedded etcd', () => {
  it.skipIf(!isRoot)(
    '12. switches the apiservers back to the embedded etcd with the Switch button (a fresh snapshot, no write lost)',
    async () => {
      const open = page.locator('[data-testid="switch-open"][data-direction="to-embedded"]');
      await open.waitFor({ timeout: 60_000 });
      await open.click();
      await page.locator('[data-testid="switch-dialog"] [data-direction="to-embedded"]').waitFor();
      // the external members stop afterwards unless asked to keep running; a fresh snapshot by default
      await expect(tid('switch-keep-running').isChecked()).resolves.toBe(false);
      await expect(tid('switch-data-fresh').isChecked()).resolves.toBe(true);
      await shoot('switch-dialog');
      await tid('switch-plan').click();
      const view = await runPreview('switch-to-embedded');
      await waitJobSucceeded(view);
      await expect(view.getByTestId('job-unavailable').innerText()).resolves.toMatch(/unavailable for/);
      await waitHeaderMode('embedded-up');
      await expectCluster({ objects: 'present', etcd: 'embedded' });
      await expectChips('embedded');
      await tid('tab-external').click();
      for (const n of EXTERNAL)
        await expect(
          page.locator(`[data-testid="external-node"][data-node-name="${n}"]`).getAttribute('data-unit'),
        ).resolves.toBe('stopped');
      await showNodeMap();
      await shoot('home');
      expect(env!.session.errors.filter((e) => e.startsWith('pageerror'))).toEqual([]);
    },
    LONG,
  );

  it.skipIf(!isRoot)(
    'lists the remote scripts the jobs ran and the etcd tools archives in Settings',
    async () => {
      await tid('nav-settings').click();
      await tid('scripts-section').waitFor();
      await tid('script-row').first().waitFor({ timeout: 10_000 });
      expect(await tid('script-row').count()).toBeGreaterThan(3);
      await tid('tools-section').waitFor();
      await shoot('settings-scripts');
    },
    60_000,
  );
});
