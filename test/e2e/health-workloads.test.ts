// Health workloads and kubectl access through the UI, against a kubeadm-shaped lab (1 master
// behind haproxy): after initialize, the Health view lists the demo pod and a Deployment of
// `default` (ready), the namespace chooser adds `team-a` and removes it again; the terminal dock's
// "kubectl access" opens a local console where the lab's kubectl reaches the cluster through the
// SSH tunnel, and closing its tab deletes the kubeconfig. Needs root (the lab). Only loopback and
// the lab's 198.18.0.0/15 addresses are contacted.
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { screenshot, waitForTerminalText } from './support/app';
import {
  addNode,
  createDemoPod,
  createDrillObjects,
  isRoot,
  startLabApp,
  stopLabApp,
  type LabApp,
} from './support/lab-app';

if (!isRoot) console.log('health-workloads.test.ts skipped: the lab needs root (network namespaces, mounts)');

const KUBECTL_DIR = '/var/cache/kes-lab/kubernetes/v1.36.3';
let env: LabApp | undefined;
let page: Page;
const tid = (id: string) => page.getByTestId(id);
const row = (testid: string, extra = '') => page.locator(`[data-testid="${testid}"]${extra}`);

beforeAll(async () => {
  if (!isRoot) return;
  // The web app's local consoles inherit this PATH: the lab's real kubectl is found there.
  const saved = process.env.PATH;
  process.env.PATH = `${KUBECTL_DIR}:${saved}`;
  try {
    env = await startLabApp({ prefix: 'kd2', masters: 1, lb: 'haproxy' });
  } finally {
    process.env.PATH = saved;
  }
  page = env.page;
}, 240_000);

afterAll(() => stopLabApp(env), 120_000);

describe('health workloads and kubectl access', () => {
  it.skipIf(!isRoot)(
    'initializes a one-master cluster and creates the demo workloads',
    async () => {
      await tid('cluster-create').click();
      await tid('field-cluster-name').fill(env!.clusterName);
      await tid('cluster-name-save').click();
      await addNode(page, env!.lab, 'm1', ['master', 'etcd']);
      await tid('cluster-initialize').click();
      await tid('initialize-run').click();
      await tid('facts-panel').waitFor({ timeout: 90_000 });
      expect(await createDemoPod(env!.lab)).toBe(201);
      expect((await createDrillObjects(env!.lab)).every((s) => s === 201)).toBe(true);
    },
    150_000,
  );

  it.skipIf(!isRoot)(
    'Health lists the demo pod and the Deployment of default; the chooser adds and removes team-a',
    async () => {
      await tid('tab-health').click();
      await expect(tid('workloads').getAttribute('data-namespaces')).resolves.toBe('default');
      await row('workload-pod-demo-nginx', '[data-phase="Running"][data-ready="1/1"]').waitFor({ timeout: 90_000 });
      await expect(row('workload-pod-demo-nginx').getAttribute('data-node')).resolves.toBe('m1');
      await row('workload-deployment-drill-demo', '[data-ready="1"][data-desired="1"]').waitFor({ timeout: 60_000 });
      await expect(row('workload-deployment-drill-demo').count()).resolves.toBe(1);
      await tid('workloads').scrollIntoViewIfNeeded();
      await screenshot(page, 'health-workloads.png');

      await tid('workloads-ns-input').fill('team-a');
      await tid('workloads-ns-add').click();
      await tid('workloads-ns-team-a').waitFor();
      await row('workload-deployment-drill-demo', '[data-namespace="team-a"]').waitFor({ timeout: 30_000 });
      await expect(row('workload-deployment-drill-demo').count()).resolves.toBe(2);
      await expect(tid('workloads').getAttribute('data-namespaces')).resolves.toBe('default,team-a');

      await tid('workloads-ns-input').fill('Bad_Name');
      await tid('workloads-ns-add').click();
      await expect(tid('workloads-ns-error').textContent()).resolves.toContain('not a namespace name');

      await tid('workloads-ns-remove-team-a').click();
      await row('workload-deployment-drill-demo', '[data-namespace="team-a"]').waitFor({
        state: 'detached',
        timeout: 30_000,
      });
      await expect(tid('workloads').getAttribute('data-namespaces')).resolves.toBe('default');
    },
    180_000,
  );

  it.skipIf(!isRoot)(
    'kubectl access: a local console where kubectl works through the tunnel; closing it deletes the kubeconfig',
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
      await page.keyboard.type('kubectl get pods -n default -o name | sed s/^/got-/');
      await page.keyboard.press('Enter');
      await waitForTerminalText(page, /^got-pod\/demo-nginx\s*$/m, 30_000);
      await screenshot(page, 'kubectl-console.png');
      await tab.getByTestId('terminal-tab-close').click();
      const end = Date.now() + 10_000;
      while (existsSync(path) && Date.now() < end) await new Promise((r) => setTimeout(r, 200));
      expect(existsSync(path)).toBe(false);
    },
    120_000,
  );
});
