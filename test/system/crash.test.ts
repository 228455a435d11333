// Intent: a crash in the middle of a job (the app killed while the members restore) is told as
// it happened — the record on disk names the steps that were running, and the next start shows the
// job as interrupted; the health view names the manifests the job left parked (which master, which
// component) within seconds; and no snapshot copy stays in the app's transfer folder on any master
// after a successful restore, a failed one, or a crash followed by initialize — while anything in
// that folder the app did not name (other files, a folder, a symlink) is left alone.
// One lab (2 masters, no load balancer), prefix kc1.
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HealthReport } from '../../src/shared/health';
import type { JobRecord } from '../../src/main/jobs/types';
import type { SnapshotMeta } from '../../src/shared/vault';
import { initialize, reopenServices, runJob, spawnChildJob, startSystem, type System } from './support';

let sys: System;
let snap: SnapshotMeta;
let dir: string;
const MASTERS = ['m1', 'm2'];
/** A name the app would give (a crash leftover), planted before a job. */
const LEFTOVER = 'restore-0badc0de-0000-4000-8000-000000000001.db';
/** Things in the folder the app must never touch: another file, a folder, a symlink with an app name. */
const FOREIGN = ['notes.txt', 'put-0000', 'restore-00000000-0000-4000-8000-000000000000.db'];

const stepStatus = (rec: JobRecord, path: string) => rec.steps.find((s) => s.path === path)?.status;

async function transferFiles(m: string): Promise<string[]> {
  const r = await sys.lab.exec(m, `ls -A ${dir} 2>/dev/null || true`);
  return r.stdout.split('\n').filter(Boolean).sort();
}

/** Only the foreign things on m1 (and the symlink's target untouched), nothing on m2. */
async function expectOnlyForeign(when: string): Promise<void> {
  expect(await transferFiles('m1'), `m1 ${when}`).toEqual([...FOREIGN].sort());
  expect(await transferFiles('m2'), `m2 ${when}`).toEqual([]);
  const kept = await sys.lab.exec('m1', `cat ${dir}/notes.txt /root/kc-link-target; ls -A ${dir}/put-0000`);
  expect(kept.stdout).toBe('keep\nkeep-target\ninside\n');
}

async function editScript(name: string, edit: (text: string) => string): Promise<void> {
  const path = join(sys.svc.scriptsDir, name);
  await fs.writeFile(path, edit(await fs.readFile(path, 'utf8')));
}

beforeAll(async () => {
  sys = await startSystem({ prefix: 'kc1', masters: 2, lb: 'none' });
  await initialize(sys);
  dir = `/var/lib/kube-etcd-switch/transfer/${sys.lab.state.user}`;
  const rec = await runJob(sys, { kind: 'snapshot', note: 'crash tests' });
  expect(rec.status, rec.error).toBe('succeeded');
  [snap] = await sys.call<SnapshotMeta[]>('snapshots.list', { clusterId: sys.clusterId });
  await sys.lab.exec(
    'm1',
    `set -e
mkdir -p ${dir} && cd ${dir}
echo keep > notes.txt
mkdir put-0000 && echo inside > put-0000/inside
echo keep-target > /root/kc-link-target
ln -s /root/kc-link-target ${FOREIGN[2]}`,
  );
}, 240_000);

afterAll(async () => {
  await sys?.close();
});

describe('crash in the middle of a job, and the transfer folder after any outcome', () => {
  it('a successful restore leaves no snapshot copy on the masters (and a leftover is cleaned too)', async () => {
    await sys.lab.exec('m2', `mkdir -p ${dir} && head -c 4096 /dev/urandom > ${dir}/${LEFTOVER}`);
    const rec = await runJob<JobRecord>(
      sys,
      { kind: 'restore-embedded', snapshotId: snap.id },
      sys.lab.state.clusterName,
    );
    expect(rec.status, rec.error).toBe('succeeded');
    expect(rec.log.some((l) => l.path === 'tidy-up' && /transfer folder on m2/.test(l.text))).toBe(true);
    await expectOnlyForeign('after a successful restore');
  });

  it('a failed restore leaves no snapshot copy either', async () => {
    await sys.lab.exec('m2', `head -c 4096 /dev/urandom > ${dir}/${LEFTOVER}`);
    // The check of the uploaded copy fails on m2: the job stops before any member stops.
    await editScript('snapshot-status.sh', (t) =>
      t.replace(
        /\nset -euo pipefail\n/,
        '\nset -euo pipefail\n[ "$(hostname)" != m2 ] || { echo "kc-fault: refused" >&2; exit 7; }\n',
      ),
    );
    let rec: JobRecord;
    try {
      rec = await runJob<JobRecord>(sys, { kind: 'restore-embedded', snapshotId: snap.id }, sys.lab.state.clusterName);
    } finally {
      await sys.call('scripts.reset', { name: 'snapshot-status.sh' });
    }
    expect(rec.status).toBe('failed');
    expect(rec.error).toMatch(/^upload\/m2: .*kc-fault/);
    expect(stepStatus(rec, 'stop')).toBe('cancelled');
    await expectOnlyForeign('after a failed restore');
  });

  it('an app killed while the members restore: record names the running steps, job interrupted, health names what is parked, initialize cleans up', async () => {
    // Each member's restore waits a while first, so the app is surely killed in the middle of it.
    await editScript('restore-member.sh', (t) =>
      t.replace(/\nset -euo pipefail\n/, '\nset -euo pipefail\necho "kc-fault: slow restore" >&2; sleep 25\n'),
    );
    await sys.svc.close();
    const child = spawnChildJob(sys, snap.id);
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    let jobId = '';
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      jobId ||= /"id":"([0-9a-f-]{36})"/.exec(out)?.[1] ?? '';
      if (jobId) out = '';
    });
    const exited = new Promise<void>((r) => child.on('exit', () => r()));
    let onDisk: JobRecord | undefined;
    try {
      // Kill it (SIGKILL: no last word) once the record on disk says both members are restoring.
      const end = Date.now() + 150_000;
      for (;;) {
        if (child.exitCode !== null) throw new Error(`child exited (${child.exitCode}) early: ${stderr}`);
        if (Date.now() > end) throw new Error(`the restore never started: ${stderr}`);
        if (jobId) {
          const rec = JSON.parse(
            await fs.readFile(join(sys.dataDir, 'jobs', `${jobId}.json`), 'utf8').catch(() => 'null'),
          ) as JobRecord | null;
          if (rec && MASTERS.every((m) => stepStatus(rec, `restore/${m}`) === 'running')) break;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      child.kill('SIGKILL');
      await exited;
      // The record exactly as the killed app left it.
      onDisk = JSON.parse(await fs.readFile(join(sys.dataDir, 'jobs', `${jobId}.json`), 'utf8')) as JobRecord;
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
      await sys.call('scripts.reset', { name: 'restore-member.sh' }).catch(() => undefined);
    }
    expect(child.signalCode).toBe('SIGKILL');
    expect(onDisk!.status).toBe('running');
    for (const p of ['verify', 'preflight', 'save-state', 'upload', 'upload/m1', 'upload/m2', 'stop'])
      expect(stepStatus(onDisk!, p), p).toBe('done');
    for (const p of ['restore', 'restore/m1', 'restore/m2']) expect(stepStatus(onDisk!, p), p).toBe('running');
    for (const p of ['manifests', 'start-etcd', 'start-apiservers', 'cleanup'])
      expect(stepStatus(onDisk!, p), p).toBe('pending');

    // Next start: interrupted, with the steps that were running marked so.
    await reopenServices(sys);
    const rec = await sys.call<JobRecord>('jobs.get', { jobId });
    console.log(`[kc] interrupted outcome: ${rec.outcome}`);
    expect(rec.status).toBe('interrupted');
    for (const p of ['restore', 'restore/m1', 'restore/m2']) expect(stepStatus(rec, p), p).toBe('interrupted');
    expect(stepStatus(rec, 'stop')).toBe('done');
    expect(stepStatus(rec, 'manifests')).toBe('cancelled');
    expect(rec.outcome).toMatch(/In progress when it stopped: Restore member on m1; Restore member on m2\./);
    expect(rec.outcome).toMatch(/restore the state saved before this job/);
    const listed = await sys.call<{ id: string; status: string }[]>('jobs.list', { clusterId: sys.clusterId });
    expect(listed.find((j) => j.id === jobId)?.status).toBe('interrupted');

    // Health: quickly, and it names what the job left parked on which master.
    const t0 = Date.now();
    const h = await sys.call<HealthReport>('cluster.health', { clusterId: sys.clusterId });
    const took = Date.now() - t0;
    console.log(`[kc] health after the crash in ${took} ms: ${h.errors.join(' | ')}`);
    expect(took).toBeLessThan(15_000);
    expect(h.apiservers.map((a) => [a.name, a.ready, a.parked])).toEqual(MASTERS.map((m) => [m, false, true]));
    expect(h.apiservers.every((a) => a.etcdServers?.[0] === 'https://127.0.0.1:2379')).toBe(true);
    expect(
      h.parked
        .filter((p) => !p.expected)
        .map((p) => `${p.node} ${p.component}`)
        .sort(),
    ).toEqual(['m1 etcd', 'm1 kube-apiserver', 'm2 etcd', 'm2 kube-apiserver']);
    for (const m of MASTERS)
      expect(h.errors.join('\n')).toMatch(new RegExp(`^${m}: kube-apiserver and etcd stopped by the app`, 'm'));
    expect(h.errors.join('\n')).not.toMatch(/no kube-apiserver manifest/);
    expect(h.mode).toBe('down (configured for embedded)');

    // Nothing ran at the end of the killed job: its snapshot copies are still on the masters...
    for (const m of MASTERS) expect(await transferFiles(m), m).toContain(`restore-${snap.id}.db`);
    // ...until the cluster is initialized again.
    await initialize(sys);
    await expectOnlyForeign('after the crash and initialize');
  });
});
