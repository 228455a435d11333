// Initialize: from one master's address, discover the whole control plane over SSH only — every
// master, its stacked etcd member, which etcd each apiserver uses, versions and tools, the etcd
// CA — and record it in the inventory. Idempotent: rerun after certificate rotation or a change.
// Works with the apiserver down (everything comes from files and etcd on the masters).
import type { ClusterFacts, ClusterNode, EtcdMemberFact, MasterFact } from '@shared/domain';
import { ApiError } from '../api/errors';
import { classifyMode, isLocalEtcd, parseInitialCluster, type NodeFacts } from './facts';
import { parseMemberList } from './etcdjson';
import type { ClusterOps, Log } from './ops';
import type { InventoryStore } from '../inventory/store';

const LOCAL_ETCD = 'https://127.0.0.1:2379';
/** kubeadm's static pod folder, where the jobs read and edit manifests. */
const STATIC_POD_DIR = '/etc/kubernetes/manifests';

function hostOf(url: string): string {
  return new URL(url).hostname.replace(/^\[|\]$/g, '');
}

/** Whether `host` (an address or a name) is one of the node's own. */
function ownsHost(f: NodeFacts, host: string): boolean {
  return f.addresses.includes(host) || (!!f.hostname && f.hostname === host);
}

/**
 * Pairs of nodes that are one machine: same machine-id and same hostname (a machine-id alone is
 * not enough — VMs cloned from one image often share it).
 */
export function sameMachines<T extends { node: ClusterNode; facts: NodeFacts }>(
  list: T[],
): [ClusterNode, ClusterNode][] {
  const out: [ClusterNode, ClusterNode][] = [];
  for (let i = 0; i < list.length; i++)
    for (let j = i + 1; j < list.length; j++) {
      const [a, b] = [list[i].facts, list[j].facts];
      if (a.machineId && a.machineId === b.machineId && a.hostname === b.hostname)
        out.push([list[i].node, list[j].node]);
    }
  return out;
}

export async function initializeCluster(
  deps: { ops: ClusterOps; inventory: InventoryStore },
  clusterId: string,
  seedNodeId: string,
  log: Log = () => undefined,
): Promise<ClusterFacts> {
  const { ops, inventory } = deps;
  const seed = inventory.node(clusterId, seedNodeId);
  log('info', `Discovering ${seed.name} (${seed.address})`);
  const seedFacts = await ops.discover(clusterId, seedNodeId, log);
  if (!seedFacts.etcd && !seedFacts.apiserver && !seedFacts.parkedManifests.length) {
    throw new ApiError(
      'NOT_A_MASTER',
      `${seed.name} does not look like a kubeadm control-plane node: no /etc/kubernetes/manifests/etcd.yaml or kube-apiserver.yaml`,
    );
  }

  // Members: from etcd itself when it answers, else from the manifest's --initial-cluster.
  let members: EtcdMemberFact[] = [];
  const endpoints = seedFacts.apiserver?.etcdServers ?? [LOCAL_ETCD];
  try {
    const out = await ops.etcdctl(clusterId, seedNodeId, endpoints, ['member', 'list', '-w', 'json'], { log });
    members = parseMemberList(out).map((m) => ({
      name: m.name,
      id: m.id,
      peerUrls: m.peerUrls,
      clientUrls: m.clientUrls,
      nodeId: null,
      kind: 'stacked',
    }));
    log('info', `etcd reports ${members.length} member(s): ${members.map((m) => m.name || m.id).join(', ')}`);
  } catch (e) {
    log('info', `etcd did not answer (${(e as Error).message.split('\n')[0]}); using --initial-cluster from etcd.yaml`);
    if (seedFacts.etcd) {
      members = parseInitialCluster(seedFacts.etcd.initialCluster).map((m) => ({
        name: m.name,
        id: null,
        peerUrls: [m.peerUrl],
        clientUrls: [],
        nodeId: null,
        kind: 'stacked',
      }));
    }
  }

  // Masters already in the inventory are discovered first: their addresses (every NIC) tell which
  // hosts named by etcd or the API are machines we know under another name or address.
  const factsByNode = new Map<string, NodeFacts>([[seed.id, seedFacts]]);
  const unknownKeys: { nodeId: string; name: string; hostKey: unknown }[] = [];
  const failures: string[] = [];
  const discoverAll = (nodes: ClusterNode[]) =>
    Promise.all(
      nodes
        .filter((n) => !factsByNode.has(n.id))
        .map(async (n) => {
          log('info', `Discovering ${n.name} (${n.address})`);
          try {
            factsByNode.set(n.id, await ops.discover(clusterId, n.id, log));
          } catch (e) {
            const err = e as { code?: string; details?: { hostKey?: unknown }; message: string };
            if (err.code === 'HOST_KEY_UNKNOWN')
              unknownKeys.push({ nodeId: n.id, name: n.name, hostKey: err.details?.hostKey });
            else failures.push(`${n.name}: ${err.message}`);
          }
        }),
    );
  await discoverAll(inventory.get(clusterId).nodes.filter((n) => n.roles.includes('master')));
  /** The known node a host (address or name) belongs to, when exactly one claims it. */
  const knownNodeOf = (host: string): ClusterNode | undefined => {
    const owners = inventory
      .get(clusterId)
      .nodes.filter((n) => n.address === host || (factsByNode.get(n.id) && ownsHost(factsByNode.get(n.id)!, host)));
    return owners.length === 1 ? owners[0] : undefined;
  };

  // Master hosts: the seed; with stacked etcd, every member's host (kubeadm runs one member per
  // control-plane node); when the API answers, every node labelled control-plane. Keyed by the
  // inventory address when the host is a known machine (no second master for another NIC/name).
  const masterHosts = new Map<string, string>(); // address -> suggested name
  const addHost = (host: string, name: string): void => {
    const known = knownNodeOf(host);
    if (known && known.address !== host)
      log('info', `${host} is ${known.name} (${known.address}), already known: not a new master`);
    const key = known?.address ?? host;
    if (!masterHosts.has(key)) masterHosts.set(key, known?.name ?? name);
  };
  masterHosts.set(seed.address, seed.name);
  // Stacked means the seed runs an active member AND its apiserver uses it; in external mode the
  // members live on other nodes and must not be mistaken for masters.
  const seedUsesLocal = (seedFacts.apiserver?.etcdServers ?? ['https://127.0.0.1:2379']).every((u) =>
    isLocalEtcd(u, [seed.address, ...seedFacts.addresses]),
  );
  const seedIsStacked = !!seedFacts.etcd && seedUsesLocal;
  for (const n of inventory.get(clusterId).nodes) if (n.roles.includes('master')) addHost(n.address, n.name);
  if (seedIsStacked) {
    for (const m of members) {
      const host = m.peerUrls[0] ? hostOf(m.peerUrls[0]) : null;
      if (host) addHost(host, m.name || host);
    }
  }
  try {
    const r = await ops.kubeGet(clusterId, seedNodeId, '/api/v1/nodes', log);
    if (r.status === 200) {
      type NodeJson = {
        metadata: { name: string; labels?: Record<string, string> };
        status?: { addresses?: { type: string; address: string }[] };
      };
      for (const n of (JSON.parse(r.body) as { items?: NodeJson[] }).items ?? []) {
        if (!n.metadata.labels || !('node-role.kubernetes.io/control-plane' in n.metadata.labels)) continue;
        const ip = n.status?.addresses?.find((a) => a.type === 'InternalIP')?.address;
        if (ip) addHost(ip, n.metadata.name);
      }
    }
  } catch {
    // API down: the etcd members (above) are the source
  }

  // Create or update inventory nodes for masters, with the seed's SSH settings.
  const masterNodes: ClusterNode[] = [];
  for (const [address, name] of masterHosts) {
    const cluster = inventory.get(clusterId);
    let node = cluster.nodes.find((n) => n.address === address);
    if (!node) {
      const free = cluster.nodes.some((n) => n.name === name) ? `${name}-${address.replace(/[^0-9a-z]/gi, '-')}` : name;
      log('info', `Adding master ${free} (${address}) with the SSH settings of ${seed.name}`);
      node = await inventory.upsertNode(clusterId, {
        name: free,
        address,
        port: seed.port,
        user: seed.user,
        roles: ['master', 'etcd'],
        auth: seed.auth,
        jumpNodeId: seed.jumpNodeId,
      });
    } else if (!node.roles.includes('master')) {
      node = await inventory.upsertNode(clusterId, {
        ...node,
        roles: [...new Set([...node.roles, 'master' as const])],
      });
    }
    masterNodes.push(node);
  }

  // Discover the masters not seen yet, in parallel.
  await discoverAll(masterNodes);
  // New masters are first contacts: their host keys need the user's confirmation, like any node.
  if (unknownKeys.length) {
    throw new ApiError(
      'HOST_KEYS_UNKNOWN',
      `Found ${unknownKeys.length} more master(s) (${unknownKeys.map((k) => k.name).join(', ')}); confirm their host keys, then initialize again`,
      { nodes: unknownKeys },
    );
  }
  if (failures.length) throw new ApiError('DISCOVERY_FAILED', `Cannot reach every master: ${failures.join('; ')}`);
  // kubeadm always writes its static pod manifests to /etc/kubernetes/manifests (a constant in
  // kubeadm: GetStaticPodDirectory, not configurable), and the jobs edit them there; a kubelet
  // changed to read another folder would see neither kubeadm's files nor the jobs' edits. Refuse
  // such a cluster instead of guessing.
  const elsewhere = masterNodes.filter((n) => {
    const p = factsByNode.get(n.id)?.staticPodPath;
    return p && p.replace(/\/+$/, '') !== STATIC_POD_DIR;
  });
  if (elsewhere.length)
    throw new ApiError(
      'UNSUPPORTED_LAYOUT',
      `The kubelet on ${elsewhere.map((n) => `${n.name} reads static pods from ${factsByNode.get(n.id)!.staticPodPath}`).join(', ')}; this version of the app works only with kubeadm's ${STATIC_POD_DIR}`,
    );
  // One machine listed twice (by name and by address, or through two NICs) would be restored as
  // two members: refuse, naming both, rather than guess which entry the user wants.
  const twins = sameMachines(masterNodes.map((n) => ({ node: n, facts: factsByNode.get(n.id)! })));
  if (twins.length)
    throw new ApiError(
      'DUPLICATE_NODE',
      twins
        .map(
          ([a, b]) =>
            `${a.name} (${a.address}) and ${b.name} (${b.address}) are the same machine (hostname ${factsByNode.get(a.id)!.hostname}, same machine-id)`,
        )
        .join('; ') + ': remove one of them from the cluster, then initialize again',
      { nodes: twins.map(([a, b]) => [a.id, b.id]) },
    );

  // Which etcd each apiserver uses and whether it is ready.
  // Every address of every master (all NICs): an etcd URL or peer URL on any of them is local.
  const masterAddresses = [
    ...new Set(masterNodes.flatMap((n) => [n.address, ...(factsByNode.get(n.id)?.addresses ?? [])])),
  ];
  const readiness = await Promise.all(
    masterNodes.map(async (n) => {
      if (!factsByNode.get(n.id)?.apiserver) return false;
      try {
        return (await ops.kubeGet(clusterId, n.id, '/readyz', log)).status === 200;
      } catch {
        return false;
      }
    }),
  );
  const masters: MasterFact[] = masterNodes.map((n) => {
    const f = factsByNode.get(n.id)!;
    return {
      nodeId: n.id,
      name: n.name,
      hostname: f.hostname,
      etcdServers: f.apiserver?.etcdServers ?? null,
      etcdDataDir: f.etcd?.dataDir ?? null,
      etcdManifest: f.etcd ? 'active' : f.parkedManifests.includes('etcd.yaml') ? 'parked' : 'absent',
      etcdPkiDir: f.etcdPkiDir,
      tools: f.tools,
      versions: f.versions,
      problems: f.problems,
    };
  });
  for (const m of members) {
    const host = m.peerUrls[0] ? hostOf(m.peerUrls[0]) : null;
    const node = host ? knownNodeOf(host) : undefined;
    m.nodeId = node?.id ?? null;
    m.kind = host && masterAddresses.includes(host) ? 'stacked' : 'external';
  }
  const mode = classifyMode(
    masterNodes.map((n, i) => ({
      name: n.name,
      address: n.address,
      etcdServers: masters[i].etcdServers,
      apiserverReady: readiness[i],
    })),
    masterAddresses,
  );
  const caHolders = masters.filter((m) => factsByNode.get(m.nodeId)!.etcdCaKeyPresent).map((m) => m.name);
  const facts: ClusterFacts = {
    initializedAt: new Date().toISOString(),
    seedNodeId,
    controlPlaneEndpoint: seedFacts.adminConfServer,
    etcdCaCert: seedFacts.etcdCaCert,
    etcdCaKeyOn: caHolders,
    // The version the stacked members run is their image tag (kubeadm runs etcd from an image;
    // tools on the host may be any version); the host's tools only when no manifest names one.
    etcdVersion:
      masterNodes.map((n) => factsByNode.get(n.id)?.etcd?.version).find(Boolean) ??
      masters.map((m) => m.versions.etcd ?? m.versions.etcdctl).find(Boolean) ??
      null,
    masters,
    members,
    mode: mode.mode,
    modeDetails: mode.details,
    // Where each node's etcd tools are: what was known of other nodes (external etcd), and every
    // master as just discovered. Scripts call the tools by these paths (see ClusterOps.toolPaths).
    nodeTools: {
      ...inventory.get(clusterId).facts?.nodeTools,
      ...Object.fromEntries(
        masterNodes.map((n) => {
          const t = factsByNode.get(n.id)!.tools;
          return [n.id, { etcd: t.etcd, etcdctl: t.etcdctl, etcdutl: t.etcdutl }];
        }),
      ),
    },
    // The external members the app set up, of nodes still in the inventory.
    externalEtcd: Object.fromEntries(
      Object.entries(inventory.get(clusterId).facts?.externalEtcd ?? {}).filter(([id]) =>
        inventory.get(clusterId).nodes.some((n) => n.id === id),
      ),
    ),
  };
  // A member whose URLs are not local to its master means external etcd is in use somewhere.
  for (const m of masters) {
    if (m.etcdServers?.some((u) => !isLocalEtcd(u, masterAddresses)))
      log('info', `${m.name} uses external etcd: ${m.etcdServers.join(', ')}`);
  }
  await inventory.setFacts(clusterId, facts);
  log('info', `Mode: ${facts.mode}`);
  return facts;
}
