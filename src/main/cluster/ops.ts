// Cluster operations shared by initialize, health and the etcd jobs: run a named script on a
// node, talk to etcd with the node's own client certificates, read the Kubernetes API through a
// master (so neither the API nor a cluster-admin credential has to reach the desktop).
import type { ClusterNode, ToolPaths } from '@shared/domain';
import type { InventoryStore } from '../inventory/store';
import { runScript, runScriptBatch, type ScriptCall, type ScriptLibrary } from '../remote/scripts';
import type { SshPool } from '../ssh/pool';
import type { ExecResult, SshTarget } from '../ssh/types';
import { DEFAULT_ETCD_PKI_DIR, parseDiscovery, type NodeFacts } from './facts';

export type Log = (stream: 'info' | 'cmd' | 'stdout' | 'stderr' | 'error', text: string) => void;

/** kubeadm's etcd client files in an etcd PKI folder: the healthcheck client may call any etcd API we need. */
export function stackedEtcdTls(dir: string): { ca: string; cert: string; key: string } {
  return { ca: `${dir}/ca.crt`, cert: `${dir}/healthcheck-client.crt`, key: `${dir}/healthcheck-client.key` };
}

/**
 * "The master's own kubeadm etcd client files": passed as `tls`, ClusterOps.etcdctl uses the files
 * in that master's etcd PKI folder as discovered (MasterFact.etcdPkiDir), kubeadm's default until then.
 */
export const STACKED_ETCD_TLS = stackedEtcdTls(DEFAULT_ETCD_PKI_DIR);

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
      tools: this.toolPaths(clusterId, nodeId),
    });
  }

  /**
   * Several scripts on one node in one SSH round trip (remote/scripts.ts runScriptBatch); each
   * result says how its script ended (no throw for an exit code).
   */
  runMany(
    clusterId: string,
    nodeId: string,
    calls: ReadonlyArray<ScriptCall>,
    opts: { log?: Log; signal?: AbortSignal; timeoutMs?: number } = {},
  ): Promise<ExecResult[]> {
    return runScriptBatch(this.deps.pool, this.deps.targetOf(clusterId, nodeId), this.deps.scripts, calls, {
      log: quietStdout(opts.log),
      signal: opts.signal,
      timeoutMs: opts.timeoutMs ?? 120_000,
      tools: this.toolPaths(clusterId, nodeId),
    });
  }

  /**
   * Where the node's etcd tools are (absolute paths, as last discovered or installed there):
   * every script run gets them, so no script depends on PATH (sudo's secure_path often lacks
   * /usr/local/bin). Empty before the node was ever looked at.
   */
  toolPaths(clusterId: string, nodeId: string): Partial<ToolPaths> {
    try {
      return this.deps.inventory.get(clusterId).facts?.nodeTools?.[nodeId] ?? {};
    } catch {
      return {};
    }
  }

  /** The master's kubeadm etcd client files, in its etcd PKI folder as discovered. */
  stackedTls(clusterId: string, nodeId: string): { ca: string; cert: string; key: string } {
    return stackedEtcdTls(this.etcdPkiDir(clusterId, nodeId));
  }

  /** The master's etcd PKI folder as discovered (kubeadm's default before discovery). */
  etcdPkiDir(clusterId: string, nodeId: string): string {
    try {
      return (
        this.deps.inventory.get(clusterId).facts?.masters.find((m) => m.nodeId === nodeId)?.etcdPkiDir ??
        DEFAULT_ETCD_PKI_DIR
      );
    } catch {
      return DEFAULT_ETCD_PKI_DIR;
    }
  }

  /** Remember where a node's etcd tools are (after discovery or an install); see toolPaths. */
  async recordTools(clusterId: string, nodeId: string, tools: ToolPaths, versions?: Partial<ToolPaths>): Promise<void> {
    await this.deps.inventory.recordNodeTools(clusterId, nodeId, tools, versions);
  }

  async discover(clusterId: string, nodeId: string, log?: Log): Promise<NodeFacts> {
    const res = await this.run(clusterId, nodeId, DISCOVER.name, DISCOVER.args, { log: quietStdout(log) });
    return this.discovered(clusterId, nodeId, res.stdout);
  }

  /** What discover.sh printed, parsed; the node's tool paths are recorded on the way. */
  async discovered(clusterId: string, nodeId: string, stdout: string): Promise<NodeFacts> {
    const f = parseDiscovery(stdout);
    const { etcd, etcdctl, etcdutl } = f.tools;
    await this.recordTools(clusterId, nodeId, { etcd, etcdctl, etcdutl }, f.versions);
    return f;
  }

  /** The etcdctl.sh call for `endpoints` with the stacked healthcheck-client certs (or `tls`). */
  etcdctlCall(
    clusterId: string,
    nodeId: string,
    endpoints: string[],
    args: string[],
    tls = STACKED_ETCD_TLS,
  ): ScriptCall {
    const t = tls === STACKED_ETCD_TLS ? this.stackedTls(clusterId, nodeId) : tls;
    return { name: 'etcdctl.sh', args: [endpoints.join(','), t.ca, t.cert, t.key, ...args] };
  }

  /** etcdctl on `nodeId` against `endpoints`, with the stacked healthcheck-client certs. */
  async etcdctl(
    clusterId: string,
    nodeId: string,
    endpoints: string[],
    args: string[],
    opts: { log?: Log; tls?: typeof STACKED_ETCD_TLS; timeoutMs?: number } = {},
  ): Promise<string> {
    const call = this.etcdctlCall(clusterId, nodeId, endpoints, args, opts.tls);
    const res = await this.run(clusterId, nodeId, call.name, call.args, {
      log: quietStdout(opts.log),
      timeoutMs: opts.timeoutMs ?? 30_000,
    });
    return res.stdout;
  }

  /** Call the API on a master's local apiserver, with that master's admin.conf (kube-api.sh). */
  async kubeApi(
    clusterId: string,
    nodeId: string,
    method: 'GET' | 'POST' | 'PUT' | 'DELETE',
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

  /**
   * Several GETs on a master's local apiserver in one kube-api.sh run (one SSH round trip, one TLS
   * connection): the answers in the order of `paths` (status 0: no answer for that path).
   */
  async kubeGetMany(
    clusterId: string,
    nodeId: string,
    paths: string[],
    log?: Log,
  ): Promise<{ status: number; body: string }[]> {
    const call = kubeGetsCall(paths);
    const res = await this.run(clusterId, nodeId, call.name, call.args, { log: quietStdout(log), timeoutMs: 30_000 });
    return kubeGetsAnswers(paths, res.stdout);
  }

  kubeGet(clusterId: string, nodeId: string, path: string, log?: Log): Promise<{ status: number; body: string }> {
    return this.kubeApi(clusterId, nodeId, 'GET', path, undefined, log);
  }

  /** GET through the control plane endpoint in `nodeId`'s admin.conf (the load balancer, on HA clusters). */
  endpointGet(clusterId: string, nodeId: string, path: string, log?: Log): Promise<{ status: number; body: string }> {
    return this.kubeApi(clusterId, nodeId, 'GET', path, undefined, log, 'endpoint');
  }
}

/** discover.sh: what a node holds (manifests, parked ones, ports, tools, units). */
export const DISCOVER: ScriptCall = { name: 'discover.sh', args: [] };

/** Several GETs on a master's local apiserver in one kube-api.sh run. */
export function kubeGetsCall(paths: string[]): ScriptCall {
  return { name: 'kube-api.sh', args: ['GETS', 'local', ...paths] };
}

/** kube-api.sh GETS's answers in the order of `paths` (status 0: no answer for that path). */
export function kubeGetsAnswers(paths: string[], stdout: string): { status: number; body: string }[] {
  const v = kesValues(stdout);
  return paths.map((_, i) => ({
    status: Number(v.get(`HTTP_${i}`) ?? 0),
    body: Buffer.from(v.get(`BODY_${i}`) ?? '', 'base64').toString('utf8'),
  }));
}

/** Machine output (base64 blobs, JSON) is not worth a log line each; keep commands and stderr. */
function quietStdout(log?: Log): Log | undefined {
  if (!log) return undefined;
  return (stream, text) => {
    if (stream !== 'stdout') log(stream, text);
  };
}
