// Moving configuration files to and from nodes: read a set of files (collect-files.sh), and put
// one file in place atomically (SFTP to the private transfer folder, then install-file.sh as root).
import { posix } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { ClusterNode } from '@shared/domain';
import { STACKED_ETCD_TLS, type Log } from '../cluster/ops';
import { parseEndpointStatus } from '../cluster/etcdjson';
import { transferDir, type EtcdDeps } from './deps';
import { shJoin } from '../remote/quote';

export const MANIFESTS = '/etc/kubernetes/manifests';
export const PARKED = '/etc/kubernetes/kes-parked';
export const ETCD_UNIT = '/etc/systemd/system/etcd.service';
export const ETCD_ENV = '/etc/default/etcd';

/** Every file a state records on a control-plane or etcd node. */
export const STATE_FILES = [
  `${MANIFESTS}/etcd.yaml`,
  `${MANIFESTS}/kube-apiserver.yaml`,
  `${PARKED}/etcd.yaml`,
  `${PARKED}/kube-apiserver.yaml`,
  ETCD_UNIT,
  ETCD_ENV,
];

export interface RemoteFile {
  path: string;
  mode: number;
  content: Buffer | null;
}

export async function readFiles(
  deps: Pick<EtcdDeps, 'ops'>,
  clusterId: string,
  nodeId: string,
  paths: string[],
  dirs: string[] = [],
  log?: Log,
): Promise<{ files: RemoteFile[]; dirs: Map<string, boolean>; unitActive: string | null }> {
  const args = dirs.length ? [...paths, '--', ...dirs] : paths;
  const res = await deps.ops.run(clusterId, nodeId, 'collect-files.sh', args, {
    log: (s, t) => s !== 'stdout' && log?.(s, t),
  });
  const files: RemoteFile[] = [];
  const dirMap = new Map<string, boolean>();
  let unitActive: string | null = null;
  for (const line of res.stdout.split('\n')) {
    if (line.startsWith('KES_FILE=')) {
      const [path, mode, b64] = line.slice(9).split('|');
      files.push({ path, mode: parseInt(mode, 8) || 0o600, content: b64 === '-' ? null : Buffer.from(b64, 'base64') });
    } else if (line.startsWith('KES_DIR=')) {
      const [d, ok] = line.slice(8).split('|');
      dirMap.set(d, ok === '1');
    } else if (line.startsWith('KES_UNIT_ACTIVE=')) {
      unitActive = line.slice(16) || null;
    }
  }
  return { files, dirs: dirMap, unitActive };
}

/**
 * Put `content` at `path` on the node with `mode`, atomically. The bytes go from memory straight to
 * a 0600 file in the node's private transfer folder over SFTP — never through a local file, since
 * they may be a member's private key — then install-file.sh puts them in place as root.
 */
export async function putFile(
  deps: EtcdDeps,
  clusterId: string,
  node: ClusterNode,
  path: string,
  content: Buffer | string,
  mode: number,
  log?: Log,
): Promise<void> {
  const { dir } = await transferDir(deps, clusterId, node);
  const remote = posix.join(dir, `put-${randomUUID()}`);
  log?.('info', `write ${path} on ${node.name} (${Buffer.byteLength(content)} bytes, mode ${mode.toString(8)})`);
  await deps.pool.writeFile(deps.targetOf(clusterId, node.id), remote, content, { mode: 0o600 });
  await deps.ops.run(clusterId, node.id, 'install-file.sh', [remote, path, mode.toString(8).padStart(4, '0')], {
    log,
  });
}

export async function removeFile(
  deps: EtcdDeps,
  clusterId: string,
  node: ClusterNode,
  path: string,
  log?: Log,
): Promise<void> {
  await deps.ops.run(clusterId, node.id, 'remove-file.sh', [path], { log });
}

/**
 * kubeadm's ports. etcd counts as stopped only when its peer port is closed too: that is when the
 * process is gone (see static-pod.sh), and a new etcd could not bind it before.
 */
export const STATIC_POD_PORTS = { etcd: '2379,2380', 'kube-apiserver': 'secure-port' } as const;

/**
 * Seconds a parked pod's containers get to exit once its ports are closed before the runtime stops
 * them (static-pod.sh EXIT_SECONDS). kube-apiserver closes its port at once on SIGTERM but exits
 * 12–30 s later, and the kubelet starts no new pod of that name until it has: without this, a
 * switch's new apiserver waited for the old one (bench:switch). etcd exits once its peer port closes.
 * One second is many times an etcd write's latency (a request already accepted lands before the
 * snapshot); it is paid inside every switch's outage, so it is kept short.
 */
export const STATIC_POD_EXIT_S = { etcd: 0, 'kube-apiserver': 1 } as const;

/** How a plan shows `deps.ops.run(…, script, args)`: the script's name and its quoted arguments. */
export function scriptCommand(script: string, args: ReadonlyArray<string | number> = []): string {
  return shJoin(['bash', script, ...args]);
}

/** The command line `staticPod` runs, for plans. */
export function staticPodCommand(action: 'park' | 'unpark', name: keyof typeof STATIC_POD_PORTS): string {
  return `bash static-pod.sh ${action} ${name} ${STATIC_POD_PORTS[name]}`;
}

/** Stop (park) or start (unpark) a static pod and wait for its port. */
export async function staticPod(
  deps: EtcdDeps,
  clusterId: string,
  node: ClusterNode,
  action: 'park' | 'unpark',
  name: 'etcd' | 'kube-apiserver',
  opts: { log?: Log; timeoutS?: number } = {},
): Promise<void> {
  const timeoutS = opts.timeoutS ?? (action === 'park' ? deps.parkTimeoutS : undefined) ?? 120;
  await deps.ops.run(
    clusterId,
    node.id,
    'static-pod.sh',
    [
      action,
      name,
      STATIC_POD_PORTS[name],
      timeoutS,
      ...(action === 'park' && STATIC_POD_EXIT_S[name] ? ['', STATIC_POD_EXIT_S[name]] : []),
    ],
    {
      log: opts.log,
      timeoutMs: (timeoutS + 30) * 1000,
    },
  );
}

/**
 * Stop the stacked etcd members of `nodes`: the followers together, then the leader. A leader that
 * still sees a peer tries to hand its leadership over before it stops (etcd's TransferLeadership,
 * up to ~7 s) — to peers that are stopping too; measured in the lab: one member of three took 7 s
 * to stop when all were parked at once. With no peer left it stops at once. When the leader cannot
 * be asked (etcd already sick), all are stopped together.
 */
export async function parkStackedEtcd(
  deps: EtcdDeps,
  clusterId: string,
  nodes: ClusterNode[],
  opts: { log?: Log; soft?: boolean } = {},
): Promise<void> {
  const leader = nodes.length > 1 ? await stackedLeader(deps, clusterId, nodes).catch(() => undefined) : undefined;
  await leaderLast(nodes, leader, (n) => staticPod(deps, clusterId, n, 'park', 'etcd', { log: opts.log }), opts);
}

/**
 * etcdctl flags for "who leads?" before a stop: short, because a sick or stopped cluster (the reason
 * for many restores) must not hold the stop up — the answer only saves time when etcd is healthy.
 * (Later flags win over etcdctl.sh's defaults.)
 */
export const LEADER_QUERY_TIMEOUTS = ['--dial-timeout=1s', '--command-timeout=2s'];

/** Run `stop` on the followers together, then on the leader (unknown leader: all together). */
export async function leaderLast(
  nodes: ClusterNode[],
  leader: ClusterNode | undefined,
  stop: (n: ClusterNode) => Promise<unknown>,
  opts: { log?: Log; soft?: boolean } = {},
): Promise<void> {
  const one = (n: ClusterNode) => {
    const p = stop(n);
    return opts.soft
      ? p.catch((e: Error) => opts.log?.('error', `could not stop etcd on ${n.name}: ${e.message.split('\n')[0]}`))
      : p;
  };
  if (leader) opts.log?.('info', `stopping the etcd followers first, then the leader (${leader.name})`);
  await Promise.all(nodes.filter((n) => n !== leader).map(one));
  if (leader) await one(leader);
}

/** The node whose endpoint reports itself as leader in `endpoint status` output. */
export function leaderNode(statusJson: string, nodes: ClusterNode[]): ClusterNode | undefined {
  const statuses = parseEndpointStatus(statusJson);
  const leaderId = statuses.find((s) => s.leader)?.leader;
  const endpoint = statuses.find((s) => s.memberId === leaderId)?.endpoint;
  if (!endpoint) return undefined;
  const host = new URL(endpoint).hostname.replace(/^\[|\]$/g, '');
  return nodes.find((n) => n.address === host);
}

/** The node whose stacked member leads, asked through the first node's local member (`endpoint status --cluster`). */
async function stackedLeader(
  deps: EtcdDeps,
  clusterId: string,
  nodes: ClusterNode[],
): Promise<ClusterNode | undefined> {
  const out = await deps.ops.etcdctl(
    clusterId,
    nodes[0].id,
    ['https://127.0.0.1:2379'],
    ['endpoint', 'status', '--cluster', '-w', 'json', ...LEADER_QUERY_TIMEOUTS],
    { tls: STACKED_ETCD_TLS, timeoutMs: 5_000 },
  );
  return leaderNode(out, nodes);
}
