// Disaster drill: delete every workload (pods) in the chosen namespaces so users can rehearse a
// recovery. Guarded: typed cluster name, and a fresh snapshot is taken first — the drill refuses
// to delete anything if that snapshot fails.
import type { JobDef } from '../jobs/types';
import type { SnapshotMeta } from '../vault/snapshots';
import { EtcdOpError, masterNodes, type EtcdDeps } from './deps';
import { takeSnapshot } from './snapshot';

export interface DrillCtx {
  deps: EtcdDeps;
  clusterId: string;
  namespaces: string[];
  snapshot?: SnapshotMeta;
  deleted: string[];
}

const NS_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export function drillJob(ctx: DrillCtx, clusterName: string): JobDef<DrillCtx> {
  const { deps, clusterId } = ctx;
  for (const ns of ctx.namespaces)
    if (!NS_RE.test(ns) || ns.length > 63) throw new EtcdOpError('INVALID_INPUT', `Not a namespace name: ${ns}`);
  if (!ctx.namespaces.length) throw new EtcdOpError('INVALID_INPUT', 'Choose at least one namespace');
  const readyMaster = async () => {
    for (const n of masterNodes(deps, clusterId)) {
      if ((await deps.ops.kubeGet(clusterId, n.id, '/readyz').catch(() => ({ status: 0 }))).status === 200) return n;
    }
    throw new EtcdOpError('API_DOWN', 'No apiserver is ready: the drill needs the Kubernetes API');
  };
  return {
    kind: 'drill',
    title: `Disaster drill: delete all pods in ${ctx.namespaces.join(', ')}`,
    destructive: true,
    clusterId,
    clusterName,
    steps: [
      {
        id: 'snapshot',
        title: 'Take a fresh snapshot first',
        run: async (c, s) => {
          c.snapshot = await takeSnapshot(deps, clusterId, {
            note: `before disaster drill (${c.namespaces.join(', ')})`,
            log: s.log,
            signal: s.signal,
            onProgress: (d, t) => s.progress(t ? d / t : 0),
          });
        },
      },
      ...ctx.namespaces.map((ns) => ({
        id: `wipe-${ns}`,
        title: `Delete every pod in namespace ${ns}`,
        plan: () => [
          {
            kind: 'command' as const,
            node: 'a ready master',
            command: `DELETE /api/v1/namespaces/${ns}/pods/<each pod>`,
          },
        ],
        run: async (c: DrillCtx, s: { log: (st: 'info' | 'error', t: string) => void }) => {
          const m = await readyMaster();
          const list = await deps.ops.kubeGet(clusterId, m.id, `/api/v1/namespaces/${ns}/pods`);
          if (list.status !== 200) throw new EtcdOpError('API_ERROR', `listing pods in ${ns}: HTTP ${list.status}`);
          const names = ((JSON.parse(list.body) as { items?: { metadata: { name: string } }[] }).items ?? []).map(
            (p) => p.metadata.name,
          );
          for (const name of names) {
            const r = await deps.ops.kubeApi(
              clusterId,
              m.id,
              'DELETE',
              `/api/v1/namespaces/${ns}/pods/${encodeURIComponent(name)}`,
            );
            if (r.status !== 200 && r.status !== 202 && r.status !== 404)
              throw new EtcdOpError('API_ERROR', `deleting ${ns}/${name}: HTTP ${r.status}`);
            c.deleted.push(`${ns}/${name}`);
            s.log('info', `deleted pod ${ns}/${name}`);
          }
          if (!names.length) s.log('info', `no pods in ${ns}`);
          else await waitPodsGone(() => deps.ops.kubeGet(clusterId, m.id, `/api/v1/namespaces/${ns}/pods`), ns, s.log);
        },
      })),
    ],
    describeStop: (c) =>
      c.snapshot
        ? `Deleted ${c.deleted.length} pod(s). Snapshot ${c.snapshot.id} taken before the drill can restore them.`
        : 'The snapshot failed, so nothing was deleted.',
  };
}

/**
 * A real apiserver deletes pods gracefully: they stay (terminating) until their kubelet has stopped
 * them, up to their grace period (30 s by default). The drill is done when they are really gone, so
 * a snapshot or restore that follows sees the cluster without them.
 */
async function waitPodsGone(
  list: () => Promise<{ status: number; body: string }>,
  ns: string,
  log: (st: 'info' | 'error', t: string) => void,
  timeoutMs = 90_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let said = false;
  for (;;) {
    const r = await list();
    const left = r.status === 200 ? ((JSON.parse(r.body) as { items?: unknown[] }).items ?? []).length : -1;
    if (left === 0) {
      if (said) log('info', `every pod in ${ns} is gone`);
      return;
    }
    if (Date.now() > deadline)
      throw new EtcdOpError(
        'API_ERROR',
        `${left < 0 ? 'could not list pods' : `${left} pod(s) still terminating`} in ${ns} after ${timeoutMs / 1000} s: their kubelets have not stopped them`,
      );
    if (!said && left > 0) {
      log('info', `waiting for ${left} terminating pod(s) in ${ns} to be stopped by their kubelets`);
      said = true;
    }
    await new Promise((res) => setTimeout(res, 500));
  }
}
