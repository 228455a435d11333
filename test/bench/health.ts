// `npm run bench:health` (not a timed test; prints figures). Needs root (it builds a lab).
//
// What one Health refresh costs on a big cluster: 5 masters (real kubeadm control planes, stacked
// etcd) and an external etcd of 5 members provisioned by the app on 5 more hosts. For each refresh
// (`cluster.health`, as the Health view asks it) it counts the remote commands the app ran
// (SshPool.stats().execs: one per SSH exec; a batch of scripts is one) and times it. Aim (issue
// 12): at most one round trip per node — 10 here. Rounds: KES_BENCH_ROUNDS (default 5).
//
// Bounded: gives up after 20 minutes; the lab is torn down on exit, on failure and on Ctrl-C.
// Env: KES_BENCH_PREFIX (lab prefix, default kh1).
import type { HealthReport } from '../../src/shared/health';
import { addLabNode, initialize, runJob, startSystem } from '../system/support';
import { benchRounds, Results, runBench, secs, stats, timed } from './support';

const ROUNDS = benchRounds(3, 5);
const MASTERS = 5;
const EXTERNALS = 5;

async function main(): Promise<void> {
  const results = new Results('health');
  const [upMs, sys] = await timed(() =>
    startSystem({
      prefix: process.env.KES_BENCH_PREFIX ?? 'kh1',
      masters: MASTERS,
      lb: 'haproxy',
      spares: EXTERNALS,
    }),
  );
  console.log(`lab up (${MASTERS} masters, haproxy, ${EXTERNALS} spares) in ${secs(upMs)}`);
  try {
    await initialize(sys);
    const ids: string[] = [];
    for (let i = 1; i <= EXTERNALS; i++) ids.push(await addLabNode(sys, `s${i}`));
    const [provMs, prov] = await timed(() => runJob(sys, { kind: 'provision-external', nodeIds: ids }));
    if (prov.status !== 'succeeded') throw new Error(`provision-external ${prov.status}: ${prov.error}`);
    console.log(`external etcd of ${EXTERNALS} members provisioned in ${secs(provMs)}`);
    const nodes = sys.svc.inventory.get(sys.clusterId).nodes.length;

    const ms: number[] = [];
    const execs: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const before = sys.svc.pool.stats().execs;
      const [t, h] = await timed(() => sys.call<HealthReport>('cluster.health', { clusterId: sys.clusterId }));
      const n = sys.svc.pool.stats().execs - before;
      ms.push(t);
      execs.push(n);
      const units = h.services.filter((s) => s.unit === 'etcd' && s.state === 'active').length;
      console.log(
        `  refresh ${i + 1}: ${secs(t)}, ${n} remote commands for ${nodes} nodes; mode ${h.mode}, ` +
          `${h.apiservers.filter((a) => a.ready).length}/${MASTERS} apiservers ready, ${h.members.length} etcd members, ` +
          `${units}/${EXTERNALS} external etcd units active${h.errors.length ? `; errors: ${h.errors.join(' | ')}` : ''}`,
      );
    }
    const t = stats(ms);
    const c = stats(execs);
    console.log(
      `health refresh, ${MASTERS} masters + ${EXTERNALS} external members (${nodes} nodes), ${ROUNDS} rounds: ` +
        `wall time min ${secs(t.min)} / median ${secs(t.median)} / max ${secs(t.max)}; ` +
        `remote commands min ${c.min} / median ${c.median} / max ${c.max}`,
    );
    results.add({
      name: `Health refresh, ${MASTERS} masters + ${EXTERNALS} external members: remote commands (most of ${ROUNDS})`,
      value: c.max,
      unit: 'commands',
      aim: `≤ ${nodes} (one per node)`,
      met: c.max <= nodes,
      detail: `${nodes} nodes; min ${c.min}, median ${c.median}`,
    });
    results.add({
      name: `Health refresh, ${MASTERS} masters + ${EXTERNALS} external members: wall time (median of ${ROUNDS})`,
      value: t.median / 1000,
      unit: 's',
      detail: `min ${secs(t.min)}, max ${secs(t.max)}`,
    });
    await results.write();
  } finally {
    await sys.close();
  }
}

runBench(main);
