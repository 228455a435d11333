// Cluster operations shared by initialize, health and the etcd jobs: run a named script on a
// node, talk to etcd with the node's own client certificates, read the Kubernetes API through a
// master (so neither the API nor a cluster-admin credential has to reach the desktop).
import type { ClusterNode } from '@shared/domain';
import type { InventoryStore } from '../inventory/store';
import { runScript, type ScriptLibrary } from '../remote/scripts';
import type { SshPool } from '../ssh/pool';
import type { ExecResult, SshTarget } from '../ssh/types';
import { parseDiscovery, type NodeFacts } from './facts';

export type Log = (stream: 'info' | 'cmd' | 'stdout' | 'stderr' | 'error', text: string) => void;

/** kubeadm's etcd PKI on every master: the healthcheck client may call any etcd API we need. */
export const STACKED_ETCD_TLS = {
  ca: '/etc/kubernetes/pki/etcd/ca.crt',
  cert: '/etc/kubernetes/pki/etcd/healthcheck-client.crt',
  key: '/etc/kubernetes/pki/etcd/healthcheck-client.key',
};

export interface OpsDeps {
  inventory: InventoryStore;
  pool: SshPool;
  scripts: ScriptLibrary;
  targetOf(clusterId: string, nodeId: string): SshTarget;
}

/** `KES_NAME=value` lines printed by our scripts. */
export function kesValues(stdout: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const m = /^KES_([A-Z0-9_]+)=(.*)$/.exec(line);
    if (m) out.set(m[1], m[2]);
  }
  return out;
}

export class ClusterOps {
  constructor(private readonly deps: OpsDeps) {}

  node(clusterId: string, nodeId: string): ClusterNode {
    return this.deps.inventory.node(clusterId, nodeId);
  }

  run(
    clusterId: string,
    nodeId: string,
    script: string,
    args: ReadonlyArray<string | number>,
    opts: { log?: Log; signal?: AbortSignal; timeoutMs?: number; check?: boolean } = {},
  ): Promise<ExecResult> {
    return runScript(this.deps.pool, this.deps.targetOf(clusterId, nodeId), this.deps.scripts, script, args, {
      log: opts.log,
      signal: opts.signal,
      timeoutMs: opts.timeoutMs ?? 120_000,
      check: opts.check,
    });
  }

  async discover(clusterId: string, nodeId: string, log?: Log): Promise<NodeFacts> {
    const res = await this.run(clusterId, nodeId, 'discover.sh', [], { log: quietStdout(log) });
    return parseDiscovery(res.stdout);
  }

  /** etcdctl on `nodeId` against `endpoints`, with the stacked healthcheck-client certs. */
  async etcdctl(
    clusterId: string,
    nodeId: string,
    endpoints: string[],
    args: string[],
    opts: { log?: Log; tls?: typeof STACKED_ETCD_TLS; timeoutMs?: number } = {},
  ): Promise<string> {
    const tls = opts.tls ?? STACKED_ETCD_TLS;
    const res = await this.run(
      clusterId,
      nodeId,
      'etcdctl.sh',
      [endpoints.join(','), tls.ca, tls.cert, tls.key, ...args],
      {
        log: quietStdout(opts.log),
        timeoutMs: opts.timeoutMs ?? 30_000,
      },
    );
    return res.stdout;
  }

  /** Call the API on a master's local apiserver, with that master's admin.conf (kube-api.sh). */
  async kubeApi(
    clusterId: string,
    nodeId: string,
    method: 'GET' | 'POST' | 'DELETE',
    path: string,
    body?: unknown,
    log?: Log,
    target: 'local' | 'endpoint' = 'local',
  ): Promise<{ status: number; body: string }> {
    // Positional: the body is passed when there is one, or (empty) when the target follows it.
    const args: string[] = [method, path];
    if (body !== undefined || target !== 'local')
      args.push(body === undefined ? '' : Buffer.from(JSON.stringify(body)).toString('base64'));
    if (target !== 'local') args.push(target);
    const res = await this.run(clusterId, nodeId, 'kube-api.sh', args, { log: quietStdout(log), timeoutMs: 30_000 });
    const v = kesValues(res.stdout);
    return { status: Number(v.get('HTTP') ?? 0), body: Buffer.from(v.get('BODY') ?? '', 'base64').toString('utf8') };
  }

  kubeGet(clusterId: string, nodeId: string, path: string, log?: Log): Promise<{ status: number; body: string }> {
    return this.kubeApi(clusterId, nodeId, 'GET', path, undefined, log);
  }

  /** GET through the control plane endpoint in `nodeId`'s admin.conf (the load balancer, on HA clusters). */
  endpointGet(clusterId: string, nodeId: string, path: string, log?: Log): Promise<{ status: number; body: string }> {
    return this.kubeApi(clusterId, nodeId, 'GET', path, undefined, log, 'endpoint');
  }
}

/** Machine output (base64 blobs, JSON) is not worth a log line each; keep commands and stderr. */
function quietStdout(log?: Log): Log | undefined {
  if (!log) return undefined;
  return (stream, text) => {
    if (stream !== 'stdout') log(stream, text);
  };
}
