// Save a snapshot from the cluster's etcd into the vault: `snapshot save` on a healthy master
// (one endpoint, as etcd requires), stream it down over SFTP hashing on the way, compare with the
// node's own sha256, and only then commit it to the vault. The remote copy is always removed.
import { posix } from 'node:path';
import { randomUUID } from 'node:crypto';
import { kesValues, type Log } from '../cluster/ops';
import { isLocalEtcd } from '../cluster/facts';
import { parseEndpointStatus, parseSnapshotStatus } from '../cluster/etcdjson';
import type { SnapshotMeta } from '../vault/snapshots';
import { SnapshotHasher } from '../vault/snapfile';
import type { SnapshotSource } from '@shared/jobs';
import { EtcdOpError, masterNodes, requireFacts, transferDir, type EtcdDeps } from './deps';
import { externalMembers } from './external';
import { clientUrl } from './external-config';

export interface SnapshotRequest {
  note: string;
  /**
   * Which etcd: the one the apiservers use (default), or the embedded or external one by name — the
   * standby one too (e.g. an external etcd just restored, before a switch).
   */
  source?: SnapshotSource;
  /** Master to take it from; default: the first that works. */
  nodeId?: string;
  signal?: AbortSignal;
  log?: Log;
  onProgress?: (done: number, total: number) => void;
}

export async function takeSnapshot(deps: EtcdDeps, clusterId: string, req: SnapshotRequest): Promise<SnapshotMeta> {
  const facts = requireFacts(deps, clusterId);
  const cluster = deps.inventory.get(clusterId);
  const log = req.log ?? (() => undefined);
  const masters = masterNodes(deps, clusterId).filter((n) => !req.nodeId || n.id === req.nodeId);
  if (!masters.length) throw new EtcdOpError('NOT_FOUND', 'No such master');
  const addresses = masterNodes(deps, clusterId).map((n) => n.address);
  const source = req.source ?? 'in-use';
  const externalUrls =
    source === 'external' ? (await externalMembers(deps, clusterId, log)).map((m) => clientUrl(m.node.address)) : [];
  if (source === 'external' && !externalUrls.length)
    throw new EtcdOpError('NO_EXTERNAL', 'No external etcd is provisioned: there is nothing to snapshot there');
  const failures: string[] = [];
  for (const [i, node] of masters.entries()) {
    const master = facts.masters.find((m) => m.nodeId === node.id)!;
    // One endpoint (etcd requires it): the member on this master when it is stacked, else an
    // external one (a different one per master tried, so one member down does not stop it).
    const servers =
      source === 'external'
        ? [externalUrls[i % externalUrls.length]]
        : source === 'embedded'
          ? ['https://127.0.0.1:2379']
          : (master.etcdServers ?? ['https://127.0.0.1:2379']);
    const endpoint = servers.find((u) => isLocalEtcd(u, addresses)) ? 'https://127.0.0.1:2379' : servers[0];
    const side = endpoint === 'https://127.0.0.1:2379' ? 'embedded' : 'external';
    const mode = facts.mode;
    const incoming = await deps.snapshots.begin();
    let remote: string | null = null;
    try {
      const { dir } = await transferDir(deps, clusterId, node, log);
      remote = posix.join(dir, `snapshot-${randomUUID()}.db`);
      const res = await deps.ops.run(
        clusterId,
        node.id,
        'snapshot-save.sh',
        [
          endpoint,
          ...(({ ca, cert, key }) => [ca, cert, key])(deps.ops.stackedTls(clusterId, node.id)),
          remote,
          node.user,
          '--no-describe',
        ],
        { log: (s, t) => s !== 'stdout' && log(s, t), signal: req.signal, timeoutMs: 30 * 60_000 },
      );
      const ep = parseEndpointStatus(kesValues(res.stdout).get('ENDPOINT_STATUS') ?? '[]')[0];
      // Describe the file on the node (snapshot status) while it downloads. No remote sha256:
      // the vault checks etcd's own trailing hash on the very bytes that arrive, which proves
      // the whole way from etcd to the vault (and one less full read of the file).
      const describe = deps.ops
        .run(clusterId, node.id, 'snapshot-status.sh', [remote, '--no-sha256'], {
          log: (s, t) => s !== 'stdout' && log(s, t),
          timeoutMs: 30 * 60_000,
        })
        .then((r) => kesValues(r.stdout));
      describe.catch(() => undefined);
      const hashed = new SnapshotHasher();
      const t = await deps.pool.download(deps.targetOf(clusterId, node.id), remote, incoming.partPath, {
        signal: req.signal,
        onProgress: req.onProgress,
        onChunk: (c) => hashed.update(c),
      });
      const v = await describe;
      const status = parseSnapshotStatus(v.get('STATUS') ?? '{}');
      log(
        'info',
        `snapshot of the ${side} etcd (${endpoint}) via ${node.name}: revision ${status.revision}, ${status.totalKey} keys, ${status.totalSize} bytes`,
      );
      const meta = await incoming.commit(
        {
          note: req.note,
          revision: status.revision,
          hash: status.hash,
          totalKeys: status.totalKey,
          etcdVersion: ep?.version ?? facts.etcdVersion,
          source: {
            kind: 'cluster',
            clusterId,
            clusterName: cluster.name,
            mode,
            node: node.name,
            originalName: null,
            etcd: side,
          },
        },
        t.sha256,
        hashed,
      );
      log('info', `snapshot ${meta.id} saved in the vault (${meta.size} bytes, sha256 ${meta.sha256.slice(0, 12)}…)`);
      return meta;
    } catch (e) {
      await incoming.abort();
      if (req.signal?.aborted) throw e;
      failures.push(`${node.name}: ${(e as Error).message.split('\n')[0]}`);
      log('error', `snapshot via ${node.name} failed: ${(e as Error).message}`);
    } finally {
      if (remote)
        await deps.ops.run(clusterId, node.id, 'remove-file.sh', [remote], { check: false }).catch(() => undefined);
    }
  }
  throw new EtcdOpError('SNAPSHOT_FAILED', `No master could take a snapshot: ${failures.join('; ')}`);
}
