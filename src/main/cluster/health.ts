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
import { DISCOVER, kubeGetsAnswers, kubeGetsCall, STACKED_ETCD_TLS, type ClusterOps } from './ops';
import type { ScriptCall } from '../remote/scripts';
import type { ExecResult } from '../ssh/types';
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
  // One round trip per master (side by side): its files (discover.sh: manifests, parked ones,
  // ports) and its apiserver's /readyz. The first master also asks, in the same run, etcd (through
  // the endpoints its apiserver used when last seen) and the Kubernetes API (pods, workloads) —
  // used when what it discovers confirms them; otherwise asked again below, as before.
  const namespaces = inventory.get(clusterId).healthNamespaces ?? DEFAULT_NAMESPACES;
  const podPaths = ['/api/v1/namespaces/kube-system/pods', NAMESPACES_PATH, ...workloadPaths(namespaces)];
  const guess = masters[0] ? (masters[0].etcdServers?.length ? masters[0].etcdServers : [LOCAL_ETCD]) : null;
  const seen = await Promise.all(
    masters.map(async (m, i) => {
      const calls: ScriptCall[] = [DISCOVER, kubeGetsCall(['/readyz'])];
      if (i === 0 && guess) calls.push(...etcdCalls(ops, clusterId, m.nodeId, guess, 2), kubeGetsCall(podPaths));
      try {
        const [disc, readyz, ...rest] = await ops.runMany(clusterId, m.nodeId, calls, { timeoutMs: 90_000 });
        if (disc.code !== 0) throw new Error(partFailed('discover.sh', m.name, disc));
        const f = await ops.discovered(clusterId, m.nodeId, disc.stdout);
        const etcd = rest.length ? { endpoints: guess!, parts: rest.slice(0, 3) } : undefined;
        return { m, f, readyz, etcd, pods: rest[3] };
      } catch (e) {
        return { m, error: (e as Error).message };
      }
    }),
  );

  const apiservers: ApiserverHealth[] = seen.map(({ m, f, error, readyz }): ApiserverHealth => {
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
    const status = readyz ? kubeGetsAnswers(['/readyz'], readyz.stdout)[0].status : 0;
    if (status === 200) return { ...base, ready: true, etcdServers };
    return { ...base, ready: false, etcdServers, error: status ? `readyz: HTTP ${status}` : 'readyz: no answer' };
  });

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
  // An external etcd's endpoints are the same through every master: asked through two masters at
  // most (the second in case the first one's own link or certificates were at fault), not all.
  const triedRemote = new Map<string, number>();
  for (const a of apiservers) {
    const endpoints = a.etcdServers ?? [LOCAL_ETCD];
    const s0 = seen.find((x) => x.m.nodeId === a.nodeId);
    const f = s0?.f;
    const own = inventory.node(clusterId, a.nodeId).address;
    const local = endpoints.every((u) => isLocalEtcd(u, [own]));
    if (local && f?.listening.length && !f.listening.includes(2379)) {
      const why = parked.some((p) => p.nodeId === a.nodeId && p.component === 'etcd')
        ? ': its etcd.yaml is parked'
        : '';
      passedOver.push(`etcd via ${a.name}: nothing listens on ${a.name}:2379${why}`);
      continue;
    }
    const key = [...endpoints].sort().join(',');
    if (!local) {
      if ((triedRemote.get(key) ?? 0) >= 2) continue;
      triedRemote.set(key, (triedRemote.get(key) ?? 0) + 1);
    }
    try {
      // asked already in the master's own run when it used these endpoints; else one run now
      const parts =
        s0?.etcd && sameSet(s0.etcd.endpoints, endpoints)
          ? s0.etcd.parts
          : await ops.runMany(clusterId, a.nodeId, etcdCalls(ops, clusterId, a.nodeId, endpoints, 0), {
              timeoutMs: 60_000,
            });
      const [listRun, statusRun, alarmRun] = parts;
      if (listRun.code !== 0) throw new Error(partFailed('etcdctl.sh', a.name, listRun));
      const list = parseMemberList(listRun.stdout);
      // a member that does not answer leaves etcdctl's exit code non-zero: the others' status stands
      const statusOut = statusRun.stdout;
      const statuses = parseEndpointStatus(statusOut);
      const alarms = alarmRun.code === 0 ? parseAlarms(alarmRun.stdout) : [];
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

  // kube-system's pods and the chosen namespaces' workloads: read in the first master's run when
  // its apiserver is ready; else one kube-api.sh run on the first ready one.
  let pods: PodHealth[] = [];
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
      const early = seen.find((x) => x.m.nodeId === ready.nodeId)?.pods;
      const [system, nsList, ...rest] =
        early?.code === 0
          ? kubeGetsAnswers(podPaths, early.stdout)
          : await ops.kubeGetMany(clusterId, ready.nodeId, podPaths);
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

/** etcd's member list, every member's status (`--cluster`: each member's client URL) and alarms. */
function etcdCalls(
  ops: ClusterOps,
  clusterId: string,
  nodeId: string,
  endpoints: string[],
  /** Where the member list lands in the batch: the other two run only when it answered (without
   * quorum each would wait for etcdctl's command timeout too). */
  at: number,
): ScriptCall[] {
  return [
    ops.etcdctlCall(clusterId, nodeId, endpoints, ['member', 'list', '-w', 'json']),
    { ...ops.etcdctlCall(clusterId, nodeId, endpoints, ['endpoint', 'status', '--cluster', '-w', 'json']), needs: at },
    { ...ops.etcdctlCall(clusterId, nodeId, endpoints, ['alarm', 'list']), needs: at },
  ];
}

const sameSet = (a: string[], b: string[]) => a.length === b.length && a.every((x) => b.includes(x));

/** A part of a run that failed, as ScriptFailed words it: its last stderr line. */
function partFailed(script: string, node: string, r: ExecResult): string {
  const last = r.stderr.trim().split('\n').slice(-1)[0];
  const how = r.code === null ? 'did not finish' : `exited with ${r.code}`;
  return `${script} on ${node} ${how}${last ? `: ${last}` : ''}`;
}

export { STACKED_ETCD_TLS };
