// Intent: from bare machines (sshd only: the lab's bare mode), the app creates an HA cluster with
// the REAL kubeadm 1.36 — haproxy on the LB host, 3 masters (stacked etcd), 1 worker, the pod
// network, the demo Deployment — through one planned job, then knows it like any initialized
// cluster. /readyz answers through the LB and keeps answering with one master's apiserver stopped;
// 3 healthy etcd members; mode embedded-up; a snapshot works right away; the join secrets appear
// nowhere in the job record; running the job again changes nothing and skips every joined node.
// What the lab cannot run is a stand-in (test/lab/README.md): the package installs (apt stand-in
// serving the cached real binaries), the kubelet and the CNI's pods.
import { promises as fs } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClusterFacts } from '../../src/shared/domain';
import type { HealthReport } from '../../src/shared/health';
import type { JobRecord } from '../../src/shared/jobs';
import type { PreflightReport } from '../../src/shared/preflight';
import type { SnapshotMeta } from '../../src/shared/vault';
import { packEtcdRelease } from '../lab';
import { addLabNode, eventually, runJob, startSystem, type System } from './support';
import { LAB_IGNORED_PREFLIGHT } from './fixtures/lab-create';

const CNI_MANIFEST = resolve(__dirname, 'fixtures/cni-lab.yaml');
let sys: System;
const ids: Record<string, string> = {};
let created: JobRecord;
let toolsArchive: string;

const createRequest = () => ({
  kind: 'create-cluster',
  lb: { kind: 'haproxy', port: 6443 },
  kubernetesMinor: '1.36',
  podCidr: '198.18.128.0/17',
  serviceCidr: '198.19.240.0/20',
  cni: 'calico',
  cniManifest: { source: 'file', path: CNI_MANIFEST },
  ignorePreflightErrors: LAB_IGNORED_PREFLIGHT,
  demo: true,
  etcdToolsArchive: toolsArchive,
});

beforeAll(async () => {
  sys = await startSystem({ prefix: 'kz1', bare: true, masters: 3, workers: 1, spares: 1, lb: 'haproxy' });
  // startSystem adds m1 as the seed (roles master+etcd); the wizard would have written these
  ids.m1 = sys.svc.inventory.get(sys.clusterId).nodes[0].id;
  await sys.call('nodes.upsert', {
    clusterId: sys.clusterId,
    node: { ...sys.svc.inventory.node(sys.clusterId, ids.m1), roles: ['master'] },
  });
  ids.lb = await addLabNode(sys, 'lb', ['lb']);
  ids.m2 = await addLabNode(sys, 'm2', ['master']);
  ids.m3 = await addLabNode(sys, 'm3', ['master']);
  ids.w1 = await addLabNode(sys, 'w1', ['worker']);
  // the etcd tools the job installs on the masters (a user adds or downloads them in Settings → Tools)
  const release = await packEtcdRelease(sys.dataDir);
  toolsArchive = (await sys.call<{ name: string }>('tools.add', { path: release.archive, sha256: release.sha256 }))
    .name;
}, 240_000);
afterAll(async () => {
  await sys?.close();
});

const health = () => sys.call<HealthReport>('cluster.health', { clusterId: sys.clusterId });
const kubectl = (host: string, args: string) =>
  sys.lab.exec(host, `kubectl --kubeconfig /etc/kubernetes/admin.conf ${args}`, { allowFail: true });

describe('create an HA cluster from bare machines', () => {
  it('pre-flight passes on bare machines (warnings allowed)', async () => {
    const rep = await sys.call<PreflightReport>('cluster.preflight', { clusterId: sys.clusterId, lbPort: 6443 });
    const fails = rep.rows.filter((r) => r.status === 'fail');
    expect(fails, JSON.stringify(fails, null, 1)).toEqual([]);
    expect(new Set(rep.rows.map((r) => r.node))).toEqual(new Set(['m1', 'lb', 'm2', 'm3', 'w1']));
  });

  it('plans the whole creation: LB config, preparation, kubeadm init, joins, CNI, demo — no secret in the plan', async () => {
    const plan = await sys.call<JobRecord>('jobs.plan', { clusterId: sys.clusterId, job: createRequest() });
    const paths = plan.plan.map((p) => p.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        'load-balancer',
        'prepare',
        'init',
        'join-masters/m2',
        'join-masters/m3',
        'join-workers/w1',
        'cni',
        'demo',
        'initialize',
      ]),
    );
    const text = JSON.stringify(plan.plan);
    expect(text).toContain('controlPlaneEndpoint');
    expect(text).toContain('haproxy -c -f');
    expect(text).not.toMatch(/[a-z0-9]{6}\.[a-z0-9]{16}/); // no bootstrap token
  });

  it('runs: every node joined, the demo Deployment available, the cluster initialized (embedded-up)', async () => {
    created = await runJob<JobRecord>(sys, createRequest());
    const errs = created.log.filter((l) => l.stream === 'error' || l.stream === 'stderr').slice(-12);
    expect(created.status, `${created.error}\n${errs.map((l) => `${l.path}: ${l.text}`).join('\n')}`).toBe('succeeded');
    const nodes = (await kubectl('m1', 'get nodes -o name')).stdout.trim().split('\n').sort();
    expect(nodes).toEqual(['node/m1', 'node/m2', 'node/m3', 'node/w1']);
    const facts = sys.svc.inventory.get(sys.clusterId).facts as ClusterFacts;
    expect(facts.mode).toBe('embedded-up');
    expect(facts.masters.map((m) => m.name).sort()).toEqual(['m1', 'm2', 'm3']);
  }, 900_000);

  it('the join secrets appear nowhere in the job record', async () => {
    const tokens = await kubectl('m1', 'get secrets -n kube-system -o jsonpath={.items[*].metadata.name}');
    const ids = tokens.stdout
      .split(/\s+/)
      .filter((n) => n.startsWith('bootstrap-token-'))
      .map((n) => n.slice(16));
    expect(ids.length).toBeGreaterThan(0);
    const rec = JSON.stringify(created);
    for (const id of ids) expect(rec).not.toMatch(new RegExp(`${id}\\.[a-z0-9]{16}`));
    expect(rec).toContain('********');
  });

  it('3 healthy etcd members; /readyz through the LB, also with one apiserver stopped', async () => {
    const h = await health();
    expect(h.members.length).toBe(3);
    expect(h.members.every((m) => m.reachable && !m.alarms.length)).toBe(true);
    expect(h.members.filter((m) => m.isLeader).length).toBe(1);
    // the health view's kubelet and load balancer rows
    expect(h.services.map((x) => `${x.node}:${x.unit}:${x.state}`).sort()).toEqual([
      'lb:haproxy:active',
      'm1:kubelet:active',
      'm2:kubelet:active',
      'm3:kubelet:active',
      'w1:kubelet:active',
    ]);
    const viaLb = () =>
      sys.lab.exec('w1', `curl -sk --max-time 3 https://${sys.lab.host('lb').address}:6443/readyz`, {
        allowFail: true,
      });
    expect((await viaLb()).stdout).toBe('ok');
    await sys.lab.exec('m2', 'mkdir -p /root/parked && mv /etc/kubernetes/manifests/kube-apiserver.yaml /root/parked/');
    try {
      expect(
        await eventually(
          async () => !(await sys.lab.exec('m2', 'ss -Hltn "sport = :6443"')).stdout.trim(),
          60_000,
          500,
        ),
      ).toBe(true);
      // haproxy checks every second and takes a backend out after 2 failures
      await new Promise((r) => setTimeout(r, 3000));
      for (let i = 0; i < 10; i++) expect((await viaLb()).stdout).toBe('ok');
    } finally {
      await sys.lab.exec('m2', 'mv /root/parked/kube-apiserver.yaml /etc/kubernetes/manifests/');
    }
  }, 120_000);

  it('the demo Deployment has 3 available replicas; a snapshot works right away', async () => {
    const dep = JSON.parse((await kubectl('m1', 'get deployment demo-nginx -n default -o json')).stdout) as {
      status: { availableReplicas?: number };
    };
    expect(dep.status.availableReplicas).toBe(3);
    const rec = await runJob<JobRecord & { snapshot?: SnapshotMeta }>(sys, {
      kind: 'snapshot',
      note: 'right after creation',
    });
    expect(rec.status).toBe('succeeded');
  }, 120_000);

  it('running the job again skips every joined node and changes nothing', async () => {
    const again = await runJob<JobRecord>(sys, createRequest());
    expect(again.status, again.error).toBe('succeeded');
    const skipped = again.steps.filter((s) => s.status === 'skipped').map((s) => s.path);
    expect(skipped).toEqual(expect.arrayContaining(['init', 'join-masters/m2', 'join-masters/m3', 'join-workers/w1']));
    expect(again.log.some((l) => l.text.startsWith('KES_CHANGED='))).toBe(false);
  }, 600_000);

  it('restarts the Kubernetes runtime (containerd + kubelet) on a node; both come back active', async () => {
    const rec = await runJob<JobRecord>(sys, { kind: 'restart-runtime', nodeIds: [ids.m3] });
    expect(rec.status, rec.error).toBe('succeeded');
    expect(
      rec.log
        .filter((l) => l.stream === 'cmd')
        .map((l) => l.text)
        .join('\n'),
    ).toMatch(/restart containerd[\s\S]*restart kubelet/);
    expect((await sys.lab.exec('m3', 'systemctl is-active containerd kubelet')).stdout.trim().split('\n')).toEqual([
      'active',
      'active',
    ]);
  }, 120_000);

  it('exports the admin kubeconfig only on request: 0600, the LB as server, never over an existing file', async () => {
    const path = join(sys.dataDir, 'exported-admin.conf');
    const r = await sys.call<{ bytes: number }>('cluster.exportKubeconfig', { clusterId: sys.clusterId, path });
    expect(r.bytes).toBeGreaterThan(1000);
    expect((await fs.stat(path)).mode & 0o777).toBe(0o600);
    expect(await fs.readFile(path, 'utf8')).toContain(`server: https://${sys.lab.host('lb').address}:6443`);
    await expect(sys.call('cluster.exportKubeconfig', { clusterId: sys.clusterId, path })).rejects.toMatchObject({
      code: 'ALREADY_EXISTS',
    });
  });

  it('grows: a 4th master (s1) joins when the job runs again, and the LB config names it', async () => {
    ids.s1 = await addLabNode(sys, 's1', ['master']);
    const grow = await runJob<JobRecord>(sys, createRequest());
    expect(grow.status, grow.error).toBe('succeeded');
    expect(grow.steps.find((s) => s.path === 'join-masters/s1')?.status).toBe('done');
    expect(grow.steps.find((s) => s.path === 'join-secrets')?.status).toBe('done');
    const cfg = (await sys.lab.exec('lb', 'cat /etc/haproxy/haproxy.cfg')).stdout;
    expect(cfg).toContain(sys.lab.host('s1').address);
    expect((await health()).members.length).toBe(4);
  }, 600_000);

  it('shrinks: resetting master s1 removes its etcd member first, then the node, and the LB forgets it', async () => {
    const rec = await runJob<JobRecord>(sys, { kind: 'reset-node', nodeId: ids.s1 }, sys.lab.state.clusterName);
    expect(rec.status, rec.error).toBe('succeeded');
    const order = rec.steps.map((s) => s.path);
    expect(order.indexOf('etcd-member')).toBeLessThan(order.indexOf('kubeadm-reset'));
    expect((await health()).members.map((m) => m.name).sort()).toEqual(['m1', 'm2', 'm3']);
    expect((await sys.lab.exec('lb', 'cat /etc/haproxy/haproxy.cfg')).stdout).not.toContain(sys.lab.host('s1').address);
    expect((await kubectl('m1', 'get nodes -o name')).stdout).not.toContain('node/s1');
    expect((await sys.lab.exec('s1', 'ls /etc/kubernetes/manifests 2>/dev/null | wc -l')).stdout.trim()).toBe('0');
  }, 600_000);

  it('resets a worker: drained, kubeadm reset, Node deleted', async () => {
    const rec = await runJob<JobRecord>(sys, { kind: 'reset-node', nodeId: ids.w1 }, sys.lab.state.clusterName);
    expect(rec.status, rec.error).toBe('succeeded');
    expect((await kubectl('m1', 'get nodes -o name')).stdout.trim().split('\n').sort()).toEqual([
      'node/m1',
      'node/m2',
      'node/m3',
    ]);
    expect((await sys.lab.exec('w1', 'test -e /etc/kubernetes/kubelet.conf; echo $?')).stdout.trim()).toBe('1');
  }, 600_000);
});
