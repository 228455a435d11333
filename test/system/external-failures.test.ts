// Intent: the external-etcd features fail safely. An external node that does not answer makes
// provisioning refuse before anything is written anywhere (no files, no unit, no certs, no etcd
// listening); an external etcd that cannot become healthy after the restore inside a switch rolls
// the whole switch back (apiservers still on the stacked etcd, cluster serving); removing a member
// from an external cluster that has lost quorum is refused quickly with the chicken-and-egg
// explained, and the offered way out (restore the latest snapshot onto the external cluster) works.
// One lab (3 masters behind haproxy + 2 spares) for the file; the tests run in order.
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HealthReport } from '../../src/shared/health';
import type { JobRecord } from '../../src/main/jobs/types';
import type { ScriptInfo } from '../../src/shared/domain';
import type { SnapshotMeta } from '../../src/shared/vault';
import {
  addLabNode,
  createDemoPod,
  eventually,
  initialize,
  labReadyz,
  podStatus,
  runJob,
  startSystem,
  type System,
} from './support';

let sys: System;
const ids: Record<string, string> = {};
const MASTERS = ['m1', 'm2', 'm3'];
const EXTERNAL = ['s1', 's2', 'lb'];
const name = () => sys.lab.state.clusterName;
const health = () => sys.call<HealthReport>('cluster.health', { clusterId: sys.clusterId });
const stepStatus = (rec: JobRecord, path: string) => rec.steps.find((s) => s.path === path)?.status;
const log = (msg: string) => console.log(`[kg] ${msg}`);

const podReadable = async (podName = 'demo-nginx') => (await podStatus(sys.lab, podName)) === 200;

/**
 * What a node carries of an external etcd member: our unit, certs, processes, listeners, and the
 * content of /etc/default/etcd (Debian's etcd-server package ships one, so only a change counts).
 */
async function etcdTraces(host: string): Promise<string> {
  const r = await sys.lab.exec(
    host,
    `ls -d /etc/systemd/system/etcd.service /etc/etcd/pki/* 2>/dev/null | sed 's/^/file: /'
sha256sum /etc/default/etcd 2>/dev/null | sed 's/^/default: /'
pgrep -x etcd | sed 's/^/etcd pid: /'
ss -Hltn '( sport = :2379 or sport = :2380 )' | sed 's/^/listening: /'
true`,
  );
  return r.stdout.trim();
}

/** --etcd-servers of every master's kube-apiserver.yaml (live manifest, not a parked copy). */
async function etcdServers(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const m of MASTERS) {
    const text = await sys.lab.readFile(m, '/etc/kubernetes/manifests/kube-apiserver.yaml');
    out[m] = /--etcd-servers=(\S+)/.exec(text)?.[1] ?? '(none)';
  }
  return out;
}

/** Wait (bounded) for a health report that satisfies `ok`, then return the last one. */
async function healthWhere(ok: (h: HealthReport) => boolean, waitMs = 60_000): Promise<HealthReport> {
  let h = await health();
  await eventually(async () => ok((h = await health())), waitMs, 1500);
  return h;
}

const allReachable = (h: HealthReport, names: string[]) =>
  h.members.length === names.length &&
  h.members.every((m) => m.reachable) &&
  h.members.filter((m) => m.isLeader).length === 1 &&
  [...h.members.map((m) => m.name)].sort().join() === [...names].sort().join();

/**
 * Run `switch to-external` with the user's copy of restore-member.sh changed (lines inserted before
 * `anchor`) and a short gate; the script is reset afterwards whatever happens. Checks what every
 * failed switch must show: the fault ran, the job failed in the restore-external step before any
 * stacked member was retired or apiserver rewired, and the automatic rollback succeeded.
 */
async function failedSwitch(anchor: string, inject: string[]): Promise<JobRecord> {
  const script = join(sys.svc.scriptsDir, 'restore-member.sh');
  const original = await fs.readFile(script, 'utf8');
  expect(original).toContain(anchor);
  const text = ['# injected by external-failures.test.ts', ...inject, ''].join('\n');
  await fs.writeFile(script, original.replace(anchor, `${text}${anchor}`));
  sys.svc.etcd.gateTimeoutMs = 30_000;
  let rec!: JobRecord;
  const t0 = Date.now();
  try {
    rec = await runJob<JobRecord>(sys, { kind: 'switch', direction: 'to-external' }, name());
  } finally {
    sys.svc.etcd.gateTimeoutMs = 180_000;
    const reset = await sys.call<ScriptInfo>('scripts.reset', { name: 'restore-member.sh' });
    expect(reset.modified).toBe(false);
  }
  expect(await fs.readFile(script, 'utf8')).toBe(original);
  log(`switch failed after ${((Date.now() - t0) / 1000).toFixed(1)} s: ${rec.error}`);
  log(`outcome: ${rec.outcome}`);
  for (const h of ['s1', 's2'])
    expect(rec.log.some((l) => l.text.includes(`kg-fault:`) && l.text.includes(h))).toBe(true);
  expect(rec.log.some((l) => l.text.includes('kg-fault') && /\blb\b/.test(l.text))).toBe(false);
  expect(rec.status).toBe('failed');
  expect(stepStatus(rec, 'restore-external')).toBe('failed');
  for (const p of ['retire-stacked', 'rewire', 'refresh']) expect(stepStatus(rec, p), p).not.toBe('done');
  expect(rec.rollback).toEqual({ status: 'succeeded' });
  expect(stepStatus(rec, 'rollback')).toBe('done');
  expect(rec.outcome).toMatch(/automatic rollback brought the cluster back/);
  expect(rec.metrics?.apiserverUnavailableMs).toBeUndefined();
  return rec;
}

/** After a rolled-back switch: on the stacked etcd, every apiserver on it, serving, externals stopped. */
async function expectStillEmbedded(): Promise<void> {
  const servers = await etcdServers();
  for (const m of MASTERS) expect(servers[m], m).toBe('https://127.0.0.1:2379');
  const h = await healthWhere(
    (x) => x.mode === 'embedded-up' && allReachable(x, MASTERS) && x.apiservers.every((a) => a.ready),
  );
  expect(h.mode).toBe('embedded-up');
  expect(allReachable(h, MASTERS), JSON.stringify(h.members)).toBe(true);
  expect(h.apiservers.every((a) => a.ready)).toBe(true);
  expect(await eventually(() => labReadyz(sys.lab), 30_000)).toBe(true);
  expect(await podReadable()).toBe(true);
  const parked = await sys.lab.exec('m1', 'ls -A /etc/kubernetes/kes-parked 2>/dev/null || true');
  expect(parked.stdout.trim()).toBe('');
  for (const n of EXTERNAL) {
    const st = await sys.lab.ssh(n, 'systemctl is-active etcd', { allowFail: true });
    expect(st.stdout.trim(), n).not.toBe('active');
  }
}

beforeAll(async () => {
  sys = await startSystem({ prefix: 'kg1', masters: 3, lb: 'haproxy', spares: 2 });
  const f = await initialize(sys);
  expect(f.mode).toBe('embedded-up');
  // Notice a dead SSH link in ~3 s rather than 45 s.
  await sys.call('settings.set', { keepaliveIntervalMs: 1000 });
  await sys.svc.pool.closeAll();
  for (const n of EXTERNAL) ids[n] = await addLabNode(sys, n, n === 'lb' ? ['lb'] : []);
  expect(await createDemoPod(sys.lab)).toBe(201);
}, 300_000);

afterAll(async () => {
  // Never leave the injected fault behind, whatever failed.
  await sys?.call('scripts.reset', { name: 'restore-member.sh' }).catch(() => undefined);
  await sys?.close();
}, 60_000);

describe('external etcd: failures', () => {
  it('refuses to provision when one chosen node is unreachable, before writing anything', async () => {
    const before: Record<string, string> = {};
    for (const h of ['s1', 'lb']) {
      before[h] = await etcdTraces(h);
      expect(before[h], h).not.toMatch(/^(file|etcd pid|listening):/m);
    }
    const rolesBefore = sys.svc.inventory.get(sys.clusterId).nodes.map((n) => `${n.name}:${n.roles.join('+')}`);
    await sys.lab.stopHost('s2');
    try {
      const t0 = Date.now();
      const err = await sys
        .call('jobs.plan', {
          clusterId: sys.clusterId,
          job: { kind: 'provision-external', nodeIds: [ids.s1, ids.s2, ids.lb] },
        })
        .then(
          () => null,
          (e: Error & { code?: string }) => e,
        );
      log(`provision refused in ${Date.now() - t0} ms: ${err?.message}`);
      expect(err, 'planning must refuse').not.toBeNull();
      expect(err!.code).toBe('PREFLIGHT_FAILED');
      expect(err!.message).toMatch(/\bs2\b/);
      expect(err!.message).not.toMatch(/\bs1:|\blb:/); // only the unreachable node is blamed
      expect(err!.message).toMatch(/Nothing was changed/);
      expect(Date.now() - t0).toBeLessThan(60_000);
      // Nothing half-started on the nodes that did answer; the inventory is unchanged too.
      for (const h of ['s1', 'lb']) expect(await etcdTraces(h), h).toBe(before[h]);
      const jobs = await sys.call<{ kind: string }[]>('jobs.list', { clusterId: sys.clusterId }).catch(() => []);
      expect(jobs.filter((j) => j.kind === 'provision-external')).toHaveLength(0);
      expect(sys.svc.inventory.get(sys.clusterId).nodes.map((n) => `${n.name}:${n.roles.join('+')}`)).toEqual(
        rolesBefore,
      );
    } finally {
      await sys.lab.startHost('s2');
    }
    expect(await etcdTraces('s2')).not.toMatch(/^(file|etcd pid|listening):/m);
  });

  it('provisions once the node is back (configured, not started)', async () => {
    // Two members (the old tool's own example) are planned, with the quorum warning in the plan;
    // six are refused. Planning changes nothing.
    const two = await sys.call<{ plan: { items: { kind: string; text?: string }[] }[] }>('jobs.plan', {
      clusterId: sys.clusterId,
      job: { kind: 'provision-external', nodeIds: [ids.s1, ids.s2] },
    });
    expect(two.plan.flatMap((p) => p.items).map((i) => i.text ?? '')).toContainEqual(
      expect.stringMatching(/2 members need 2 for quorum: when any one of them stops, the external etcd stops serving/),
    );
    await expect(
      sys.call('jobs.plan', {
        clusterId: sys.clusterId,
        job: { kind: 'provision-external', nodeIds: [ids.s1, ids.s2, ids.lb, ids.s1, ids.s2, ids.lb] },
      }),
    ).rejects.toMatchObject({ code: 'INVALID_INPUT' });
    const prov = await runJob(sys, { kind: 'provision-external', nodeIds: [ids.s1, ids.s2, ids.lb] });
    expect(prov.status, prov.error).toBe('succeeded');
    for (const h of EXTERNAL) {
      const t = await etcdTraces(h);
      expect(t, h).toMatch(/file: \/etc\/systemd\/system\/etcd.service/);
      expect(t, h).not.toMatch(/^(etcd pid|listening):/m);
    }
    for (const m of MASTERS) expect((await etcdServers())[m], m).toBe('https://127.0.0.1:2379');
  });

  it('rolls a switch back when etcd cannot start on two external members after the restore', async () => {
    // The user's copy of restore-member.sh corrupts the restored db on s1 and s2: etcd exits at once.
    const rec = await failedSwitch('echo "KES_RESTORED=$dir"', [
      'case "$(hostname)" in s1|s2)',
      '  dd if=/dev/urandom of="$dir/member/snap/db" bs=4096 count=8 conv=notrunc status=none',
      '  echo "kg-fault: corrupted the restored db on $(hostname)" >&2 ;;',
      'esac',
    ]);
    // Usually the unit start on s1/s2 reports the crash; on a loaded machine etcd may die only
    // after the unit counted as started, and then the health gate reports it. Either is a failure
    // of this step, and what matters is the rollback below.
    expect(rec.error).toMatch(/^restore-external: .*(\bs[12]\b.*etcd|healthy|timed out)/i);
    await expectStillEmbedded();
  });

  it('rolls a switch back when the external etcd starts but never becomes healthy (health gate)', async () => {
    // s1 and s2 are restored with a token of their own: their cluster ids differ from lb's, so the
    // members run but refuse each other and never form a quorum; only the health gate can tell.
    const rec = await failedSwitch('rm -rf "$dir.part"', [
      'case "$(hostname)" in s1|s2)',
      '  token="$token-kg-$(hostname)"',
      '  echo "kg-fault: restoring $(hostname) with a token of its own" >&2 ;;',
      'esac',
    ]);
    expect(rec.error).toMatch(/^restore-external: .*(healthy|timed out)/i);
    await expectStillEmbedded();
  });

  it('refuses a member removal without quorum quickly, explains it, and the offered restore works', async () => {
    // An external cluster that serves the apiservers: switch to it (script reset, normal gates).
    const sw = await runJob<JobRecord>(sys, { kind: 'switch', direction: 'to-external' }, name());
    expect(sw.status, sw.error).toBe('succeeded');
    log(`switch to external: apiservers unavailable ${sw.metrics?.apiserverUnavailableMs} ms`);
    let h = await health();
    expect(h.mode).toBe('external-up');
    expect(allReachable(h, EXTERNAL), JSON.stringify(h.members)).toBe(true);

    // Two of three members go down: etcd stopped by its unit (a kill would be restarted).
    for (const n of ['s1', 's2']) await sys.lab.ssh(n, 'systemctl stop etcd');
    for (const n of ['s1', 's2']) expect((await etcdTraces(n)).includes('etcd pid')).toBe(false);

    const t0 = Date.now();
    const rm = await runJob<JobRecord>(sys, { kind: 'member-remove', nodeId: ids.s1 }, name());
    const elapsed = Date.now() - t0;
    log(`member-remove refused in ${(elapsed / 1000).toFixed(1)} s: ${rm.error}`);
    expect(rm.status).toBe('failed');
    expect(elapsed).toBeLessThan(45_000);
    expect(stepStatus(rm, 'check')).toBe('failed');
    expect(stepStatus(rm, 'remove')).not.toBe('done');
    expect(rm.error).toMatch(/quorum/i);
    expect(rm.error).toMatch(/chicken-and-egg/);
    expect(rm.error).toMatch(/restore the latest snapshot onto the external cluster/);
    expect(rm.rollback).toBeUndefined();
    // Nothing was removed: still three members in the list (s1 down but listed).
    // etcd 3.6 serves `member list` linearizably (it needs quorum) unless asked for a local read
    const local = sys.lab.state.etcdMinor === '3.6' ? ' --consistency=s' : '';
    const list = await sys.lab.exec(
      'm1',
      `ETCDCTL_API=3 etcdctl --endpoints=https://${sys.lab.host('lb').address}:2379 --cacert=/etc/kubernetes/pki/etcd/ca.crt --cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt --key=/etc/kubernetes/pki/etcd/healthcheck-client.key member list${local}`,
    );
    expect(list.stdout.trim().split('\n')).toHaveLength(3);

    // The offered way out: restore the latest snapshot onto the external cluster. It stops and
    // starts every member's unit, including the two that were stopped.
    const snaps = await sys.call<SnapshotMeta[]>('snapshots.list', { clusterId: sys.clusterId });
    const latest = [...snaps].sort((a, b) => Date.parse(b.createdAt) - Date.parse(a.createdAt))[0];
    const t1 = Date.now();
    const restore = await runJob<JobRecord>(sys, { kind: 'restore-external', snapshotId: latest.id }, name());
    log(`restore-external of ${latest.id.slice(0, 8)} took ${((Date.now() - t1) / 1000).toFixed(1)} s`);
    for (const st of restore.steps)
      if (st.startedAt && st.endedAt)
        log(`  ${st.path}: ${((Date.parse(st.endedAt) - Date.parse(st.startedAt)) / 1000).toFixed(1)} s`);
    expect(restore.status, restore.error).toBe('succeeded');
    h = await healthWhere((x) => allReachable(x, EXTERNAL) && x.apiservers.every((a) => a.ready));
    expect(allReachable(h, EXTERNAL), JSON.stringify(h.members)).toBe(true);
    expect(h.mode).toBe('external-up');
    for (const n of EXTERNAL)
      expect((await sys.lab.ssh(n, 'systemctl is-active etcd', { allowFail: true })).stdout.trim(), n).toBe('active');
    expect(await eventually(() => labReadyz(sys.lab), 60_000)).toBe(true);
    // The demo pod was in the snapshot the switch took, so it is still readable.
    expect(await eventually(() => podReadable(), 30_000)).toBe(true);
  });
});
