// The app's private transfer folder on a node (/var/lib/kube-etcd-switch/transfer/<login user>,
// see transfer-dir.sh) holds snapshot copies — every secret of the cluster — only while a job
// needs them. Two ways out, whatever happens:
// - at the end of every job that used a node's folder (succeeded, failed, cancelled), the files
//   the app names there are removed (registered by transferDir through the job's scope);
// - after a crash nothing ran at the end, so initializing the cluster removes them on every
//   master and etcd node (unless this app is running a job on that cluster right now).
// transfer-clean.sh removes only regular files whose names the app gives, never anything else.
import type { ClusterNode } from '@shared/domain';
import type { Log } from '../cluster/ops';
import { atJobEnd } from '../jobs/scope';
import type { EtcdDeps } from './deps';

/** Remove the app's files from `node`'s transfer folder; returns the paths removed. */
export async function cleanTransferDir(
  deps: EtcdDeps,
  clusterId: string,
  node: ClusterNode,
  log?: Log,
): Promise<string[]> {
  const res = await deps.ops.run(clusterId, node.id, 'transfer-clean.sh', [node.user], { log, timeoutMs: 30_000 });
  return [...res.stdout.matchAll(/^KES_REMOVED=(.*)$/gm)].map((m) => m[1]);
}

/** Clean `node`'s transfer folder when the current job ends (no-op outside a job). */
export function cleanAtJobEnd(deps: EtcdDeps, clusterId: string, node: ClusterNode): void {
  atJobEnd(`transfer folder on ${node.name}`, async (log) => {
    const removed = await cleanTransferDir(deps, clusterId, node, log);
    log(
      'info',
      removed.length
        ? `removed ${removed.length} file(s) the job left in the transfer folder on ${node.name}`
        : `nothing left in the transfer folder on ${node.name}`,
    );
  });
}

export interface TransferCleanResult {
  node: string;
  removed: string[];
  error?: string;
}

/**
 * Clean the transfer folders of several nodes side by side (leftovers of a crash), each given up
 * after `timeoutMs` (a node that is down must not hold up whoever asked). Never throws.
 */
export async function cleanTransferDirs(
  deps: EtcdDeps,
  clusterId: string,
  nodes: ClusterNode[],
  log?: Log,
  timeoutMs = 15_000,
): Promise<TransferCleanResult[]> {
  return Promise.all(
    nodes.map(async (node): Promise<TransferCleanResult> => {
      let timer: NodeJS.Timeout | undefined;
      const limit = new Promise<never>((_, rej) => {
        timer = setTimeout(() => rej(new Error(`no answer within ${timeoutMs / 1000} s`)), timeoutMs);
      });
      try {
        const removed = await Promise.race([cleanTransferDir(deps, clusterId, node, log), limit]);
        if (removed.length)
          log?.('info', `removed ${removed.length} file(s) left in the transfer folder on ${node.name}`);
        return { node: node.name, removed };
      } catch (e) {
        const error = (e as Error).message.split('\n')[0];
        log?.('error', `could not clean the transfer folder on ${node.name}: ${error}`);
        return { node: node.name, removed: [], error };
      } finally {
        clearTimeout(timer);
      }
    }),
  );
}
