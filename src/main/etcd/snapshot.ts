// Save a snapshot from the cluster's etcd into the vault, from one endpoint (as etcd requires)
// reached from a healthy master. By default etcd's snapshot stream is read on the desktop through
// an SSH tunnel while etcd produces it (snapshot-stream.ts): nothing is staged on the node. When
// the node's sshd does not forward, `snapshot save` on the node + SFTP download (hashing on the way)
// is the fallback, its remote copy always removed. Either way etcd's trailing hash is checked on
// the bytes that arrived before the vault commits; the job log says which way was used.
import { promises as fs } from 'node:fs';
import { posix } from 'node:path';
import { randomUUID } from 'node:crypto';
import { kesValues, type Log } from '../cluster/ops';
import { isLocalEtcd } from '../cluster/facts';
import { parseEndpointStatus, parseSnapshotStatus } from '../cluster/etcdjson';
import type { SnapshotMeta } from '../vault/snapshots';
import { SnapshotHasher } from '../vault/snapfile';
import type { SnapshotSource } from '@shared/jobs';
import type { ClusterNode } from '@shared/domain';
import { boltStatus } from '../vault/boltstatus';
import { WrittenSoFar } from '../vault/written-so-far';
import { readFiles } from './files';
import { streamSnapshotFromMember } from './snapshot-stream';
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
  /**
   * How: stream etcd's snapshot through an SSH tunnel, falling back to `snapshot save` on the node
   * + SFTP when that does not work ('auto', the default); or only one of the two.
   */
  via?: 'auto' | 'stream' | 'save';
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
    const incoming = await deps.snapshots.begin();
    try {
      const ctx: PathContext = { deps, clusterId, node, endpoint, partPath: incoming.partPath, req, log };
      let got: Taken | undefined;
      if (req.via !== 'save') {
        try {
          got = await streamed(ctx);
        } catch (e) {
          if (req.signal?.aborted || req.via === 'stream') throw e;
          log(
            'info',
            `streaming did not work (${(e as Error).message.split('\n')[0]}): falling back to snapshot save on ${node.name} + SFTP`,
          );
        }
      }
      if (!got) {
        await fs.rm(incoming.partPath, { force: true });
        got = await savedAndDownloaded(ctx);
      }
      const { status } = got;
      log(
        'info',
        `snapshot of the ${side} etcd (${endpoint}) via ${node.name}, ${got.path}: revision ${status.revision}, ${status.totalKey} keys, ${status.totalSize} bytes`,
      );
      const meta = await incoming.commit(
        {
          note: req.note,
          revision: status.revision,
          hash: status.hash,
          totalKeys: status.totalKey,
          etcdVersion: got.version ?? facts.etcdVersion,
          source: {
            kind: 'cluster',
            clusterId,
            clusterName: cluster.name,
            mode: facts.mode,
            node: node.name,
            originalName: null,
            etcd: side,
          },
        },
        got.sha256,
        got.hashed,
      );
      log('info', `snapshot ${meta.id} saved in the vault (${meta.size} bytes, sha256 ${meta.sha256.slice(0, 12)}…)`);
      return meta;
    } catch (e) {
      await incoming.abort();
      if (req.signal?.aborted) throw e;
      failures.push(`${node.name}: ${(e as Error).message.split('\n')[0]}`);
      log('error', `snapshot via ${node.name} failed: ${(e as Error).message}`);
    }
  }
  throw new EtcdOpError('SNAPSHOT_FAILED', `No master could take a snapshot: ${failures.join('; ')}`);
}

interface PathContext {
  deps: EtcdDeps;
  clusterId: string;
  node: ClusterNode;
  endpoint: string;
  partPath: string;
  req: SnapshotRequest;
  log: Log;
}

/** What either way of taking a snapshot yields for the vault commit. */
interface Taken {
  path: 'streamed' | 'saved on the node + SFTP';
  status: { revision: number; hash: number; totalKey: number; totalSize: number };
  version: string | null;
  hashed: SnapshotHasher;
  /** sha256 the source computed, when it did (the vault compares). */
  sha256?: string;
}

/**
 * etcd's snapshot stream read on the desktop, straight from the member's client port when the
 * desktop can reach it, else through an SSH tunnel, with the node's etcd client certificate read
 * into memory (collect-files.sh: its output is never logged). Nothing is written on the node; the
 * file is described (revision, keys, hash) on the desktop.
 */
async function streamed({ deps, clusterId, node, endpoint, partPath, req, log }: PathContext): Promise<Taken> {
  const paths = deps.ops.stackedTls(clusterId, node.id);
  const { files } = await readFiles(deps, clusterId, node.id, [paths.ca, paths.cert, paths.key], [], log);
  const [ca, cert, key] = files.map((f) => f.content);
  if (!ca || !cert || !key)
    throw new EtcdOpError('NO_CLIENT_CERT', `No etcd client certificate on ${node.name} (${paths.cert}, ${paths.key})`);
  const direct = directUrl(deps, clusterId, node, endpoint);
  log(
    'info',
    direct
      ? `streaming the snapshot from ${direct} straight from this computer, through SSH from ${node.name} if it cannot reach it (nothing is written on the node)`
      : `streaming the snapshot from ${endpoint} through SSH from ${node.name} (nothing is written on the node)`,
  );
  // The file is described (bbolt walk) while it arrives, page by page behind the writer: the
  // status is there with the last byte, not one more pass over the file later.
  const written = new WrittenSoFar();
  const described = boltStatus(partPath, { signal: req.signal, written: (end) => written.until(end) });
  described.catch(() => undefined); // the stream's own error comes first
  try {
    const r = await streamSnapshotFromMember({
      pool: deps.pool,
      target: deps.targetOf(clusterId, node.id),
      endpoint,
      direct,
      tls: { ca, cert, key },
      partPath,
      signal: req.signal,
      onProgress: req.onProgress,
      onWritten: (n) => written.advance(n),
      log,
    }).finally(() => written.finish());
    const st = await described;
    // Key counts as the member's own release counts them (etcdutl 3.6 counts live keys; 3.4 and
    // 3.5 count every bucket entry), as the node's tool would have on the save + SFTP way.
    const totalKey = atLeast36(r.serverVersion) ? st.liveKeys : st.totalKey;
    return { path: 'streamed', status: { ...st, totalKey }, version: r.serverVersion, hashed: r.hashed };
  } finally {
    key.fill(0);
  }
}

/**
 * The member's client URL as the desktop may reach it, or null: streaming straight is off
 * (Settings), the node is reached through a jump host (its network is not the desktop's), or the
 * member only listens on loopback (127.0.0.1 from the desktop is the desktop itself).
 */
export function directUrl(deps: EtcdDeps, clusterId: string, node: ClusterNode, endpoint: string): string | null {
  if (deps.streamDirect && !deps.streamDirect()) return null;
  const nodes = deps.inventory.get(clusterId).nodes;
  const behindJump = (host: string) => nodes.some((n) => n.address === host && n.jumpNodeId);
  if (node.jumpNodeId) return null;
  let url: string | undefined = endpoint;
  if (isLoopbackUrl(endpoint)) {
    const member = requireFacts(deps, clusterId).members.find((m) => m.kind === 'stacked' && m.nodeId === node.id);
    url = member?.clientUrls.find((u) => /^https?:\/\//.test(u) && !isLoopbackUrl(u));
  }
  if (!url) return null;
  return behindJump(new URL(url).hostname.replace(/^\[(.*)\]$/, '$1')) ? null : url;
}

function isLoopbackUrl(url: string): boolean {
  try {
    const h = new URL(url).hostname.replace(/^\[(.*)\]$/, '$1');
    return h === 'localhost' || h === '::1' || /^127\./.test(h);
  } catch {
    return true; // not a URL the desktop could dial
  }
}

/**
 * `snapshot save` into the node's transfer folder, then SFTP down hashing on the way (the fallback
 * when the node's sshd does not forward). The remote copy is always removed.
 */
async function savedAndDownloaded({
  deps,
  clusterId,
  node,
  endpoint,
  partPath,
  req,
  log,
}: PathContext): Promise<Taken> {
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
    const t = await deps.pool.download(deps.targetOf(clusterId, node.id), remote, partPath, {
      signal: req.signal,
      onProgress: req.onProgress,
      onChunk: (c) => hashed.update(c),
    });
    const status = parseSnapshotStatus((await describe).get('STATUS') ?? '{}');
    return { path: 'saved on the node + SFTP', status, version: ep?.version ?? null, hashed, sha256: t.sha256 };
  } finally {
    if (remote)
      await deps.ops.run(clusterId, node.id, 'remove-file.sh', [remote], { check: false }).catch(() => undefined);
  }
}

function atLeast36(version: string | null): boolean {
  const m = /^(\d+)\.(\d+)/.exec(version ?? '');
  return !!m && (Number(m[1]) > 3 || (Number(m[1]) === 3 && Number(m[2]) >= 6));
}
