// Health of a cluster, read through SSH: each apiserver's readiness and which etcd it uses, every
// etcd member's status (leader, raft index, db size, alarms, reachable), kube-system pods and the
// workloads of the namespaces chosen for this cluster (cluster/workloads.ts).
import type { ClusterFacts } from '@shared/domain';
import type {
  ApiserverHealth,
  HealthReport,
  MemberHealth,
  ParkedManifest,
  PodHealth,
  ServiceHealth,
  WorkloadsHealth,
} from '@shared/health';
import type { InventoryStore } from '../inventory/store';
import { classifyMode, isLocalEtcd, type NodeFacts } from './facts';
import { lbOf } from '@shared/domain';
import { parseAlarms, parseEndpointStatus, parseMemberList } from './etcdjson';
import { STACKED_ETCD_TLS, type ClusterOps } from './ops';
import { DEFAULT_NAMESPACES, NAMESPACES_PATH, parseWorkloads, podRow, workloadPaths, type PodJson } from './workloads';

export type { ApiserverHealth, HealthReport, MemberHealth, ParkedManifest, PodHealth };

/** Where static-pod.sh parks manifests (etcd/files.ts PARKED; not imported: cluster/ stays below etcd/). */
const PARKED_DIR = '/etc/kubernetes/kes-parked';
const LOCAL_ETCD = 'https://127.0.0.1:2379';

export async function clusterHealth(
  deps: { ops: ClusterOps; inventory: InventoryStore },
  clusterId: string,
): Promise<HealthReport> {
  const { ops, inventory } = deps;
  const facts: ClusterFacts | null = inventory.get(clusterId).facts;
  if (!facts) throw Object.assign(new Error('Initialize the cluster first'), { code: 'NOT_INITIALIZED' });
  const errors: string[] = [];
  const masters = facts.masters.filter((m) => inventory.get(clusterId).nodes.some((n) => n.id === m.nodeId));
  const addresses = masters.map((m) => inventory.node(clusterId, m.nodeId).address);

  // Workers, the load balancer and external etcd nodes: one discover.sh each too (their unit
  // states: kubelet, the LB, the external etcd unit), side by side with the masters'.
  const others = inventory
    .get(clusterId)
    .nodes.filter(
      (n) =>
        !masters.some((m) => m.nodeId === n.id) &&
        (n.roles.includes('worker') || n.roles.includes('lb') || n.roles.includes('etcd')),
    );
  const othersSeen = Promise.all(
    others.map(async (n) => ({ n, f: await ops.discover(clusterId, n.id).catch(() => null) })),
  );
  // Every master's files first (one discover.sh each, side by side): manifests, parked ones, ports.
  const seen = await Promise.all(
    masters.map(async (m) => {
      try {
        return { m, f: await ops.discover(clusterId, m.nodeId) };
      } catch (e) {
        return { m, error: (e as Error).message };
      }
    }),
  );

  const apiservers: ApiserverHealth[] = await Promise.all(
    seen.map(async ({ m, f, error }): Promise<ApiserverHealth> => {
      const base = { nodeId: m.nodeId, name: m.name };
      if (!f) return { ...base, ready: false, etcdServers: m.etcdServers, error };
      if (!f.apiserver) {
        if (f.parkedApiserver || f.parkedManifests.includes('kube-apiserver.yaml'))
          return {
            ...base,
            ready: false,
            parked: true,
            etcdServers: f.parkedApiserver?.etcdServers ?? null,
            error: `kube-apiserver.yaml is parked by the app in ${PARKED_DIR} (stopped)`,
          };
        return { ...base, ready: false, etcdServers: null, error: 'no kube-apiserver manifest' };
      }
      const etcdServers = f.apiserver.etcdServers;
      try {
        const r = await ops.kubeGet(clusterId, m.nodeId, '/readyz');
        return {
          ...base,
          ready: r.status === 200,
          etcdServers,
          ...(r.status === 200 ? {} : { error: `readyz: HTTP ${r.status}` }),
        };
      } catch (e) {
        return { ...base, ready: false, etcdServers, error: (e as Error).message };
      }
    }),
  );

  // Manifests the app parked. A parked stacked etcd is how a master runs once its apiserver uses
  // an external etcd; anything else parked was left by a job (cut short, or still running).
  const parked: ParkedManifest[] = [];
  for (const { m, f } of seen) {
    if (!f) continue;
    const usesExternal =
      !!f.apiserver?.etcdServers.length && f.apiserver.etcdServers.every((u) => !isLocalEtcd(u, addresses));
    if (f.parkedManifests.includes('kube-apiserver.yaml') && !f.apiserverManifest)
      parked.push({
        nodeId: m.nodeId,
        node: m.name,
        component: 'kube-apiserver',
        path: `${PARKED_DIR}/kube-apiserver.yaml`,
        expected: false,
      });
    if (f.parkedManifests.includes('etcd.yaml') && !f.etcdManifest)
      parked.push({
        nodeId: m.nodeId,
        node: m.name,
        component: 'etcd',
        path: `${PARKED_DIR}/etcd.yaml`,
        expected: usesExternal,
      });
  }
  for (const m of masters) {
    const left = parked.filter((p) => p.nodeId === m.nodeId && !p.expected).map((p) => p.component);
    if (left.length)
      errors.push(
        `${m.name}: ${left.join(' and ')} stopped by the app (manifest${left.length > 1 ? 's' : ''} parked in ${PARKED_DIR}): ` +
          'a job was cut short or is still running. Finish the job, or bring back a state (States view)',
      );
  }

  // etcd: ask through the first master that answers; the endpoints are what the apiservers use,
  // plus every member's client URL (so a member no apiserver uses still shows up). A master whose
  // apiserver would ask its own member while nothing listens on 2379 there (etcd parked or down)
  // is passed over at once rather than waited for (etcdctl's timeouts, ~15 s each).
  const members: MemberHealth[] = [];
  let etcdClusterId: string | null = null;
  const passedOver: string[] = [];
  for (const a of apiservers) {
    const endpoints = a.etcdServers ?? [LOCAL_ETCD];
    const f = seen.find((x) => x.m.nodeId === a.nodeId)?.f;
    const own = inventory.node(clusterId, a.nodeId).address;
    const local = endpoints.every((u) => isLocalEtcd(u, [own]));
    if (local && f?.listening.length && !f.listening.includes(2379)) {
      const why = parked.some((p) => p.nodeId === a.nodeId && p.component === 'etcd')
        ? ': its etcd.yaml is parked'
        : '';
      passedOver.push(`etcd via ${a.name}: nothing listens on ${a.name}:2379${why}`);
      continue;
    }
    try {
      const list = parseMemberList(await ops.etcdctl(clusterId, a.nodeId, endpoints, ['member', 'list', '-w', 'json']));
      const clientUrls = [...new Set(list.flatMap((m) => m.clientUrls))];
      const statusOut = await ops
        .etcdctl(
          clusterId,
          a.nodeId,
          clientUrls.length ? clientUrls : endpoints,
          ['endpoint', 'status', '-w', 'json'],
          { timeoutMs: 30_000 },
        )
        .catch((e: { result?: { stdout: string } }) => e.result?.stdout ?? '');
      const statuses = parseEndpointStatus(statusOut);
      const alarms = parseAlarms(await ops.etcdctl(clusterId, a.nodeId, endpoints, ['alarm', 'list']).catch(() => ''));
      const leader = statuses.find((s) => s.leader)?.leader ?? null;
      for (const m of list) {
        const st = statuses.find((s) => s.memberId === m.id);
        members.push({
          ...m,
          reachable: !!st,
          isLeader: !!leader && leader === m.id,
          version: st?.version ?? null,
          dbSize: st?.dbSize ?? null,
          dbSizeInUse: st?.dbSizeInUse ?? null,
          raftIndex: st?.raftIndex ?? null,
          raftTerm: st?.raftTerm ?? null,
          revision: st?.revision ?? null,
          alarms: alarms.filter((x) => x.memberId === m.id).map((x) => x.alarm),
        });
      }
      const clusterIdMatch = /"cluster_id":\s*(\d+)/.exec(statusOut);
      etcdClusterId = clusterIdMatch ? BigInt(clusterIdMatch[1]).toString(16) : null;
      break;
    } catch (e) {
      errors.push(`etcd via ${a.name}: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  if (!members.length) errors.push(...passedOver);

  // kube-system's pods and the chosen namespaces' workloads: one kube-api.sh run (one round trip).
  let pods: PodHealth[] = [];
  const namespaces = inventory.get(clusterId).healthNamespaces ?? DEFAULT_NAMESPACES;
  let workloads: WorkloadsHealth = {
    namespaces: [...namespaces],
    available: [],
    controllers: [],
    pods: [],
    errors: [],
  };
  const ready = apiservers.find((a) => a.ready);
  if (ready) {
    try {
      const [system, nsList, ...rest] = await ops.kubeGetMany(clusterId, ready.nodeId, [
        '/api/v1/namespaces/kube-system/pods',
        NAMESPACES_PATH,
        ...workloadPaths(namespaces),
      ]);
      workloads = parseWorkloads(namespaces, rest, nsList);
      try {
        if (system?.status !== 200) throw new Error(system?.status ? `HTTP ${system.status}` : 'no answer');
        pods = ((JSON.parse(system.body) as { items?: PodJson[] }).items ?? []).map(podRow);
      } catch (e) {
        errors.push(`kube-system pods: ${(e as Error).message}`);
      }
    } catch (e) {
      errors.push(`kube-system pods: ${(e as Error).message}`);
      workloads.errors.push(`not read: ${(e as Error).message.split('\n')[0]}`);
    }
  } else {
    errors.push('No apiserver is ready: pods cannot be listed');
    workloads.errors.push('No apiserver is ready');
  }

  const lbKind = lbOf(inventory.get(clusterId).creation)?.kind;
  const services: ServiceHealth[] = [];
  const unitRows = (name: string, roles: string[], f: NodeFacts | null | undefined, answered: boolean) => {
    const units = f?.units;
    if (roles.includes('master') || roles.includes('worker'))
      services.push({ node: name, unit: 'kubelet', state: units?.kubelet || 'unknown' });
    if (roles.includes('lb') && lbKind)
      services.push({ node: name, unit: lbKind, state: units?.[lbKind] || 'unknown' });
    // The external etcd unit where the app installed one (the External tab shows it live).
    if (f?.etcdUnitActive || (!answered && roles.includes('etcd') && !roles.includes('master')))
      services.push({ node: name, unit: 'etcd', state: f?.etcdUnitActive || 'unknown' });
  };
  for (const { m, f } of seen) unitRows(m.name, inventory.node(clusterId, m.nodeId).roles.concat('master'), f, !!f);
  for (const { n, f } of await othersSeen) unitRows(n.name, n.roles, f, !!f);

  const mode = classifyMode(
    apiservers.map((a) => ({ name: a.name, address: '', etcdServers: a.etcdServers, apiserverReady: a.ready })),
    addresses,
  );
  for (const p of parked)
    if (!p.expected) mode.details.push(`${p.node}: ${p.component} stopped by the app (manifest parked)`);
  return {
    at: new Date().toISOString(),
    mode: mode.mode,
    modeDetails: mode.details,
    apiservers,
    members,
    clusterId: etcdClusterId,
    pods,
    workloads,
    parked,
    services,
    errors,
  };
}

export { STACKED_ETCD_TLS };
