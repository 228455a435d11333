// Workloads of chosen namespaces for the health view: Deployments, StatefulSets, DaemonSets
// (ready/desired) and pods (status, ready, node, restarts). The API paths are read in the same
// kube-api.sh call as kube-system's pods (one round trip per refresh); parsing is pure.
import type { PodHealth, WorkloadController, WorkloadPod, WorkloadsHealth } from '@shared/health';

export const DEFAULT_NAMESPACES = ['default'];

const KINDS = [
  { kind: 'Deployment', path: (ns: string) => `/apis/apps/v1/namespaces/${ns}/deployments` },
  { kind: 'StatefulSet', path: (ns: string) => `/apis/apps/v1/namespaces/${ns}/statefulsets` },
  { kind: 'DaemonSet', path: (ns: string) => `/apis/apps/v1/namespaces/${ns}/daemonsets` },
  { kind: 'Pod', path: (ns: string) => `/api/v1/namespaces/${ns}/pods` },
] as const;

/** The API paths to read for `namespaces`, in the order parseWorkloads expects their answers. */
export function workloadPaths(namespaces: readonly string[]): string[] {
  return namespaces.flatMap((ns) => KINDS.map((k) => k.path(ns)));
}

export interface PodJson {
  metadata: { name: string; namespace?: string; deletionTimestamp?: string };
  spec?: { nodeName?: string; containers?: unknown[] };
  status?: {
    phase?: string;
    containerStatuses?: { ready?: boolean; restartCount?: number; state?: { waiting?: { reason?: string } } }[];
  };
}

interface ControllerJson {
  metadata: { name: string; namespace?: string };
  spec?: { replicas?: number };
  status?: { readyReplicas?: number; desiredNumberScheduled?: number; numberReady?: number };
}

/**
 * One pod as `kubectl get pods` shows it: Terminating while deleted, a container's waiting reason
 * (CrashLoopBackOff, ImagePullBackOff…) over the phase, ready containers and restarts.
 */
export function podRow(p: PodJson): PodHealth {
  const cs = p.status?.containerStatuses ?? [];
  const waiting = cs.map((c) => c.state?.waiting?.reason).find((r) => !!r && r !== 'ContainerCreating');
  return {
    name: p.metadata.name,
    node: p.spec?.nodeName ?? null,
    phase: p.metadata.deletionTimestamp ? 'Terminating' : (waiting ?? p.status?.phase ?? 'Unknown'),
    ready: `${cs.filter((c) => c.ready).length}/${cs.length || p.spec?.containers?.length || 0}`,
    restarts: cs.reduce((n, c) => n + (c.restartCount ?? 0), 0),
  };
}

function controllerRow(kind: WorkloadController['kind'], ns: string, o: ControllerJson): WorkloadController {
  const daemon = kind === 'DaemonSet';
  return {
    namespace: o.metadata.namespace ?? ns,
    kind,
    name: o.metadata.name,
    ready: (daemon ? o.status?.numberReady : o.status?.readyReplicas) ?? 0,
    desired: (daemon ? o.status?.desiredNumberScheduled : o.spec?.replicas) ?? (daemon ? 0 : 1),
  };
}

/** The list every namespace of the cluster (the chooser's choices). */
export const NAMESPACES_PATH = '/api/v1/namespaces';

/** Names from the answer to NAMESPACES_PATH, sorted; none when it failed. */
export function parseNamespaceList(a: { status: number; body: string } | undefined): string[] {
  if (a?.status !== 200) return [];
  try {
    const items = (JSON.parse(a.body) as { items?: { metadata?: { name?: unknown } }[] }).items ?? [];
    return items
      .map((i) => i?.metadata?.name)
      .filter((n): n is string => typeof n === 'string')
      .sort();
  } catch {
    return [];
  }
}

/**
 * Rows from the answers to workloadPaths(namespaces) (same order). A missing answer, an HTTP error
 * or a body that is not a list becomes one line in `errors`; the other lists still count.
 */
export function parseWorkloads(
  namespaces: readonly string[],
  answers: ReadonlyArray<{ status: number; body: string } | undefined>,
  namespaceList?: { status: number; body: string },
): WorkloadsHealth {
  const out: WorkloadsHealth = {
    namespaces: [...namespaces],
    available: parseNamespaceList(namespaceList),
    controllers: [],
    pods: [],
    errors: [],
  };
  namespaces.forEach((ns, i) => {
    KINDS.forEach((k, j) => {
      const a = answers[i * KINDS.length + j];
      const what = `${k.kind === 'Pod' ? 'pods' : `${k.kind}s`} in ${ns}`;
      if (!a || a.status !== 200) {
        out.errors.push(`${what}: ${a ? (a.status ? `HTTP ${a.status}` : 'no answer') : 'not read'}`);
        return;
      }
      let items: unknown[];
      try {
        const list = JSON.parse(a.body) as { items?: unknown };
        if (!Array.isArray(list.items)) throw new Error('not a list');
        items = list.items;
      } catch (e) {
        out.errors.push(`${what}: ${(e as Error).message}`);
        return;
      }
      for (const item of items) {
        const o = item as { metadata?: { name?: unknown } };
        if (typeof o?.metadata?.name !== 'string') continue;
        if (k.kind === 'Pod') {
          const p = item as PodJson;
          out.pods.push({ ...podRow(p), namespace: p.metadata.namespace ?? ns } satisfies WorkloadPod);
        } else out.controllers.push(controllerRow(k.kind, ns, item as ControllerJson));
      }
    });
  });
  const byName = <T extends { namespace: string; name: string }>(a: T, b: T) =>
    a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name);
  out.controllers.sort((a, b) => byName(a, b) || a.kind.localeCompare(b.kind));
  out.pods.sort(byName);
  return out;
}
