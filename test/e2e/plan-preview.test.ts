// The plan preview in Chromium, without a lab (nodes at 127.0.0.1:1; these plans read nothing from
// them): the summary's counts are the plan's own (distinct nodes of steps, commands and files;
// commands; files), and the sentences above the steps are only those true of the plan — Reset
// node (destructive, saves no state, stops no apiserver of the others) says it cannot simply be
// undone and nothing about a saved state; Restart runtime (not destructive) has no warning.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { offlineNode, startSeededApp, stopSeededApp, type SeededApp, screenshot } from './support/app';

const node = offlineNode;

const inventory = {
  version: 1,
  clusters: [
    {
      id: 'cplan',
      name: 'plans',
      createdAt: '2026-01-01T00:00:00.000Z',
      facts: null,
      creation: {
        lb: { kind: 'haproxy', port: 6443 },
        kubernetesMinor: '1.33',
        podCidr: '10.244.0.0/16',
        serviceCidr: '10.96.0.0/12',
        cni: 'flannel',
        cniManifest: { source: 'file', path: '/tmp/kube-flannel.yml' },
        ignorePreflightErrors: [],
        demo: true,
      },
      nodes: [
        node('plb', 'lb', ['lb']),
        node('pm1', 'm1', ['master']),
        node('pm2', 'm2', ['master']),
        node('pw1', 'w1', ['worker']),
      ],
    },
  ],
};

let env: SeededApp | undefined;
let page: Page;
const tid = (id: string) => page.getByTestId(id);
const card = (name: string) => page.locator(`[data-testid="node-card"][data-node-name="${name}"]`);

beforeAll(async () => {
  env = await startSeededApp(inventory, { width: 1280, height: 860 });
  ({ page } = env);
  await page.locator(`[data-testid="nav-cluster"][data-cluster-name="plans"]`).click();
  await tid('node-map').waitFor();
});

afterAll(() => stopSeededApp(env ?? {}));

/** What the tree shows: step nodes, commands and files (by node and path). */
async function shown() {
  const preview = tid('plan-preview');
  const attr = (sel: string, a: string) =>
    preview.locator(sel).evaluateAll((els, name) => els.map((e) => e.getAttribute(name) ?? ''), a);
  const stepNodes = await preview.locator('[data-testid="plan-step"] .title').allInnerTexts();
  const cmdNodes = await attr('[data-testid="plan-command"]', 'data-node');
  const fileNodes = await attr('[data-testid="plan-file"]', 'data-node');
  const filePaths = await attr('[data-testid="plan-file"]', 'data-path');
  const summary = tid('plan-summary');
  const n = async (a: string) => Number(await summary.getAttribute(a));
  return {
    steps: await preview.locator('[data-testid="plan-step"]').count(),
    stepNodes,
    cmdNodes,
    files: new Set(fileNodes.map((x, i) => `${x}:${filePaths[i]}`)).size,
    counts: {
      steps: await n('data-steps'),
      nodes: await n('data-nodes'),
      commands: await n('data-commands'),
      files: await n('data-files'),
    },
    text: await summary.innerText(),
    sentences: await preview
      .locator('[data-testid="plan-sentence"]')
      .evaluateAll((els) => els.map((e) => e.getAttribute('data-id'))),
  };
}

describe('plan preview', () => {
  it('Reset node… of a master: counts are the plan’s, and no sentence promises a saved state', async () => {
    await card('m2').getByTestId('node-more').click();
    await card('m2').getByTestId('node-action-reset').click();
    await tid('plan-preview').waitFor({ timeout: 30_000 });
    const p = await shown();
    expect(p.counts.steps).toBe(p.steps);
    expect(p.counts.commands).toBe(p.cmdNodes.length);
    expect(p.counts.files).toBe(p.files);
    expect(p.counts.files).toBeGreaterThanOrEqual(1); // the load balancer's config
    // m1 drains and removes the member, m2 is reset, the LB is rewritten
    expect(p.counts.nodes).toBe(3);
    expect(p.text).toContain(`${p.counts.commands} command`);
    // The LB config is given whole (its current content is not read when planned): shown as the
    // file written, not as a diff of +0 −0.
    const lbFile = tid('plan-preview').locator('[data-testid="plan-file"][data-node="lb"]');
    await expect(lbFile.getAttribute('data-whole')).resolves.toBe('true');
    await expect(lbFile.getByTestId('plan-file-content').innerText()).resolves.toMatch(/^global$/m);
    expect(p.sentences).toEqual(['destructive']);
    await expect(tid('plan-destructive').innerText()).resolves.toContain('cannot simply be undone');
    await expect(tid('plan-destructive').innerText()).resolves.not.toContain('saved first');
    await screenshot(page, 'plan-preview-reset-node.png');
    await tid('plan-preview').getByRole('button', { name: 'Cancel' }).click();
  });

  it('Restart runtime (not destructive): no warning, one node, one command', async () => {
    await card('w1').getByTestId('node-more').click();
    await card('w1').getByTestId('node-action-restart-runtime').click();
    await tid('plan-preview').waitFor({ timeout: 30_000 });
    const p = await shown();
    expect(p.sentences).toEqual(['not-run']);
    expect(await tid('plan-destructive').count()).toBe(0);
    expect(p.counts.nodes).toBe(1);
    expect(p.counts.commands).toBe(p.cmdNodes.length);
    await tid('plan-preview').getByRole('button', { name: 'Cancel' }).click();
  });
});
