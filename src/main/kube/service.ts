// The cluster-lifecycle operations the handlers call that are not jobs (jobs go through
// EtcdService.plan like every other kind).
import { promises as fs } from 'node:fs';
import type { PreflightReport } from '@shared/preflight';
import { ApiError } from '../api/errors';
import { readFiles } from '../etcd/files';
import type { EtcdDeps } from '../etcd/deps';
import type { ServiceCore } from '../services';
import { DEFAULT_LB_PORT, runPreflight, type PreflightNode } from './preflight';

const ADMIN_CONF = '/etc/kubernetes/admin.conf';

function etcdDeps(svc: ServiceCore): EtcdDeps {
  return {
    ops: svc.ops,
    inventory: svc.inventory,
    pool: svc.pool,
    snapshots: svc.snapshots,
    states: svc.stateVault,
    targetOf: svc.targetOf,
  };
}

/** Pre-flight of the cluster's lb/master/worker nodes, each reached as the inventory says. */
export function clusterPreflight(
  svc: ServiceCore,
  clusterId: string,
  lbPort = DEFAULT_LB_PORT,
): Promise<PreflightReport> {
  const nodes: (PreflightNode & { id: string })[] = svc.inventory
    .get(clusterId)
    .nodes.map((n) => ({ id: n.id, name: n.name, address: n.address, port: n.port, user: n.user, roles: n.roles }));
  return runPreflight(
    { pool: svc.pool, scripts: svc.scripts, targetOf: (n) => svc.targetOf(clusterId, n.id!) },
    nodes,
    { lbPort },
  );
}

/**
 * The cluster's admin kubeconfig (cluster-admin credentials) saved where the user chose — only on
 * request, never by default: read from a master's /etc/kubernetes/admin.conf (its server is the
 * control-plane endpoint, the load balancer), written 0600, never over an existing file.
 */
export async function exportKubeconfig(
  svc: ServiceCore,
  clusterId: string,
  path: string,
): Promise<{ path: string; bytes: number }> {
  const cluster = svc.inventory.get(clusterId);
  const masterIds =
    cluster.facts?.masters.map((m) => m.nodeId) ??
    cluster.nodes.filter((n) => n.roles.includes('master')).map((n) => n.id);
  if (!masterIds.length) throw new ApiError('NOT_INITIALIZED', 'The cluster has no master to read admin.conf from');
  let lastError = '';
  for (const id of masterIds) {
    try {
      const { files } = await readFiles(etcdDeps(svc), clusterId, id, [ADMIN_CONF]);
      const content = files.find((f) => f.path === ADMIN_CONF)?.content;
      if (!content) {
        lastError = `no ${ADMIN_CONF} on ${svc.inventory.node(clusterId, id).name}`;
        continue;
      }
      const fh = await fs.open(path, 'wx', 0o600).catch((e: NodeJS.ErrnoException) => {
        throw new ApiError(
          e.code === 'EEXIST' ? 'ALREADY_EXISTS' : 'IO_ERROR',
          e.code === 'EEXIST' ? `${path} exists: choose a new file` : e.message,
        );
      });
      try {
        await fh.chmod(0o600); // the umask cannot widen it, but make it exact
        await fh.writeFile(content);
      } finally {
        await fh.close();
      }
      return { path, bytes: content.length };
    } catch (e) {
      if (e instanceof ApiError) throw e;
      lastError = (e as Error).message.split('\n')[0];
    }
  }
  throw new ApiError('REMOTE_FAILED', `Could not read ${ADMIN_CONF} from any master (${lastError})`);
}
