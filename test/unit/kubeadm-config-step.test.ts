// Intent: the jobs' last step renders kubeadm-config from the manifests the masters run at the end
// (not from the plan), writes it through a master's API access with optimistic concurrency, logs
// the change, says clearly what a failed write means, and a rollback puts the previous content
// back only over what the job itself wrote. Bringing back a state ends by refreshing the mode.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ClusterNode } from '../../src/shared/domain';
import type { EtcdDeps } from '../../src/main/etcd/deps';
import {
  kubeadmConfigStep,
  undoKubeadmConfig,
  writeKubeadmConfig,
  type KubeadmConfigTrack,
} from '../../src/main/etcd/kubeadm-config-step';
import { restoreStateSteps } from '../../src/main/etcd/state';
import { KUBEADM_CONFIG_API_PATH } from '../../src/main/cluster/kubeadm-config';

const fixture = (f: string) => readFileSync(join(__dirname, 'fixtures', f), 'utf8');
const APISERVER = fixture('kube-apiserver.yaml');
const ETCD = fixture('etcd.yaml');
const CC = `apiVersion: kubeadm.k8s.io/v1beta4
etcd:
  local:
    dataDir: /var/lib/etcd
    imageTag: 3.6.16-0
kind: ClusterConfiguration
kubernetesVersion: v1.36.3
`;

const node = (name: string, address: string): ClusterNode =>
  ({ id: `id-${name}`, name, address, port: 22, user: 'root', roles: ['master', 'etcd'] }) as ClusterNode;
const masters = [node('m1', '198.18.0.2'), node('m2', '198.18.0.3')];

/** Masters with manifests (collect-files.sh) and an API holding kubeadm-config (kube-api.sh). */
function fakeCluster(files: Record<string, Record<string, string>>, opts: { putStatus?: number[] } = {}) {
  const api = {
    cm: {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'kubeadm-config', namespace: 'kube-system', resourceVersion: '1' } as Record<string, unknown>,
      data: { ClusterConfiguration: CC } as Record<string, string>,
    },
    puts: [] as { node: string; body: { metadata: { resourceVersion?: string }; data: Record<string, string> } }[],
    putStatus: [...(opts.putStatus ?? [])],
  };
  const log: string[] = [];
  const deps = {
    ops: {
      run: async (_c: string, nodeId: string, script: string, args: string[]) => {
        expect(script).toBe('collect-files.sh');
        const mine = files[nodeId] ?? {};
        const stdout = args
          .map((p) => `KES_FILE=${p}|600|${mine[p] ? Buffer.from(mine[p]).toString('base64') : '-'}`)
          .join('\n');
        return { code: 0, stdout, stderr: '' };
      },
      kubeGet: async (_c: string, _n: string, path: string) => {
        expect(path).toBe(KUBEADM_CONFIG_API_PATH);
        return { status: 200, body: JSON.stringify(api.cm) };
      },
      kubeApi: async (_c: string, nodeId: string, method: string, path: string, body: never) => {
        expect([method, path]).toEqual(['PUT', KUBEADM_CONFIG_API_PATH]);
        api.puts.push({ node: nodeId, body });
        const forced = api.putStatus.shift();
        if (forced) {
          // someone else changed it meanwhile
          if (forced === 409) api.cm.metadata.resourceVersion = String(Number(api.cm.metadata.resourceVersion) + 1);
          return { status: forced, body: JSON.stringify({ message: 'nope' }) };
        }
        if (
          (body as { metadata: { resourceVersion: string } }).metadata.resourceVersion !==
          api.cm.metadata.resourceVersion
        )
          return { status: 409, body: '{}' };
        api.cm = { ...(body as typeof api.cm), metadata: { ...(body as typeof api.cm).metadata } };
        api.cm.metadata.resourceVersion = String(Number(api.cm.metadata.resourceVersion) + 1);
        return { status: 200, body: JSON.stringify(api.cm) };
      },
    },
  } as unknown as EtcdDeps;
  return { deps, api, log, logFn: (_s: string, t: string) => void log.push(t) };
}

const M = '/etc/kubernetes/manifests';
const stackedAt = (dir: string) => ETCD.replaceAll('/var/lib/etcd', dir);
const externalApi = APISERVER.replace(
  '--etcd-servers=https://127.0.0.1:2379',
  '--etcd-servers=https://198.18.0.9:2379,https://198.18.0.8:2379',
);

describe('writeKubeadmConfig', () => {
  it('renders from the live manifests at the end, logs the change and writes it through a master', async () => {
    const live = { [`${M}/kube-apiserver.yaml`]: APISERVER, [`${M}/etcd.yaml`]: stackedAt('/var/lib/etcd-kes-9') };
    const c = fakeCluster({ 'id-m1': live, 'id-m2': live });
    const track: KubeadmConfigTrack = {};
    await writeKubeadmConfig(c.deps, 'c1', masters, track, c.logFn);
    expect(c.api.puts).toHaveLength(1);
    expect(c.api.cm.data.ClusterConfiguration).toBe(CC.replace('/var/lib/etcd', '/var/lib/etcd-kes-9'));
    expect(track.written).toEqual({ previous: CC, previousStash: null, after: c.api.cm.data.ClusterConfiguration });
    expect(c.log.join('\n')).toMatch(/^-\s+dataDir: \/var\/lib\/etcd$/m);
    expect(c.log.join('\n')).toMatch(/^\+\s+dataDir: \/var\/lib\/etcd-kes-9$/m);
    // second run: nothing to write
    await writeKubeadmConfig(c.deps, 'c1', masters, {}, c.logFn);
    expect(c.api.puts).toHaveLength(1);
  });

  it('external: endpoints and files as the apiservers name them; a concurrent change is read again', async () => {
    const live = { [`${M}/kube-apiserver.yaml`]: externalApi };
    const c = fakeCluster({ 'id-m1': live, 'id-m2': live }, { putStatus: [409] });
    await writeKubeadmConfig(c.deps, 'c1', masters, {}, c.logFn);
    expect(c.api.puts).toHaveLength(2);
    expect(c.api.cm.data.ClusterConfiguration).toContain(
      '  external:\n    caFile: /etc/kubernetes/pki/etcd/ca.crt\n    certFile: /etc/kubernetes/pki/apiserver-etcd-client.crt\n    endpoints:\n    - https://198.18.0.9:2379\n    - https://198.18.0.8:2379\n    keyFile: /etc/kubernetes/pki/apiserver-etcd-client.key\n',
    );
  });

  it('the step fails saying what it means; a rollback puts back only what the job wrote', async () => {
    const live = { [`${M}/kube-apiserver.yaml`]: externalApi };
    const c = fakeCluster({ 'id-m1': live, 'id-m2': live }, { putStatus: [500] });
    const step = kubeadmConfigStep<{ kubeadmConfig?: KubeadmConfigTrack }>(c.deps, 'c1', {
      masters: () => masters,
      planned: () => null,
    });
    const ctx: { kubeadmConfig?: KubeadmConfigTrack } = {};
    const s = { signal: new AbortController().signal, log: c.logFn, progress: () => undefined };
    await expect(step.run!(ctx, s)).rejects.toThrow(
      /kubeadm-config\) was not updated: PUT kubeadm-config: HTTP 500 \(nope\).*kubeadm upgrade/s,
    );
    expect(ctx.kubeadmConfig?.failed).toMatch(/HTTP 500/);
    expect(c.api.cm.data.ClusterConfiguration).toBe(CC);
    // nothing was written: nothing to undo
    await undoKubeadmConfig(c.deps, 'c1', masters, ctx.kubeadmConfig, c.logFn);
    expect(c.api.puts).toHaveLength(1);

    // written, then a rollback while the same etcd still holds it: the previous content again
    const ok = fakeCluster({ 'id-m1': live, 'id-m2': live });
    const track: KubeadmConfigTrack = {};
    await writeKubeadmConfig(ok.deps, 'c1', masters, track, ok.logFn);
    expect(ok.api.cm.data.ClusterConfiguration).not.toBe(CC);
    await undoKubeadmConfig(ok.deps, 'c1', masters, track, ok.logFn);
    expect(ok.api.cm.data.ClusterConfiguration).toBe(CC);
    expect(ok.api.cm.metadata.annotations).toBeUndefined();
  });

  it('refuses masters that disagree, without writing', async () => {
    const c = fakeCluster({
      'id-m1': { [`${M}/kube-apiserver.yaml`]: APISERVER, [`${M}/etcd.yaml`]: ETCD },
      'id-m2': { [`${M}/kube-apiserver.yaml`]: externalApi },
    });
    await expect(writeKubeadmConfig(c.deps, 'c1', masters, {}, c.logFn)).rejects.toThrow(/do not use one etcd layout/);
    expect(c.api.puts).toHaveLength(0);
  });
});

describe('bringing back a state', () => {
  it('ends by refreshing the stored mode, then keeping kubeadm-config true', () => {
    const ids = restoreStateSteps({ deps: {} as EtcdDeps, clusterId: 'c1', stateId: 's1' }).map((s) => s.id);
    expect(ids.slice(ids.indexOf('start-apiservers'))).toEqual(['start-apiservers', 'refresh', 'kubeadm-config']);
  });
});
