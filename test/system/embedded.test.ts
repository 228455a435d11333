// Intent: the heart of the product works against a kubeadm-shaped lab — initialize from one
// master's address, see the mode, snapshot into the vault with correct metadata, survive a drill
// that wipes the workload, restore onto the embedded etcd of all 3 masters (pod back, new cluster
// id, all healthy, apiservers ready through the LB), and bring back the state saved before it.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClusterFacts } from '../../src/shared/domain';
import type { HealthReport } from '../../src/shared/health';
import type { JobRecord } from '../../src/shared/jobs';
import type { SnapshotMeta, StateManifest } from '../../src/shared/vault';
import { etcdRelease, packEtcdRelease } from '../lab';
import { bridgeAddress } from '../lab/net';
import { forgetUnreachableMembers } from '../../src/main/etcd/snapshot-stream';
import {
  countDrillObjects,
  createDemoPod,
  createDrillObjects,
  initialize,
  podStatus,
  runJob,
  startSystem,
  type System,
} from './support';
import { kubeadmDisagreements } from './kubeadm-upgrade';

const run = promisify(execFile);
let sys: System;

beforeAll(async () => {
  sys = await startSystem({ prefix: 'ks4', masters: 3, lb: 'haproxy', spares: 1, noEtcdTools: ['s1'] });
}, 240_000);
afterAll(async () => {
  await sys?.close();
});

const podExists = async () => (await podStatus(sys.lab)) === 200;

/** Serializable (member-local) read of one key on every master's etcd member. */
async function keyOnEveryMember(key: string): Promise<boolean[]> {
  return Promise.all(
    sys.lab.masters.map(async (m) => {
      const r = await sys.lab.etcdctl(m.name, `get ${key} --consistency=s --keys-only`);
      return r.stdout.includes(key);
    }),
  );
}

describe('embedded etcd: initialize, snapshot, drill, restore, states', () => {
  let facts: ClusterFacts;
  let snap: SnapshotMeta;
  let before: HealthReport;

  it('initializes from one master and finds all three with their stacked members', async () => {
    facts = await initialize(sys);
    expect(facts.masters.map((m) => m.name).sort()).toEqual(['m1', 'm2', 'm3']);
    expect(facts.members).toHaveLength(3);
    expect(facts.members.every((m) => m.kind === 'stacked' && m.nodeId)).toBe(true);
    expect(facts.masters.every((m) => m.etcdServers?.[0] === 'https://127.0.0.1:2379')).toBe(true);
    expect(facts.etcdCaCert).toMatch(/BEGIN CERTIFICATE/);
    expect(facts.etcdCaKeyOn.length).toBeGreaterThan(0);
    expect(facts.controlPlaneEndpoint).toBe(`https://${sys.lab.host('lb').address}:6443`);
    expect(facts.mode).toBe('embedded-up');
    // idempotent
    const again = await initialize(sys);
    expect(again.members.map((m) => m.id).sort()).toEqual(facts.members.map((m) => m.id).sort());
    expect(sys.svc.inventory.get(sys.clusterId).nodes.filter((n) => n.roles.includes('master'))).toHaveLength(3);
  });

  it('shows health: 3 members with a leader, ready apiservers, kube-system pods', async () => {
    before = await sys.call<HealthReport>('cluster.health', { clusterId: sys.clusterId });
    expect(before.mode).toBe('embedded-up');
    expect(before.members).toHaveLength(3);
    expect(before.members.filter((m) => m.isLeader)).toHaveLength(1);
    expect(before.members.every((m) => m.reachable && (m.dbSize ?? 0) > 0)).toBe(true);
    expect(before.apiservers.every((a) => a.ready)).toBe(true);
    expect(before.pods.some((p) => p.name.startsWith('etcd-') && p.phase === 'Running')).toBe(true);
    expect(before.clusterId).toMatch(/^[0-9a-f]+$/);
  });

  /** Deployments, ConfigMaps, Secrets, Roles, RoleBindings in default and team-a, before the snapshot. */
  let objectsBefore: Record<string, number>;
  it('takes a snapshot whose metadata matches etcdctl snapshot status', async () => {
    expect(await createDemoPod(sys.lab)).toBe(201);
    expect(new Set(await createDrillObjects(sys.lab))).toEqual(new Set([201]));
    objectsBefore = await countDrillObjects(sys.lab);
    expect(objectsBefore).toMatchObject({ deployments: 2, configmaps: 2, secrets: 2, roles: 2, rolebindings: 2 });
    const rec = await runJob<JobRecord>(sys, { kind: 'snapshot', note: 'with demo pod' });
    expect(rec.status, rec.error).toBe('succeeded');
    [snap] = await sys.call<SnapshotMeta[]>('snapshots.list', { clusterId: sys.clusterId });
    // the status tool of the lab's own etcd release (etcdutl from 3.5 on; 3.4 counts keys differently)
    const rel = etcdRelease(sys.lab.state.etcdMinor);
    const tool = existsSync(join(rel.dir, 'etcdutl')) ? join(rel.dir, 'etcdutl') : join(rel.dir, 'etcdctl');
    const st = JSON.parse(
      (
        await run(tool, ['snapshot', 'status', '-w', 'json', sys.svc.snapshots.filePath(snap.id)], {
          env: { ...process.env, ETCDCTL_API: '3' },
        })
      ).stdout,
    ) as { hash: number; revision: number; totalKey: number; totalSize: number };
    expect(snap).toMatchObject({
      revision: st.revision,
      hash: st.hash,
      totalKeys: st.totalKey,
      size: st.totalSize + 32,
      integrity: 'ok',
      note: 'with demo pod',
    });
    expect(snap.source).toMatchObject({ kind: 'cluster', clusterName: sys.lab.state.clusterName, mode: 'embedded-up' });
    expect(snap.etcdVersion).toBe(sys.lab.state.etcdVersion);
    // the desktop reaches the members here: the stream came straight from the member kubeadm made
    // listen on its node's address (mutual TLS, no SSH tunnel)
    const m1 = sys.lab.host('m1').address;
    expect(rec.log.map((l) => l.text)).toContain(
      `snapshot streamed straight to https://${m1}:2379 (TLS with the node's etcd client certificate, no SSH tunnel)`,
    );
  });

  it('streams through SSH when a firewall drops etcd’s port for the desktop: one 2 s wait, not again next time', async () => {
    const m1 = sys.svc.inventory.get(sys.clusterId).nodes.find((n) => n.name === 'm1')!;
    const rule = `INPUT -p tcp --dport 2379 -s ${bridgeAddress(sys.lab.state.subnet)} -j DROP`;
    await sys.lab.exec('m1', `iptables -I ${rule}`);
    const taken: string[] = [];
    try {
      const logs: string[] = [];
      for (const note of ['dropped 1', 'dropped 2']) {
        const rec = await runJob<JobRecord>(sys, { kind: 'snapshot', note, nodeId: m1.id });
        expect(rec.status, rec.error).toBe('succeeded');
        logs.push(rec.log.map((l) => l.text).join('\n'));
        taken.push((await sys.call<SnapshotMeta[]>('snapshots.list', { clusterId: sys.clusterId }))[0].id);
      }
      const url = `https://${m1.address}:2379`;
      expect(logs[0]).toContain(
        `could not stream straight to ${url}: no answer from ${m1.address}:2379 in 2000 ms; trying SSH`,
      );
      expect(logs[0]).toContain(
        'snapshot streamed through an SSH tunnel from m1 to 127.0.0.1:2379 (TLS to etcd inside it)',
      );
      expect(logs[1]).toContain(`${url} did not answer this computer lately: through SSH`);
      expect(logs[1]).not.toContain('could not stream straight');
      expect(logs[1]).toContain('snapshot streamed through an SSH tunnel from m1');
      const list = await sys.call<SnapshotMeta[]>('snapshots.list', { clusterId: sys.clusterId });
      expect(taken.map((id) => list.find((x) => x.id === id)?.integrity)).toEqual(['ok', 'ok']);
    } finally {
      await sys.lab.exec('m1', `iptables -D ${rule}`);
      forgetUnreachableMembers();
      for (const id of taken) await sys.call('snapshots.delete', { id });
    }
  });

  it('installs etcd tools on a host that lacks them', async () => {
    const release = await packEtcdRelease(sys.dataDir);
    const archive = await sys.call<{ name: string }>('tools.add', { path: release.archive, sha256: release.sha256 });
    const s1 = await sys.call<{ id: string }>('nodes.upsert', {
      clusterId: sys.clusterId,
      node: {
        name: 's1',
        address: sys.lab.host('s1').address,
        roles: ['etcd'],
        auth: { method: 'key-file', keyPath: sys.lab.keyPath },
      },
    });
    const t = await sys.call<{ hostKey: { fingerprint: string } }>('ssh.test', {
      clusterId: sys.clusterId,
      nodeId: s1.id,
    });
    await sys.call('hostKeys.trust', { clusterId: sys.clusterId, nodeId: s1.id, fingerprint: t.hostKey.fingerprint });
    expect((await sys.lab.ssh('s1', 'command -v etcdctl', { allowFail: true })).code).not.toBe(0);
    const rec = await runJob(sys, { kind: 'install-tools', nodeIds: [s1.id], archive: archive.name });
    expect(rec.status, rec.error).toBe('succeeded');
    expect((await sys.lab.ssh('s1', 'etcdctl version')).stdout).toContain(`etcdctl version: ${release.version}`);
  });

  it('runs the drill only with the typed cluster name, snapshot first: every kind, every namespace but kube-*', async () => {
    const job = {
      kind: 'drill',
      allNamespaces: true,
      kinds: ['deployments', 'daemonsets', 'statefulsets', 'pods', 'configmaps', 'secrets', 'rbac'],
    };
    const planned = await sys.call<{ id: string; destructive: boolean; plan: { items: { text?: string }[] }[] }>(
      'jobs.plan',
      { clusterId: sys.clusterId, job },
    );
    expect(planned.destructive).toBe(true);
    // the scope, resolved when planned, is in the plan: the user's namespaces, never kube-*
    const scope = planned.plan.flatMap((p) => p.items).find((i) => i.text?.startsWith('Scope: '))?.text ?? '';
    expect(scope).toMatch(/^Scope: default, team-a \(every namespace but kube-\*/);
    expect(scope).not.toMatch(/kube-system/);
    await expect(sys.call('jobs.start', { jobId: planned.id, confirmation: 'nope' })).rejects.toMatchObject({
      code: 'CONFIRMATION_REQUIRED',
    });
    const podsInKubeSystem = async () => {
      const api = sys.lab.api();
      try {
        return ((await api.call('GET', '/api/v1/namespaces/kube-system/pods')).body as { items: unknown[] }).items
          .length;
      } finally {
        api.close();
      }
    };
    const systemPods = await podsInKubeSystem();
    const rec = await runJob(sys, job, sys.lab.state.clusterName);
    expect(rec.status, rec.error).toBe('succeeded');
    expect(await podExists()).toBe(false);
    expect(await countDrillObjects(sys.lab)).toEqual({
      deployments: 0,
      configmaps: 0,
      secrets: 0,
      roles: 0,
      rolebindings: 0,
    });
    expect(await podsInKubeSystem()).toBe(systemPods);
    expect((await sys.call<SnapshotMeta[]>('snapshots.list', { clusterId: sys.clusterId })).length).toBe(2);
  });

  let dataDirsBefore: string[];
  it('restores the snapshot onto all 3 stacked members: pod back, new cluster id, healthy', async () => {
    dataDirsBefore = (
      await sys.call<ClusterFacts>('cluster.initialize', { clusterId: sys.clusterId, nodeId: facts.seedNodeId })
    ).masters.map((m) => m.etcdDataDir!);
    const planned = await sys.call<{ id: string; plan: { path: string; items: { kind: string; diff?: string }[] }[] }>(
      'jobs.plan',
      {
        clusterId: sys.clusterId,
        job: { kind: 'restore-embedded', snapshotId: snap.id },
      },
    );
    const files = planned.plan.flatMap((p) => p.items) as { kind: string; path?: string; diff?: string }[];
    const diffs = files.filter((i) => i.kind === 'file' && i.path === '/etc/kubernetes/manifests/etcd.yaml');
    expect(diffs).toHaveLength(3);
    // and kubeadm's stored configuration follows the new data dir
    const cm = files.find((i) => i.kind === 'file' && i.path?.includes('/configmaps/kubeadm-config'));
    expect(cm?.diff).toMatch(/^-\s+dataDir: \/var\/lib\/etcd$/m);
    expect(cm?.diff).toMatch(/^\+\s+dataDir: \/var\/lib\/etcd-kes-/m);
    expect(diffs[0].diff).toMatch(/^-\s+- --data-dir=\/var\/lib\/etcd$/m);
    expect(diffs[0].diff).toMatch(/^\+\s+path: \/var\/lib\/etcd-kes-/m);
    await sys.call('jobs.start', { jobId: planned.id, confirmation: sys.lab.state.clusterName });
    let rec: {
      status: string;
      error?: string;
      rollback?: unknown;
      log: { text: string }[];
      steps: { path: string; startedAt?: string; endedAt?: string }[];
    };
    for (;;) {
      rec = await sys.call('jobs.get', { jobId: planned.id });
      if (rec.status !== 'running') break;
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(rec.status, `${rec.error} ${JSON.stringify(rec.rollback)}`).toBe('succeeded');
    // "succeeded" means reachable through the load balancer at once, not a moment later
    expect(rec.log.map((l) => l.text)).toContain('the control plane endpoint answers /readyz');
    // Members first start with the initial corruption check off (they were rebuilt from one
    // snapshot), so they do not wait ~7 s per peer for one another; then each master gets the
    // user's etcd.yaml back (check on), one at a time.
    const span = (path: string) => {
      const st = rec.steps.find((x) => x.path === path)!;
      return Date.parse(st.endedAt!) - Date.parse(st.startedAt!);
    };
    if (process.env.KES_DEBUG_LOG)
      for (const l of rec.log as unknown as { t: number; path: string; text: string }[])
        if (l.path.startsWith('start-etcd'))
          console.log(`${new Date(l.t).toISOString().slice(17, 23)} ${l.text.slice(0, 160)}`);
    console.log(`[ks] start-etcd took ${span('start-etcd')} ms; corrupt check back on in ${span('corrupt-check')} ms`);
    expect(span('start-etcd')).toBeLessThan(13_000);
    for (const m of sys.lab.masters) {
      const active = (await sys.lab.exec(m.name, 'cat /etc/kubernetes/manifests/etcd.yaml')).stdout;
      // kubeadm 1.36 spells it as a feature gate for etcd 3.6; older etcd: the experimental flag
      expect(active).toMatch(/--feature-gates=InitialCorruptCheck=true|--experimental-initial-corrupt-check=true/);
      expect(active).toMatch(/--data-dir=\/var\/lib\/etcd-kes-/);
    }
    expect(await podExists()).toBe(true);
    // every kind the drill deleted is back, in both namespaces
    expect(await countDrillObjects(sys.lab)).toEqual(objectsBefore);
    expect(await keyOnEveryMember('/registry/pods/default/demo-nginx')).toEqual([true, true, true]);
    const after = await sys.call<HealthReport>('cluster.health', { clusterId: sys.clusterId });
    expect(after.members).toHaveLength(3);
    expect(after.members.every((m) => m.reachable)).toBe(true);
    expect(after.clusterId).not.toBe(before.clusterId);
    expect(after.mode).toBe('embedded-up');
    expect(
      (await run('curl', ['-sk', '--max-time', '5', `https://${sys.lab.host('lb').address}:6443/readyz`])).stdout,
    ).toBe('ok');
    const refreshed = await initialize(sys);
    expect(refreshed.masters.every((m) => /\/var\/lib\/etcd-kes-/.test(m.etcdDataDir!))).toBe(true);
    // a kubeadm upgrade now would keep etcd on the restored data dirs (kubeadm-config kept true)
    expect.soft(await kubeadmDisagreements(sys.lab), 'kubeadm upgrade after the restore').toEqual([]);
  });

  it('kept the state from before the restore, and bringing it back returns to the old data dirs', async () => {
    const states = await sys.call<StateManifest[]>('states.list', { clusterId: sys.clusterId });
    const pre = states.find((s) => s.reason.startsWith('before restoring snapshot'))!;
    expect(pre).toBeTruthy();
    expect(
      pre.nodes
        .map((n) => n.etcdDataDir)
        .filter(Boolean)
        .sort(),
    ).toEqual([...dataDirsBefore].sort());
    const rec = await runJob(sys, { kind: 'restore-state', stateId: pre.id }, sys.lab.state.clusterName);
    expect(rec.status, rec.error).toBe('succeeded');
    const f = await initialize(sys);
    expect(f.masters.map((m) => m.etcdDataDir).sort()).toEqual([...dataDirsBefore].sort());
    expect(f.mode).toBe('embedded-up');
    // the old data had the pod deleted by the drill
    expect(await podExists()).toBe(false);
    expect.soft(await kubeadmDisagreements(sys.lab), 'kubeadm upgrade after bringing back the state').toEqual([]);
  });
});
