// Intent: the seed's whole story in the lab — initialize a 3-master cluster behind an LB; demo pod;
// snapshot; drill; provision an external etcd on 2 spare hosts + the LB host; restore the snapshot
// there; switch the apiservers to it (pod back, /readyz through the LB); remove one external
// member and keep serving; add it back healthy; switch back to embedded with a fresh snapshot
// restored onto the stacked members; pod still there; states exist and one can be brought back.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { ClusterFacts } from '../../src/shared/domain';
import type { HealthReport } from '../../src/shared/health';
import type { SnapshotMeta, StateManifest } from '../../src/shared/vault';
import { addLabNode, createDemoPod, initialize, podStatus, runJob, startSystem, type System } from './support';
import { kubeadmDisagreements, storedClusterConfiguration } from './kubeadm-upgrade';

const run = promisify(execFile);
let sys: System;
const ids: Record<string, string> = {};

beforeAll(async () => {
  sys = await startSystem({ prefix: 'ks5', masters: 3, lb: 'haproxy', spares: 2 });
}, 240_000);
afterAll(async () => {
  await sys?.close();
});

async function lbReady(): Promise<boolean> {
  const r = await run('curl', ['-sk', '--max-time', '5', `https://${sys.lab.host('lb').address}:6443/readyz`]).catch(
    () => ({ stdout: '' }),
  );
  return r.stdout === 'ok';
}

const podExists = async (name = 'demo-nginx') => (await podStatus(sys.lab, name)) === 200;

const addNode = (name: string, roles: string[] = []) => addLabNode(sys, name, roles);

const health = () => sys.call<HealthReport>('cluster.health', { clusterId: sys.clusterId });
const name = () => sys.lab.state.clusterName;

describe('external etcd: the whole story', () => {
  let snap: SnapshotMeta;
  /** etcd.local of kubeadm's stored configuration as kubeadm init wrote it, without the data dir. */
  let localSettings: unknown;
  const localOf = async () => {
    const { dataDir: _d, ...rest } = (
      parse(await storedClusterConfiguration(sys.lab, 'm1')) as { etcd: { local: Record<string, unknown> } }
    ).etcd.local;
    return rest;
  };

  it('initializes, creates the demo pod, snapshots, and the drill wipes it', async () => {
    const f = await initialize(sys);
    expect(f.mode).toBe('embedded-up');
    localSettings = await localOf();
    expect(await createDemoPod(sys.lab)).toBe(201);
    expect((await runJob(sys, { kind: 'snapshot', note: 'story' })).status).toBe('succeeded');
    [snap] = await sys.call<SnapshotMeta[]>('snapshots.list', { clusterId: sys.clusterId });
    const drill = await runJob(sys, { kind: 'drill', namespaces: ['default'] }, name());
    expect(drill.status, drill.error).toBe('succeeded');
    expect(await podExists()).toBe(false);
  });

  it('provisions an external etcd on s1, s2 and the LB host, configured but not started', async () => {
    for (const n of ['s1', 's2', 'lb']) ids[n] = await addNode(n, n === 'lb' ? ['lb'] : []);
    // folders that existed before are never re-moded or re-owned (prepare-external.sh made /var/lib 0700)
    const modes = 'stat -c "%n %a %U:%G" / /etc /var /var/lib /usr/local /usr/local/bin';
    const before = await Promise.all(['s1', 's2', 'lb'].map((h) => sys.lab.ssh(h, modes).then((r) => r.stdout)));
    const planned = await sys.call<{ id: string; plan: { items: { kind: string; path?: string }[] }[] }>('jobs.plan', {
      clusterId: sys.clusterId,
      job: { kind: 'provision-external', nodeIds: [ids.s1, ids.s2, ids.lb] },
    });
    const files = planned.plan
      .flatMap((p) => p.items)
      .filter((i) => i.kind === 'file')
      .map((i) => i.path);
    expect(files).toEqual(expect.arrayContaining(['/etc/default/etcd', '/etc/systemd/system/etcd.service']));
    await sys.call('jobs.start', { jobId: planned.id });
    let rec: { status: string; error?: string };
    do {
      await new Promise((r) => setTimeout(r, 500));
      rec = await sys.call('jobs.get', { jobId: planned.id });
    } while (rec.status === 'running');
    expect(rec.status, rec.error).toBe('succeeded');
    // certificates are signed by the cluster's etcd CA and the key is private
    const v = await sys.lab.ssh(
      's1',
      'openssl verify -CAfile /etc/etcd/pki/ca.crt /etc/etcd/pki/server.crt && stat -c %a /etc/etcd/pki/server.key',
    );
    expect(v.stdout).toMatch(/OK\n600/);
    const after = await Promise.all(['s1', 's2', 'lb'].map((h) => sys.lab.ssh(h, modes).then((r) => r.stdout)));
    expect(after).toEqual(before);
    expect((await sys.lab.ssh('s1', 'systemctl is-active etcd', { allowFail: true })).stdout.trim()).not.toBe('active');
  });

  it('restores the snapshot onto the external etcd and switches the apiservers to it', async () => {
    const restore = await runJob(sys, { kind: 'restore-external', snapshotId: snap.id }, name());
    expect(restore.status, restore.error).toBe('succeeded');
    sys.svc.etcd.gateTimeoutMs = 120_000;
    const sw = await runJob<{
      metrics?: Record<string, number>;
      log: { path: string; stream: string; text: string }[];
    }>(sys, { kind: 'switch', direction: 'to-external' }, name());
    expect(sw.status, sw.error).toBe('succeeded');
    for (const l of sw.log.filter((x) => x.path === 'kubeadm-config' && x.stream !== 'cmd'))
      console.log(`[ks5] kubeadm-config: ${l.text}`);
    expect(sw.metrics?.apiserverUnavailableMs).toBeGreaterThan(0);
    const h = await health();
    expect(h.mode).toBe('external-up');
    expect(h.members.map((m) => m.name).sort()).toEqual(['lb', 's1', 's2']);
    expect(await lbReady()).toBe(true);
    // a kubeadm upgrade now would keep the apiservers on the external etcd (kubeadm-config kept true)
    expect.soft(await kubeadmDisagreements(sys.lab), 'kubeadm upgrade after switching to external').toEqual([]);
    // the snapshot was taken before the drill; the switch snapshot was taken after it — so the
    // external cluster holds the post-drill data; restore the story snapshot to bring the pod back
    const back = await runJob(sys, { kind: 'restore-external', snapshotId: snap.id }, name());
    expect(back.status, back.error).toBe('succeeded');
    await new Promise((r) => setTimeout(r, 2000));
    expect(await podExists()).toBe(true);
    // the restored snapshot carries the ClusterConfiguration of its time (stacked etcd)
    expect
      .soft(await kubeadmDisagreements(sys.lab), 'kubeadm upgrade after restoring onto the external etcd in use')
      .toEqual([]);
    const facts = sys.svc.inventory.get(sys.clusterId).facts as ClusterFacts;
    expect(facts.mode).toBe('external-up');
  });

  it('removes one external member, keeps serving, and adds it back healthy', async () => {
    const rm = await runJob(sys, { kind: 'member-remove', nodeId: ids.s2 }, name());
    expect(rm.status, rm.error).toBe('succeeded');
    expect(await lbReady()).toBe(true);
    expect(await podExists()).toBe(true);
    expect((await health()).members.map((m) => m.name).sort()).toEqual(['lb', 's1']);
    const add = await runJob(sys, { kind: 'member-add', nodeId: ids.s2 });
    expect(add.status, add.error).toBe('succeeded');
    const h = await health();
    expect(h.members.map((m) => m.name).sort()).toEqual(['lb', 's1', 's2']);
    expect(h.members.every((m) => m.reachable && !m.isLearner)).toBe(true);
    expect(await lbReady()).toBe(true);
  });

  it('switches back to embedded with a fresh snapshot restored onto the stacked members', async () => {
    const sw = await runJob<{ metrics?: Record<string, number> }>(
      sys,
      { kind: 'switch', direction: 'to-embedded' },
      name(),
    );
    expect(sw.status, sw.error).toBe('succeeded');
    // the stacked members first start without the initial corruption check (see first-start.ts)…
    console.log(`[ks5] to-embedded: apiservers unavailable ${sw.metrics?.apiserverUnavailableMs} ms`);
    expect(sw.steps.find((x) => x.path === 'corrupt-check')?.status).toBe('done');
    // …and end with the user's etcd.yaml, check on, on every master
    for (const m of sys.lab.masters)
      expect((await sys.lab.exec(m.name, 'cat /etc/kubernetes/manifests/etcd.yaml')).stdout).toMatch(
        /--feature-gates=InitialCorruptCheck=true|--experimental-initial-corrupt-check=true/,
      );
    const h = await health();
    expect(h.mode).toBe('embedded-up');
    expect(h.members).toHaveLength(3);
    expect(await podExists()).toBe(true);
    expect(await lbReady()).toBe(true);
    expect.soft(await kubeadmDisagreements(sys.lab), 'kubeadm upgrade after switching to embedded').toEqual([]);
    // the stacked member's other settings (imageTag …) came back with it
    expect(await localOf()).toEqual(localSettings);
  });

  it('kept a state for each restore and switch, and can bring one back', async () => {
    const states = await sys.call<StateManifest[]>('states.list', { clusterId: sys.clusterId });
    expect(states.length).toBeGreaterThanOrEqual(4);
    const beforeBack = states.find((s) => s.reason === 'before switching to embedded')!;
    expect(beforeBack.mode).toBe('external-up');
    const rec = await runJob(sys, { kind: 'restore-state', stateId: beforeBack.id }, name());
    expect(rec.status, rec.error).toBe('succeeded');
    // the job itself refreshed the stored mode (snapshots and states record it), no initialize needed
    expect.soft(sys.svc.inventory.get(sys.clusterId).facts?.mode, 'stored mode after the job').toBe('external-up');
    expect.soft(await kubeadmDisagreements(sys.lab), 'kubeadm upgrade after bringing back the state').toEqual([]);
    const f = await initialize(sys);
    expect(f.mode).toBe('external-up');
    expect(await lbReady()).toBe(true);
  });
});
