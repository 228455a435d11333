// `npm run bench:snapshot` (not a timed test; prints figures). Needs root (it builds a lab).
//
// 1. Snapshot: ~200 MB of etcd data on a 3-master lab. The app's `takeSnapshot` both ways — streamed
//    (etcd's snapshot RPC through an SSH tunnel, the default) and save + SFTP (the fallback: snapshot
//    save on the master + SFTP download hashing on the way) — against the baseline a person would
//    type: `etcdctl snapshot save` on the master over OpenSSH, then `scp` (lab key, strict host
//    keys). Aim (issue 12): streamed / baseline ≤ 0.8.
// 2. Restore fan-out to the 3 masters: the app's restore job (upload + verify + restore per master
//    in parallel; the `upload` and `restore` steps timed from the job record) against the same
//    primitives run for one master after the other. Aim: sequential / app ≥ 2.
//
// Every run is bounded (the whole bench gives up after 20 minutes); the lab is torn down on exit,
// on failure and on Ctrl-C. Env: KES_BENCH_MB (default 200), KES_BENCH_ROUNDS (default 3),
// KES_BENCH_PREFIX (lab prefix, default kf3).
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { join, posix } from 'node:path';
import { promisify } from 'node:util';
import type { JobRecord } from '../../src/main/jobs/types';
import { prepareRestore } from '../../src/main/etcd/restore-embedded';
import { takeSnapshot } from '../../src/main/etcd/snapshot';
import { transferDir, type EtcdDeps } from '../../src/main/etcd/deps';
import { initialize, runJob, startSystem, type System } from '../system/support';
import { runBench, secs, timed } from './support';

const run = promisify(execFile);
const MB = Number(process.env.KES_BENCH_MB ?? 200);
const ROUNDS = Number(process.env.KES_BENCH_ROUNDS ?? 3);
const VALUE_KB = 100;
const ETCDCTL =
  'ETCDCTL_API=3 etcdctl --endpoints=https://127.0.0.1:2379 --cacert=/etc/kubernetes/pki/etcd/ca.crt --cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt --key=/etc/kubernetes/pki/etcd/healthcheck-client.key';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const mbps = (bytes: number, ms: number) => `${(bytes / 1048576 / (ms / 1000)).toFixed(0)} MB/s`;

async function fill(sys: System): Promise<void> {
  const n = Math.ceil((MB * 1024) / VALUE_KB);
  const BATCH = 256; // each lab exec is bounded to 60 s: fill in batches
  const [ms] = await timed(async () => {
    await sys.lab.exec(
      'm1',
      `head -c ${Math.floor((VALUE_KB * 1024 * 3) / 4)} /dev/urandom | base64 -w0 > /tmp/kf-value`,
    );
    for (let from = 1; from <= n; from += BATCH)
      await sys.lab.exec(
        'm1',
        `seq ${from} ${Math.min(n, from + BATCH - 1)} | xargs -P 8 -I{} sh -c "${ETCDCTL} put /kf/bench/{} < /tmp/kf-value > /dev/null"`,
      );
    await sys.lab.exec('m1', 'rm -f /tmp/kf-value');
  });
  console.log(`filled etcd with ${n} values of ${VALUE_KB} KB in ${secs(ms)}`);
}

async function main(): Promise<void> {
  const sys = await startSystem({
    prefix: process.env.KES_BENCH_PREFIX ?? 'kf3',
    masters: 3,
    lb: 'none',
    varQuotaMB: 4096,
  });
  const local = await fs.mkdtemp(join(sys.dataDir, 'bench-'));
  try {
    await initialize(sys);
    const svc = sys.svc;
    const deps: EtcdDeps = {
      ops: svc.ops,
      inventory: svc.inventory,
      pool: svc.pool,
      snapshots: svc.snapshots,
      states: svc.stateVault,
      targetOf: svc.targetOf,
    };
    const m1 = svc.inventory.get(sys.clusterId).nodes.find((n) => n.name === 'm1')!;
    await fill(sys);

    // ---- 1. snapshot: app vs etcdctl + scp ------------------------------------------------
    const app: number[] = [];
    const saved: number[] = [];
    const base: number[] = [];
    let size = 0;
    let lastId = '';
    const remoteBase = '/var/lib/kf-bench/base.db';
    await sys.lab.exec('m1', 'mkdir -p /var/lib/kf-bench');
    const appRun = async (i: number, via: 'stream' | 'save') => {
      // app (warm pool, as in the app: connections stay open)
      // phases, streamed: stream until the last byte | desktop status + vault commit;
      // saved: save on the node | SFTP download hashing (snapshot status beside it) | commit
      const t0 = performance.now();
      let saveEnd = 0;
      let downloadEnd = 0;
      const [a, meta] = await timed(() =>
        takeSnapshot(deps, sys.clusterId, {
          note: `bench ${i}`,
          nodeId: m1.id,
          via,
          log: (s, text) => {
            if (s === 'cmd' && text.includes('snapshot-status.sh')) saveEnd = performance.now();
          },
          onProgress: (d, t) => {
            if (d === t) downloadEnd = performance.now();
          },
        }),
      );
      const phases =
        via === 'stream'
          ? `stream ${secs(downloadEnd - t0)}, status on the desktop + commit ${secs(t0 + a - downloadEnd)}`
          : `save ${secs(saveEnd - t0)}, download ∥ status ${secs(downloadEnd - saveEnd)}, status wait + commit ${secs(t0 + a - downloadEnd)}`;
      size = meta.size;
      if (lastId) await svc.snapshots.remove(lastId);
      lastId = meta.id;
      return [a, phases] as const;
    };
    for (let i = 0; i < ROUNDS; i++) {
      const [a, aPhases] = await appRun(i, 'stream');
      app.push(a);
      const [sv, sPhases] = await appRun(i, 'save');
      saved.push(sv);
      // baseline: what a person types
      const dest = join(local, 'base.db');
      let saveMs = 0;
      const [b] = await timed(async () => {
        const t1 = performance.now();
        await run('ssh', [...sys.lab.sshArgs('m1'), `${ETCDCTL} snapshot save ${remoteBase} > /dev/null`], {
          timeout: 300_000,
        });
        saveMs = performance.now() - t1;
        const args = sys.lab.sshArgs('m1');
        const userHost = args.pop()!;
        await run('scp', ['-q', ...args, `${userHost}:${remoteBase}`, dest], { timeout: 300_000 });
      });
      base.push(b);
      await fs.rm(dest, { force: true });
      await sys.lab.exec('m1', `rm -f ${remoteBase}`);
      console.log(
        `  round ${i + 1}: app streamed ${secs(a)} (${aPhases}); app save + SFTP ${secs(sv)} (${sPhases}); ` +
          `etcdctl + scp ${secs(b)} (save ${secs(saveMs)}, scp ${secs(b - saveMs)})`,
      );
    }
    const appMs = median(app);
    const savedMs = median(saved);
    const baseMs = median(base);
    console.log(
      `snapshot of ${(size / 1048576).toFixed(0)} MB (median of ${ROUNDS}): app streamed ${secs(appMs)} (${mbps(size, appMs)}), ` +
        `app save + SFTP ${secs(savedMs)} (${mbps(size, savedMs)}), ` +
        `etcdctl snapshot save + scp ${secs(baseMs)} (${mbps(size, baseMs)}); ratio streamed/baseline ${(appMs / baseMs).toFixed(2)} (aim ≤ 0.8), ` +
        `save + SFTP/baseline ${(savedMs / baseMs).toFixed(2)}`,
    );

    // ---- 2. restore fan-out: the same primitives one master after the other, then the app's job --
    const snap = await svc.snapshots.get(lastId);
    const ctx = await prepareRestore(deps, sys.clusterId, snap.id);
    let seqUpload = 0;
    let seqRestore = 0;
    for (const m of ctx.members) {
      const [u, remote] = await timed(async () => {
        const { dir } = await transferDir(deps, sys.clusterId, m.node);
        const remote = posix.join(dir, `restore-${snap.id}.db`);
        const t = await svc.pool.upload(
          svc.targetOf(sys.clusterId, m.node.id),
          svc.snapshots.filePath(snap.id),
          remote,
        );
        if (t.sha256 !== snap.sha256) throw new Error(`upload to ${m.node.name} corrupted`);
        await svc.ops.run(sys.clusterId, m.node.id, 'snapshot-status.sh', [remote, snap.sha256]);
        return remote;
      });
      const target = `${m.newDataDir}-seq`;
      const [r] = await timed(() =>
        svc.ops.run(
          sys.clusterId,
          m.node.id,
          'restore-member.sh',
          [remote, snap.sha256, m.name, ctx.initialCluster, ctx.token, m.peerUrl, target],
          { timeoutMs: 600_000 },
        ),
      );
      seqUpload += u;
      seqRestore += r;
      await sys.lab.exec(m.node.name, `rm -rf ${target} ${remote}`);
      console.log(`  ${m.node.name} alone: upload + verify ${secs(u)}, restore ${secs(r)}`);
    }
    const rec = await runJob<JobRecord>(
      sys,
      { kind: 'restore-embedded', snapshotId: snap.id },
      sys.lab.state.clusterName,
    );
    if (rec.status !== 'succeeded') throw new Error(`restore job ${rec.status}: ${rec.error}`);
    const full = (await svc.jobs.get(rec.id))!;
    const span = (path: string) => {
      const s = full.steps.find((x) => x.path === path)!;
      return Date.parse(s.endedAt!) - Date.parse(s.startedAt!);
    };
    const appUpload = span('upload');
    const appRestore = span('restore');
    const seq = seqUpload + seqRestore;
    const par = appUpload + appRestore;
    console.log(
      `restore fan-out to 3 masters (upload + verify + restore): app in parallel ${secs(par)} ` +
        `(upload ${secs(appUpload)}, restore ${secs(appRestore)}), one after the other ${secs(seq)} ` +
        `(upload ${secs(seqUpload)}, restore ${secs(seqRestore)}); speed-up ${(seq / par).toFixed(2)}× (aim ≥ 2×)`,
    );
    console.log(
      `whole restore job (stop, restore, start, health gates): ${secs(Date.parse(full.endedAt!) - Date.parse(full.startedAt!))}`,
    );
  } finally {
    await sys.close();
  }
}

runBench(main);
