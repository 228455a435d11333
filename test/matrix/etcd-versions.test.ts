// Intent: the app's core moves work on every etcd minor a kubeadm cluster may run — 3.6 (kubeadm
// 1.34+), 3.5 and 3.4 — against real kubeadm 1.36 control planes: snapshot → restore onto the
// stacked members → switch to an external etcd → switch back. After each move the REAL kubectl
// 1.36 (through the load balancer, with the lab's admin.conf) lists the demo Deployment and its
// pods, and a watch started before the restore is observed: it must either go on without serving
// data the restored cluster does not hold, or end so the client re-lists — never stale data.
// `npm run test:matrix` (KES_MATRIX=3.6 or "3.5 3.4" picks minors; default all three).
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClusterFacts } from '../../src/shared/domain';
import type { HealthReport } from '../../src/shared/health';
import type { SnapshotMeta } from '../../src/shared/vault';
import { kubernetesBinDir, type EtcdMinor } from '../lab/binaries';
import { run } from '../lab/util';
import { addLabNode, initialize, labReadyz, runJob, startSystem, type System } from '../system/support';

const MINORS = (process.env.KES_MATRIX ?? '3.6 3.5 3.4').split(/[\s,]+/).filter(Boolean) as EtcdMinor[];

const DEMO = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: demo
  namespace: default
spec:
  replicas: 3
  selector:
    matchLabels: { app: demo }
  template:
    metadata:
      labels: { app: demo }
    spec:
      tolerations:
      - { key: node-role.kubernetes.io/control-plane, operator: Exists, effect: NoSchedule }
      containers:
      - name: nginx
        image: nginx:1.27
`;

/** The real kubectl 1.36 from the lab's cache, through the LB, as an admin would run it. */
function kubectl(sys: System, args: string[], input?: string) {
  const kubeconfig = join(sys.lab.state.dir, 'pki', 'admin.conf');
  return run(join(kubernetesBinDir(), 'kubectl'), ['--kubeconfig', kubeconfig, '--request-timeout=20s', ...args], {
    input,
    timeoutMs: 120_000,
  });
}

/** Deployment + its pods as kubectl sees them: ready replicas and the names of Running pods. */
async function demoSeen(sys: System): Promise<{ ready: number; pods: string[] }> {
  const d = JSON.parse((await kubectl(sys, ['get', 'deployment', 'demo', '-o', 'json'])).stdout) as {
    status: { readyReplicas?: number };
  };
  const p = JSON.parse((await kubectl(sys, ['get', 'pods', '-l', 'app=demo', '-o', 'json'])).stdout) as {
    items: { metadata: { name: string; deletionTimestamp?: string }; status: { phase: string } }[];
  };
  return {
    ready: d.status.readyReplicas ?? 0,
    pods: p.items
      .filter((x) => x.status.phase === 'Running' && !x.metadata.deletionTimestamp)
      .map((x) => x.metadata.name)
      .sort(),
  };
}

async function waitDemo(sys: System, label: string, timeoutMs = 120_000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const s = await demoSeen(sys);
      if (s.ready === 3 && s.pods.length === 3) return s.pods;
      last = s;
    } catch (e) {
      last = (e as Error).message;
    }
    if (Date.now() > deadline)
      throw new Error(`${label}: demo Deployment not back with 3 pods: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** `kubectl get pods -w`: what a client watching during the restore receives. */
function startWatch(sys: System): { proc: ChildProcess; lines: string[]; exit: Promise<number | null> } {
  const kubeconfig = join(sys.lab.state.dir, 'pki', 'admin.conf');
  const proc = spawn(
    join(kubernetesBinDir(), 'kubectl'),
    ['--kubeconfig', kubeconfig, 'get', 'pods', '-l', 'app=demo', '-w', '--output-watch-events', '-o', 'name'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const lines: string[] = [];
  let buf = '';
  const take = (d: Buffer) => {
    buf += d.toString();
    const parts = buf.split('\n');
    buf = parts.pop()!;
    for (const l of parts) if (l.trim()) lines.push(`${Date.now()} ${l.trim()}`);
  };
  proc.stdout!.on('data', take);
  proc.stderr!.on('data', take);
  const exit = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  return { proc, lines, exit };
}

for (const minor of MINORS) {
  describe(`etcd ${minor} under kubeadm 1.36`, () => {
    let sys: System;
    let snap: SnapshotMeta;
    const health = () => sys.call<HealthReport>('cluster.health', { clusterId: sys.clusterId });
    const name = () => sys.lab.state.clusterName;

    beforeAll(async () => {
      // 3 stacked members on the default minor; one on the older minors keeps the suite inside CI's
      // time (the multi-member restore and join paths are the same code on every minor)
      const masters = minor === '3.6' ? 3 : 1;
      sys = await startSystem({
        prefix: `km${minor.replace('.', '')}`,
        masters,
        spares: 1,
        lb: 'haproxy',
        etcd: minor,
      });
      sys.svc.etcd.gateTimeoutMs = 120_000;
    }, 300_000);
    afterAll(async () => {
      await sys?.close();
    });

    it('initializes, deploys the demo with the real kubectl and snapshots it', async () => {
      const f: ClusterFacts = await initialize(sys);
      expect(f.mode).toBe('embedded-up');
      // the version initialize reads from the etcd image tag kubeadm wrote
      expect(f.etcdVersion).toBe(sys.lab.state.etcdVersion);
      await kubectl(sys, ['apply', '-f', '-'], DEMO);
      await waitDemo(sys, 'after apply');
      const rec = await runJob(sys, { kind: 'snapshot', note: `matrix ${minor}` });
      expect(rec.status, rec.error).toBe('succeeded');
      [snap] = await sys.call<SnapshotMeta[]>('snapshots.list', { clusterId: sys.clusterId });
      expect(snap.etcdVersion).toBe(sys.lab.state.etcdVersion);
    });

    it('restores onto the stacked members: the Deployment is back for kubectl, and a watch serves no stale pods', async () => {
      const watch = startWatch(sys);
      await new Promise((r) => setTimeout(r, 2000)); // the watch has listed the 3 pods
      // the disaster: the Deployment and its pods are deleted
      await kubectl(sys, ['delete', 'deployment', 'demo', '--cascade=foreground', '--timeout=90s']);
      // graceful deletion: the pods go once their kubelets have stopped them
      const until = Date.now() + 90_000;
      let left = 'pods';
      while (left && Date.now() < until) {
        left = (await kubectl(sys, ['get', 'pods', '-l', 'app=demo', '-o', 'name'])).stdout.trim();
        if (left) await new Promise((r) => setTimeout(r, 500));
      }
      expect(left).toBe('');
      const restoredAt = Date.now();
      const rec = await runJob(sys, { kind: 'restore-embedded', snapshotId: snap.id }, name());
      expect(rec.status, rec.error).toBe('succeeded');
      const pods = await waitDemo(sys, 'after restore');
      await new Promise((r) => setTimeout(r, 3000));
      const exited = watch.proc.exitCode !== null || watch.proc.signalCode !== null;
      watch.proc.kill('SIGTERM');
      await watch.exit;
      const after = watch.lines.filter((l) => Number(l.split(' ')[0]) > restoredAt);
      console.log(
        `[matrix ${minor}] watch during restore: ${exited ? 'ended (the client must re-list)' : 'went on'}; events after the restore:\n  ${after.join('\n  ') || '(none)'}`,
      );
      // whatever the watch did, every pod it announced as ADDED/MODIFIED after the restore exists
      // now (the revision was bumped, so no event may come from the wiped, older history)
      const announced = after.map((l) => /(ADDED|MODIFIED)\s+pod\/(\S+)/.exec(l)?.[2]).filter((x): x is string => !!x);
      for (const p of announced) expect(pods, `watch announced ${p}`).toContain(p);
      const h = await health();
      expect(h.mode).toBe('embedded-up');
      expect(h.members).toHaveLength(sys.lab.masters.length);
    });

    it('switches to an external etcd and back: kubectl sees the Deployment and its pods each time', async () => {
      const s1 = await addLabNode(sys, 's1');
      const prov = await runJob(sys, { kind: 'provision-external', nodeIds: [s1] });
      expect(prov.status, prov.error).toBe('succeeded');
      const toExt = await runJob(sys, { kind: 'switch', direction: 'to-external' }, name());
      expect(toExt.status, toExt.error).toBe('succeeded');
      expect((await health()).mode).toBe('external-up');
      expect(await labReadyz(sys.lab)).toBe(true);
      await waitDemo(sys, 'on external');
      const back = await runJob(sys, { kind: 'switch', direction: 'to-embedded' }, name());
      expect(back.status, back.error).toBe('succeeded');
      expect((await health()).mode).toBe('embedded-up');
      await waitDemo(sys, 'back on embedded');
      expect(await labReadyz(sys.lab)).toBe(true);
    });
  });
}
