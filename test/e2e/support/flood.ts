// The UI under load (issue 12): a web app whose one cluster (made by "New cluster", so nodes offer
// "Restart runtime") has one master, m1, that is the loopback sshd fixture (root, key file, host
// key already trusted). The user-editable copy of systemd-unit.sh in the data dir is edited, the
// way a user edits it from the console, into a noisy one: before doing what the job needs
// (KES_ACTIVE=active) it prints FLOOD_LINES lines when asked to restart containerd. So the
// 100 000-line job log comes from the real runner, a real SSH exec and the real event transport;
// only the script's text is ours. The node's Terminal is a real SSH shell on the same sshd.
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { HostKeyStore } from '../../../src/main/ssh/hostkeys';
import { makeKey } from '../../integration/fixtures/keys';
import { startSshd, type Sshd } from '../../integration/fixtures/sshd';
import { ROOT } from './build';
import { startSeededApp, stopSeededApp, tempDir, type SeededApp } from './app';

export const CLUSTER = 'flood';
export const NODE = 'm1';

/** A line of the flood: `flood line N of TOTAL: …` (62 characters or so). */
export const floodLine = (i: number, total: number) => `flood line ${i} of ${total}: the quick brown fox jumps`;

export function floodScript(lines: number): string {
  return [
    '#!/usr/bin/env bash',
    '# Edited for the UI-under-load test: a unit restart that prints a lot first.',
    'if [ "${2:-}" = containerd ]; then',
    `  awk -v n=${lines} 'BEGIN { for (i = 1; i <= n; i++) printf "flood line %d of %d: the quick brown fox jumps\\n", i, n }'`,
    'fi',
    'echo "KES_ACTIVE=active"',
    '',
  ].join('\n');
}

export interface FloodApp extends SeededApp {
  sshd: Sshd;
  stop(): Promise<void>;
}

export async function startFloodApp(lines: number, viewport = { width: 1440, height: 960 }): Promise<FloodApp> {
  const keyDir = await tempDir('kes-flood-key-');
  const key = await makeKey(keyDir, 'id_flood');
  const sshd = await startSshd({ authorizedKeys: [key.publicKey] });
  const inventory = {
    version: 1,
    clusters: [
      {
        id: 'cflood',
        name: CLUSTER,
        createdAt: '2026-01-01T00:00:00.000Z',
        facts: null,
        creation: {
          lb: { kind: 'none', port: 6443 },
          kubernetesMinor: '1.33',
          podCidr: '10.244.0.0/16',
          serviceCidr: '10.96.0.0/12',
          cni: 'flannel',
          cniManifest: { source: 'file', path: '/tmp/kube-flannel.yml' },
          ignorePreflightErrors: [],
          demo: false,
        },
        nodes: [
          {
            id: 'nm1',
            name: NODE,
            address: sshd.host,
            port: sshd.port,
            user: 'root',
            roles: ['master'],
            auth: { method: 'key-file', keyPath: key.path },
            jumpNodeId: null,
          },
        ],
      },
    ],
  };
  let env: SeededApp;
  try {
    env = await startSeededApp(inventory, viewport, async (dataDir) => {
      const hostKeys = await HostKeyStore.open(dataDir);
      await hostKeys.trust({
        host: sshd.host,
        port: sshd.port,
        keyType: 'ssh-ed25519',
        fingerprint: await sshd.fingerprint(),
      });
      // The shipped version beside the user's copy (scripts/folder.ts): the copy reads as edited by
      // the user, and the app keeps it.
      const scripts = join(dataDir, 'scripts');
      await fs.mkdir(join(scripts, '.shipped'), { recursive: true });
      await fs.copyFile(join(ROOT, 'resources/scripts/systemd-unit.sh'), join(scripts, '.shipped', 'systemd-unit.sh'));
      await fs.writeFile(join(scripts, 'systemd-unit.sh'), floodScript(lines), { mode: 0o755 });
    });
  } catch (e) {
    await sshd.stop();
    await fs.rm(keyDir, { recursive: true, force: true });
    throw e;
  }
  return {
    ...env,
    sshd,
    async stop() {
      await stopSeededApp(env);
      await sshd.stop();
      await fs.rm(keyDir, { recursive: true, force: true });
    },
  };
}

export async function openFloodCluster(page: Page): Promise<void> {
  await page.locator(`[data-testid="nav-cluster"][data-cluster-name="${CLUSTER}"]`).click();
  await page.locator(`[data-testid="cluster-view"][data-cluster-name="${CLUSTER}"]`).waitFor();
  await page.getByTestId('node-map').waitFor();
}

const card = (page: Page) => page.locator(`[data-testid="node-card"][data-node-name="${NODE}"]`);

/** Plan "Restart runtime" on m1 and open its preview (nothing runs yet). */
export async function planFloodJob(page: Page): Promise<void> {
  await card(page).getByTestId('node-more').click();
  await card(page).getByTestId('node-action-restart-runtime').click();
  await page.getByTestId('plan-preview').waitFor({ timeout: 30_000 });
}

/** Press Run in the preview; resolves with the job view once it shows. */
export async function runFloodJob(page: Page) {
  await page.getByTestId('plan-run').click();
  const view = page.locator('[data-testid="job-view"][data-kind="restart-runtime"]');
  await view.waitFor({ timeout: 30_000 });
  return view;
}

/** Open m1's Terminal (an SSH shell); resolves once its session is open. */
export async function openNodeTerminal(page: Page): Promise<void> {
  await card(page).getByTestId('node-terminal').click();
  await page
    .locator(`[data-testid="terminal-view"][data-active="true"][data-state="open"]`)
    .waitFor({ timeout: 30_000 });
}
