// Intent: the app's embedded-etcd restore holds against the REAL kubelet 1.36 + containerd + crictl
// (the lab's opt-in `kubelet: 'real'` mode), not only against the kubelet stand-in: initialize,
// snapshot, restore onto the embedded etcd (static-pod.sh parks and unparks the etcd static pod,
// and uses `crictl` to see it stop/start), and the cluster comes back with what was written before
// the snapshot. One master behind haproxy keeps it short on 2 cores.
// Runs only when the real-kubelet lab binaries and packages exist (scripts/setup.sh builds/installs
// them); with CI=true a missing piece is a failure, not a skip.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClusterFacts } from '../../src/shared/domain';
import type { HealthReport } from '../../src/shared/health';
import type { SnapshotMeta } from '../../src/shared/vault';
import { KUBERNETES_VERSION, realKubeletUnavailable } from '../lab';
import { eventually, initialize, runJob, startSystem, type System } from './support';

const unavailable = realKubeletUnavailable();
const ci = process.env.CI === 'true';
if (unavailable && !ci) console.warn(`[kr1] skipped: ${unavailable}`);

let sys: System;
const t = { labUp: 0, start: 0 };

/** RSS (MB) by process name inside a lab host (its PID namespace includes the containers). */
async function rssByName(host: string): Promise<Record<string, number>> {
  const out = (await sys.lab.exec(host, 'ps -eo rss=,comm=')).stdout;
  const by: Record<string, number> = {};
  for (const line of out.trim().split('\n')) {
    const [rss, ...name] = line.trim().split(/\s+/);
    const n = name.join(' ');
    by[n] = Math.round(((by[n] ?? 0) * 1024 + Number(rss)) / 1024);
  }
  return by;
}

const kubectl = (args: string) =>
  sys.lab.ssh('m1', `kubectl --kubeconfig /etc/kubernetes/admin.conf ${args}`, { allowFail: true });

const MARKER = {
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name: 'kr1-marker', namespace: 'default' },
  data: { written: 'before the snapshot' },
};
const PAUSE_POD = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'kr1-pause', namespace: 'default' },
  spec: {
    containers: [{ name: 'pause', image: 'registry.k8s.io/pause:3.10.2', imagePullPolicy: 'Never' }],
    tolerations: [{ key: 'node-role.kubernetes.io/control-plane', operator: 'Exists', effect: 'NoSchedule' }],
  },
};

describe.skipIf(!!unavailable && !ci)('real kubelet + containerd: snapshot and restore onto embedded etcd', () => {
  beforeAll(async () => {
    t.start = Date.now();
    sys = await startSystem({
      prefix: 'kr1',
      masters: 1,
      lb: 'haproxy',
      kubelet: 'real',
      log: process.env.KES_LAB_VERBOSE ? (m) => console.log(`[kr1 lab] ${m}`) : undefined,
    });
    t.labUp = Date.now() - t.start;
    console.log(`[kr1] lab up (real kubelet, 1 master + haproxy): ${t.labUp} ms`);
  }, 300_000);
  afterAll(async () => {
    if (sys) {
      const rss = await rssByName('m1').catch(() => ({}));
      console.log(`[kr1] m1 RSS MB by process at the end: ${JSON.stringify(rss)}`);
      console.log(`[kr1] test time after lab up: ${Date.now() - t.start - t.labUp} ms`);
    }
    await sys?.close();
    if (sys) expect(await sys.lab.leftovers()).toEqual({ netns: [], links: [], mounts: [], processes: [] });
  }, 120_000);

  let facts: ClusterFacts;
  let snap: SnapshotMeta;
  let before: HealthReport;

  it('runs the real kubelet, containerd and crictl on the master', async () => {
    expect((await sys.lab.ssh('m1', 'kubelet --version')).stdout.trim()).toBe(`Kubernetes ${KUBERNETES_VERSION}`);
    const v = (await sys.lab.ssh('m1', 'crictl version')).stdout;
    expect(v).toMatch(/RuntimeName:\s+containerd/);
    expect((await sys.lab.ssh('m1', 'crictl ps --name etcd -q')).stdout.trim()).toMatch(/^[0-9a-f]{64}$/);
    expect((await sys.lab.ssh('m1', 'systemctl is-active containerd kubelet')).stdout.trim().split('\n')).toEqual([
      'active',
      'active',
    ]);
  });

  it('initializes: embedded etcd, up', async () => {
    facts = await initialize(sys);
    expect(facts.masters.map((m) => m.name)).toEqual(['m1']);
    expect(facts.members).toHaveLength(1);
    expect(facts.mode).toBe('embedded-up');
    before = await sys.call<HealthReport>('cluster.health', { clusterId: sys.clusterId });
    expect(before.mode).toBe('embedded-up');
  });

  it('snapshots a cluster with a ConfigMap and a running pod', async () => {
    const api = sys.lab.api();
    try {
      expect((await api.call('POST', '/api/v1/namespaces/default/configmaps', MARKER)).status).toBe(201);
      // the default ServiceAccount appears a few seconds after a fresh cluster starts
      expect(
        await eventually(
          async () => (await api.call('POST', '/api/v1/namespaces/default/pods', PAUSE_POD)).status === 201,
          60_000,
          500,
        ),
      ).toBe(true);
    } finally {
      api.close();
    }
    // a real pod: sandbox + container from the locally imported pause image, on the bridge CNI
    const running = await eventually(
      async () => (await kubectl('get pod kr1-pause -o jsonpath={.status.phase}')).stdout === 'Running',
      90_000,
    );
    expect(running, (await kubectl('describe pod kr1-pause')).stdout.slice(-1500)).toBe(true);
    const rec = await runJob(sys, { kind: 'snapshot', note: 'real kubelet' });
    expect(rec.status, rec.error).toBe('succeeded');
    [snap] = await sys.call<SnapshotMeta[]>('snapshots.list', { clusterId: sys.clusterId });
    expect(snap.integrity).toBe('ok');
    // changed after the snapshot: the restore must bring the ConfigMap back
    expect((await kubectl('delete configmap kr1-marker')).code).toBe(0);
  });

  it('restores onto the embedded etcd through the real kubelet: cluster back, data from the snapshot', async () => {
    const t0 = Date.now();
    const rec = await runJob(sys, { kind: 'restore-embedded', snapshotId: snap.id }, sys.lab.state.clusterName);
    console.log(`[kr1] restore-embedded job: ${Date.now() - t0} ms`);
    if (rec.status !== 'succeeded') {
      const logs = await sys.lab.exec('m1', 'tail -40 /var/log/journal-lab/kubelet.service.log', { allowFail: true });
      console.log(logs.stdout);
    }
    expect(rec.status, rec.error).toBe('succeeded');
    // static-pod.sh found the real crictl and waited on the runtime's view of the etcd container
    const log = ((rec as unknown as { log?: { text: string }[] }).log ?? []).map((l) => l.text);
    const cri = log.filter((l) => /crictl|container runtime/.test(l));
    if (cri.length) console.log(`[kr1] job log lines about the runtime:\n${cri.join('\n')}`);
    expect(cri.filter((l) => /crictl is not installed/.test(l))).toEqual([]);
    const active = (await sys.lab.exec('m1', 'cat /etc/kubernetes/manifests/etcd.yaml')).stdout;
    expect(active).toMatch(/--data-dir=\/var\/lib\/etcd-kes-/);
    // the real kubelet runs etcd from the restored data dir
    const inspect = (await sys.lab.ssh('m1', 'crictl inspect $(crictl ps --name etcd -q | head -1)')).stdout;
    expect(inspect).toMatch(/--data-dir=\/var\/lib\/etcd-kes-/);
    expect((await kubectl('get configmap kr1-marker -o jsonpath={.data.written}')).stdout).toBe('before the snapshot');
    expect((await kubectl('get pod kr1-pause -o name')).stdout.trim()).toBe('pod/kr1-pause');
    const after = await sys.call<HealthReport>('cluster.health', { clusterId: sys.clusterId });
    expect(after.mode).toBe('embedded-up');
    expect(after.members.every((m) => m.reachable)).toBe(true);
    expect(after.clusterId).not.toBe(before.clusterId);
    expect(after.apiservers.every((a) => a.ready)).toBe(true);
    const f = await initialize(sys);
    expect(f.mode).toBe('embedded-up');
    expect(f.masters[0].etcdDataDir).toMatch(/^\/var\/lib\/etcd-kes-/);
    // the node and its pods come back Ready with the real kubelet
    expect(
      await eventually(
        async () => (await kubectl('get pod kr1-pause -o jsonpath={.status.phase}')).stdout === 'Running',
        120_000,
      ),
    ).toBe(true);
  });
});
