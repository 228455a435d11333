// Moving configuration files to and from nodes: read a set of files (collect-files.sh), and put
// one file in place atomically (SFTP to the private transfer folder, then install-file.sh as root).
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { ClusterNode } from '@shared/domain';
import type { Log } from '../cluster/ops';
import { transferDir, type EtcdDeps } from './deps';

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
  deps: EtcdDeps,
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

/** Put `content` at `path` on the node with `mode`, atomically. */
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
  const local = join(tmpdir(), `kes-put-${randomUUID()}`);
  await fs.writeFile(local, content, { mode: 0o600 });
  const remote = posix.join(dir, `put-${randomUUID()}`);
  try {
    log?.('info', `write ${path} on ${node.name} (${Buffer.byteLength(content)} bytes, mode ${mode.toString(8)})`);
    await deps.pool.upload(deps.targetOf(clusterId, node.id), local, remote);
    await deps.ops.run(clusterId, node.id, 'install-file.sh', [remote, path, mode.toString(8).padStart(4, '0')], {
      log,
    });
  } finally {
    await fs.rm(local, { force: true });
  }
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

/** Stop (park) or start (unpark) a static pod and wait for its port. */
export async function staticPod(
  deps: EtcdDeps,
  clusterId: string,
  node: ClusterNode,
  action: 'park' | 'unpark',
  name: 'etcd' | 'kube-apiserver',
  opts: { log?: Log; timeoutS?: number } = {},
): Promise<void> {
  const port = name === 'etcd' ? 2379 : 6443;
  await deps.ops.run(clusterId, node.id, 'static-pod.sh', [action, name, port, opts.timeoutS ?? 120], {
    log: opts.log,
    timeoutMs: ((opts.timeoutS ?? 120) + 30) * 1000,
  });
}
