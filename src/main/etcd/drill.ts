// Disaster drill: delete workloads and their configuration (Deployments, DaemonSets, StatefulSets,
// pods, ConfigMaps, Secrets, namespaced RBAC — as chosen) in the chosen namespaces, or in every
// namespace but kube-* (the scope is resolved when planned and shown in the plan), so users can
// rehearse a recovery. Guarded: typed cluster name, and a fresh snapshot is taken first — the drill
// refuses to delete anything if that snapshot fails.
import type { DrillKind } from '@shared/jobs';
import type { ClusterNode } from '@shared/domain';
import type { JobDef } from '../jobs/types';
import type { SnapshotMeta } from '../vault/snapshots';
import { EtcdOpError, masterNodes, type EtcdDeps } from './deps';
import { takeSnapshot } from './snapshot';

export interface DrillCtx {
  deps: EtcdDeps;
  clusterId: string;
  namespaces: string[];
  kinds: DrillKind[];
  /** The scope was "every namespace but kube-*" (resolved to `namespaces` when planned). */
  allNamespaces: boolean;
  snapshot?: SnapshotMeta;
  deleted: string[];
}

const NS_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
/** Namespaces a drill over "every namespace" leaves alone: the cluster's own (kube-system, CNI in kube-flannel, …). */
const SYSTEM_NS = /^kube-/;

/** Per kind, its collection path(s) in a namespace, in deletion order (controllers before pods). */
const RESOURCES: Record<DrillKind, { label: string; paths: string[] }> = {
  deployments: { label: 'Deployments', paths: ['/apis/apps/v1/namespaces/NS/deployments'] },
  daemonsets: { label: 'DaemonSets', paths: ['/apis/apps/v1/namespaces/NS/daemonsets'] },
  statefulsets: { label: 'StatefulSets', paths: ['/apis/apps/v1/namespaces/NS/statefulsets'] },
  pods: { label: 'pods', paths: ['/api/v1/namespaces/NS/pods'] },
  configmaps: { label: 'ConfigMaps', paths: ['/api/v1/namespaces/NS/configmaps'] },
  secrets: { label: 'Secrets', paths: ['/api/v1/namespaces/NS/secrets'] },
  rbac: {
    label: 'Roles and RoleBindings',
    paths: [
      '/apis/rbac.authorization.k8s.io/v1/namespaces/NS/rolebindings',
      '/apis/rbac.authorization.k8s.io/v1/namespaces/NS/roles',
    ],
  },
};
const ORDER: DrillKind[] = ['deployments', 'daemonsets', 'statefulsets', 'pods', 'configmaps', 'secrets', 'rbac'];

async function readyMaster(deps: EtcdDeps, clusterId: string): Promise<ClusterNode> {
  for (const n of masterNodes(deps, clusterId)) {
    if ((await deps.ops.kubeGet(clusterId, n.id, '/readyz').catch(() => ({ status: 0 }))).status === 200) return n;
  }
  throw new EtcdOpError('API_DOWN', 'No apiserver is ready: the drill needs the Kubernetes API');
}

/** Validate the request and resolve "every namespace but kube-*" through the API (shown in the plan). */
export async function prepareDrill(
  deps: EtcdDeps,
  clusterId: string,
  req: { namespaces: string[]; allNamespaces: boolean; kinds: DrillKind[] },
): Promise<DrillCtx> {
  let namespaces = [...new Set(req.namespaces)];
  if (req.allNamespaces) {
    const m = await readyMaster(deps, clusterId);
    const r = await deps.ops.kubeGet(clusterId, m.id, '/api/v1/namespaces');
    if (r.status !== 200) throw new EtcdOpError('API_ERROR', `listing namespaces: HTTP ${r.status}`);
    namespaces = ((JSON.parse(r.body) as { items?: { metadata: { name: string } }[] }).items ?? [])
      .map((x) => x.metadata.name)
      .filter((n) => !SYSTEM_NS.test(n))
      .sort();
  }
  for (const ns of namespaces)
    if (!NS_RE.test(ns) || ns.length > 63) throw new EtcdOpError('INVALID_INPUT', `Not a namespace name: ${ns}`);
  if (!namespaces.length)
    throw new EtcdOpError(
      'INVALID_INPUT',
      req.allNamespaces ? 'The cluster has no namespace outside kube-*' : 'Choose at least one namespace',
    );
  const kinds = ORDER.filter((k) => req.kinds.includes(k));
  return { deps, clusterId, namespaces, kinds, allNamespaces: req.allNamespaces, deleted: [] };
}

export function drillJob(ctx: DrillCtx, clusterName: string): JobDef<DrillCtx> {
  const { deps, clusterId } = ctx;
  const what = ctx.kinds.map((k) => RESOURCES[k].label).join(', ');
  return {
    kind: 'drill',
    title: `Disaster drill: delete ${what} in ${ctx.allNamespaces ? 'every namespace but kube-*' : ctx.namespaces.join(', ')}`,
    destructive: true,
    clusterId,
    clusterName,
    steps: [
      {
        id: 'snapshot',
        title: 'Take a fresh snapshot first',
        plan: () => [
          {
            kind: 'note',
            text: `Scope: ${ctx.namespaces.join(', ')}${ctx.allNamespaces ? ' (every namespace but kube-*, as the cluster has them now)' : ''}. Deleted in each: ${what}. Nothing outside these namespaces and nothing cluster-wide (nodes, ClusterRoles, CRDs) is touched; the snapshot taken first brings it all back.`,
          },
        ],
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
        title: `Delete ${what} in namespace ${ns}`,
        plan: () =>
          ctx.kinds.flatMap((k) =>
            RESOURCES[k].paths.map((p) => ({
              kind: 'command' as const,
              node: 'a ready master',
              command: `DELETE ${p.replace('NS', ns)}?propagationPolicy=Background`,
            })),
          ),
        run: async (c: DrillCtx, s: { log: (st: 'info' | 'error', t: string) => void }) => {
          const m = await readyMaster(deps, clusterId);
          const pods = new Set<string>();
          for (const k of c.kinds)
            for (const p of RESOURCES[k].paths) {
              const path = p.replace('NS', ns);
              const kindName = path.slice(path.lastIndexOf('/') + 1);
              const names = await listNames(deps, clusterId, m, path);
              if (!names.length) {
                s.log('info', `no ${kindName} in ${ns}`);
                continue;
              }
              // One call per collection; Background: owned ReplicaSets and pods are collected after.
              const r = await deps.ops.kubeApi(clusterId, m.id, 'DELETE', `${path}?propagationPolicy=Background`);
              if (r.status !== 200 && r.status !== 202)
                throw new EtcdOpError('API_ERROR', `deleting ${kindName} in ${ns}: HTTP ${r.status}`);
              c.deleted.push(...names.map((n) => `${kindName} ${ns}/${n}`));
              if (k === 'pods') for (const n of names) pods.add(n);
              s.log('info', `deleted ${names.length} ${kindName} in ${ns}: ${names.join(', ')}`);
            }
          if (pods.size)
            await waitPodsGone(
              () => deps.ops.kubeGet(clusterId, m.id, `/api/v1/namespaces/${ns}/pods`),
              ns,
              pods,
              s.log,
            );
        },
      })),
    ],
    describeStop: (c) =>
      c.snapshot
        ? `Deleted ${c.deleted.length} object(s). Snapshot ${c.snapshot.id} taken before the drill can restore them.`
        : 'The snapshot failed, so nothing was deleted.',
  };
}

async function listNames(deps: EtcdDeps, clusterId: string, m: ClusterNode, path: string): Promise<string[]> {
  const list = await deps.ops.kubeGet(clusterId, m.id, path);
  if (list.status !== 200) throw new EtcdOpError('API_ERROR', `listing ${path}: HTTP ${list.status}`);
  return ((JSON.parse(list.body) as { items?: { metadata: { name: string } }[] }).items ?? []).map(
    (x) => x.metadata.name,
  );
}

/**
 * A real apiserver deletes pods gracefully: they stay (terminating) until their kubelet has stopped
 * them, up to their grace period (30 s by default). The drill is done when they are really gone, so
 * a snapshot or restore that follows sees the cluster without them. Pods a controller outside the
 * drill's kinds recreates (a Deployment kept) come back: the wait then names them.
 */
async function waitPodsGone(
  list: () => Promise<{ status: number; body: string }>,
  ns: string,
  deleted: Set<string>,
  log: (st: 'info' | 'error', t: string) => void,
  timeoutMs = 90_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let said = false;
  for (;;) {
    const r = await list();
    // Only the pods deleted here: replacements made by a controller the drill kept have new names.
    const left =
      r.status === 200
        ? ((JSON.parse(r.body) as { items?: { metadata: { name: string } }[] }).items ?? []).filter((p) =>
            deleted.has(p.metadata.name),
          ).length
        : -1;
    if (left === 0) {
      if (said) log('info', `every deleted pod in ${ns} is gone`);
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
