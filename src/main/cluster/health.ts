// Health of a cluster, read through SSH: each apiserver's readiness and which etcd it uses, every
// etcd member's status (leader, raft index, db size, alarms, reachable), and kube-system pods.
import type { ClusterFacts } from '@shared/domain';
import type { ApiserverHealth, HealthReport, MemberHealth, PodHealth } from '@shared/health';
import type { InventoryStore } from '../inventory/store';
import { classifyMode } from './facts';
import { parseAlarms, parseEndpointStatus, parseMemberList } from './etcdjson';
import { STACKED_ETCD_TLS, type ClusterOps } from './ops';

export type { ApiserverHealth, HealthReport, MemberHealth, PodHealth };

interface PodJson {
  metadata: { name: string };
  spec?: { nodeName?: string; containers?: unknown[] };
  status?: { phase?: string; containerStatuses?: { ready?: boolean; restartCount?: number }[] };
}

export async function clusterHealth(
  deps: { ops: ClusterOps; inventory: InventoryStore },
  clusterId: string,
): Promise<HealthReport> {
  const { ops, inventory } = deps;
  const facts: ClusterFacts | null = inventory.get(clusterId).facts;
  if (!facts) throw Object.assign(new Error('Initialize the cluster first'), { code: 'NOT_INITIALIZED' });
  const errors: string[] = [];
  const masters = facts.masters.filter((m) => inventory.get(clusterId).nodes.some((n) => n.id === m.nodeId));

  const apiservers: ApiserverHealth[] = await Promise.all(
    masters.map(async (m) => {
      try {
        const f = await ops.discover(clusterId, m.nodeId);
        const etcdServers = f.apiserver?.etcdServers ?? null;
        if (!etcdServers)
          return { nodeId: m.nodeId, name: m.name, ready: false, etcdServers, error: 'no kube-apiserver manifest' };
        const r = await ops.kubeGet(clusterId, m.nodeId, '/readyz');
        return {
          nodeId: m.nodeId,
          name: m.name,
          ready: r.status === 200,
          etcdServers,
          ...(r.status === 200 ? {} : { error: `readyz: HTTP ${r.status}` }),
        };
      } catch (e) {
        return {
          nodeId: m.nodeId,
          name: m.name,
          ready: false,
          etcdServers: m.etcdServers,
          error: (e as Error).message,
        };
      }
    }),
  );

  // etcd: ask through the first master that answers; the endpoints are what the apiservers use,
  // plus every member's client URL (so a member no apiserver uses still shows up).
  const members: MemberHealth[] = [];
  let etcdClusterId: string | null = null;
  for (const a of apiservers) {
    const endpoints = a.etcdServers ?? ['https://127.0.0.1:2379'];
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

  let pods: PodHealth[] = [];
  const ready = apiservers.find((a) => a.ready);
  if (ready) {
    try {
      const r = await ops.kubeGet(clusterId, ready.nodeId, '/api/v1/namespaces/kube-system/pods');
      if (r.status !== 200) throw new Error(`HTTP ${r.status}`);
      pods = ((JSON.parse(r.body) as { items?: PodJson[] }).items ?? []).map((p) => {
        const cs = p.status?.containerStatuses ?? [];
        return {
          name: p.metadata.name,
          node: p.spec?.nodeName ?? null,
          phase: p.status?.phase ?? 'Unknown',
          ready: `${cs.filter((c) => c.ready).length}/${cs.length || p.spec?.containers?.length || 0}`,
          restarts: cs.reduce((n, c) => n + (c.restartCount ?? 0), 0),
        };
      });
    } catch (e) {
      errors.push(`kube-system pods: ${(e as Error).message}`);
    }
  } else {
    errors.push('No apiserver is ready: pods cannot be listed');
  }

  const addresses = masters.map((m) => inventory.node(clusterId, m.nodeId).address);
  const mode = classifyMode(
    apiservers.map((a) => ({ name: a.name, address: '', etcdServers: a.etcdServers, apiserverReady: a.ready })),
    addresses,
  );
  return {
    at: new Date().toISOString(),
    mode: mode.mode,
    modeDetails: mode.details,
    apiservers,
    members,
    clusterId: etcdClusterId,
    pods,
    errors,
  };
}

export { STACKED_ETCD_TLS };
