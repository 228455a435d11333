// What the etcd operations need, passed in (no globals), plus small helpers they share.
import { randomUUID } from 'node:crypto';
import type { ClusterFacts, ClusterNode } from '@shared/domain';
import type { ClusterOps, Log } from '../cluster/ops';
import { kesValues } from '../cluster/ops';
import type { InventoryStore } from '../inventory/store';
import type { SshPool } from '../ssh/pool';
import type { SshTarget } from '../ssh/types';
import type { SnapshotVault } from '../vault/snapshots';
import type { StateVault } from '../vault/states';
import { cleanAtJobEnd } from './transfers';

export interface EtcdDeps {
  ops: ClusterOps;
  inventory: InventoryStore;
  pool: SshPool;
  snapshots: SnapshotVault;
  states: StateVault;
  targetOf(clusterId: string, nodeId: string): SshTarget;
  /**
   * How long parking a static pod waits for it to stop (static-pod.sh's timeout; its container-
   * runtime fallback starts at half of that, 20 s at most). Default 120 s. Not user-facing: tests
   * of a kubelet that will not let go shorten it.
   */
  parkTimeoutS?: number;
  /**
   * Whether a snapshot may be streamed straight from the member's client port when the desktop
   * can reach it (Settings; default yes). No: always through an SSH tunnel.
   */
  streamDirect?: () => boolean;
}

export class EtcdOpError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'EtcdOpError';
  }
}

export function requireFacts(deps: EtcdDeps, clusterId: string): ClusterFacts {
  const facts = deps.inventory.get(clusterId).facts;
  if (!facts) throw new EtcdOpError('NOT_INITIALIZED', 'Initialize the cluster first (Cluster → Initialize)');
  return facts;
}

export function masterNodes(deps: EtcdDeps, clusterId: string): ClusterNode[] {
  const facts = requireFacts(deps, clusterId);
  const nodes = deps.inventory.get(clusterId).nodes;
  return facts.masters.map((m) => {
    const n = nodes.find((x) => x.id === m.nodeId);
    if (!n)
      throw new EtcdOpError('TOPOLOGY_CHANGED', `Master ${m.name} is no longer in the inventory; initialize again`);
    return n;
  });
}

/**
 * The private transfer folder on a node (see transfer-dir.sh), created on first use. Inside a job,
 * the app's files in it are removed when the job ends, whatever the outcome (transfers.ts).
 */
export async function transferDir(
  deps: EtcdDeps,
  clusterId: string,
  node: ClusterNode,
  log?: Log,
): Promise<{ dir: string; freeKb: number }> {
  const res = await deps.ops.run(clusterId, node.id, 'transfer-dir.sh', [node.user], { log });
  const v = kesValues(res.stdout);
  const dir = v.get('DIR');
  if (!dir) throw new EtcdOpError('REMOTE_FAILED', `transfer-dir.sh printed no folder on ${node.name}`);
  cleanAtJobEnd(deps, clusterId, node);
  return { dir, freeKb: Number(v.get('FREE_KB') ?? 0) };
}

/** A short unique suffix for data dirs and tokens of one operation. */
export function opSuffix(): string {
  const d = new Date();
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}-${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}-${randomUUID().slice(0, 4)}`;
}

/** Poll `check` until it returns true or the deadline passes (checks stop early when cancelled). */
export async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  opts: { timeoutMs: number; intervalMs?: number; signal?: AbortSignal; log?: Log },
): Promise<void> {
  const end = Date.now() + opts.timeoutMs;
  let last = '';
  for (;;) {
    try {
      if (await check()) return;
    } catch (e) {
      last = (e as Error).message.split('\n')[0];
    }
    if (Date.now() > end)
      throw new EtcdOpError(
        'HEALTH_GATE_FAILED',
        `Timed out after ${Math.round(opts.timeoutMs / 1000)} s waiting for ${what}${last ? ` (last error: ${last})` : ''}`,
      );
    if (opts.signal?.aborted) throw new EtcdOpError('CANCELLED', `Cancelled while waiting for ${what}`);
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 1000));
  }
}
