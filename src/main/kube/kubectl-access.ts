// "kubectl access" for the local console, created on request: admin.conf is read from a master
// over SSH into memory, a local listener on 127.0.0.1:<ephemeral port> forwards each connection
// through that master's pooled SSH connection (direct-tcpip) to the control-plane endpoint, and a
// kubeconfig pointing at the listener (tls-server-name = the endpoint's name) is written 0600 in a
// private folder of the data dir. close() deletes the file and closes the listener; it runs when
// the console closes, when the app quits, and (files only) at the next start after a crash.
import { promises as fs, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ApiError } from '../api/errors';
import { readFiles } from '../etcd/files';
import type { ClusterOps } from '../cluster/ops';
import type { InventoryStore } from '../inventory/store';
import type { SshPool } from '../ssh/pool';
import { openTunnel } from '../ssh/tunnel';
import type { SshTarget } from '../ssh/types';
import { ADMIN_CONF, tunnelKubeconfig } from './kubeconfig';

export interface KubectlAccessDeps {
  inventory: InventoryStore;
  ops: ClusterOps;
  pool: SshPool;
  targetOf(clusterId: string, nodeId: string): SshTarget;
  dataDir: string;
  log?: (line: string) => void;
}

export interface KubectlAccess {
  cluster: string;
  path: string;
  port: number;
  /** The master the tunnel goes through (and admin.conf came from). */
  via: string;
  /** admin.conf's server (the control-plane endpoint). */
  server: string;
  serverName: string;
  close(): Promise<void>;
}

/** Folder of the access files in the data dir (removed whole at start: leftovers of a crash). */
export const accessRoot = (dataDir: string) => join(dataDir, 'kubectl-access');

const open = new Set<string>();
const live = new Set<KubectlAccess>();

/** Close every access still open (the app quits). */
export async function closeAllKubectlAccess(): Promise<void> {
  await Promise.all([...live].map((a) => a.close()));
}
let exitHook = false;
/** Last resort: the process ends without close() (the files only; the listener ends with it). */
function removeOnExit(dir: string): void {
  open.add(dir);
  if (exitHook) return;
  exitHook = true;
  process.once('exit', () => {
    for (const d of open) rmSync(d, { recursive: true, force: true });
  });
}

export async function clearAccessLeftovers(dataDir: string): Promise<void> {
  await fs.rm(accessRoot(dataDir), { recursive: true, force: true });
}

async function readAdminConf(
  deps: KubectlAccessDeps,
  clusterId: string,
): Promise<{ nodeId: string; name: string; text: string }> {
  const cluster = deps.inventory.get(clusterId);
  const masterIds =
    cluster.facts?.masters.map((m) => m.nodeId) ??
    cluster.nodes.filter((n) => n.roles.includes('master')).map((n) => n.id);
  if (!masterIds.length) throw new ApiError('NOT_INITIALIZED', 'The cluster has no master to read admin.conf from');
  let lastError = '';
  for (const id of masterIds) {
    const name = deps.inventory.node(clusterId, id).name;
    try {
      const { files } = await readFiles(deps, clusterId, id, [ADMIN_CONF]);
      const content = files.find((f) => f.path === ADMIN_CONF)?.content;
      if (content) return { nodeId: id, name, text: content.toString('utf8') };
      lastError = `no ${ADMIN_CONF} on ${name}`;
    } catch (e) {
      lastError = `${name}: ${(e as Error).message.split('\n')[0]}`;
    }
  }
  throw new ApiError('REMOTE_FAILED', `Could not read ${ADMIN_CONF} from any master (${lastError})`);
}

export async function openKubectlAccess(deps: KubectlAccessDeps, clusterId: string): Promise<KubectlAccess> {
  const log = deps.log ?? (() => undefined);
  const cluster = deps.inventory.get(clusterId);
  const admin = await readAdminConf(deps, clusterId);
  // Parse once before anything is opened (a broken admin.conf opens nothing); port comes later.
  const { endpoint } = tunnelKubeconfig(admin.text, 1);
  const target = deps.targetOf(clusterId, admin.nodeId);

  // A local port that leads to the control-plane endpoint as the master sees it (ssh -L).
  const tunnel = await openTunnel((signal) => deps.pool.forward(target, endpoint.host, endpoint.port, signal), {
    onError: (e) => log(`kubectl access ${cluster.name}: tunnel through ${admin.name} failed: ${e.message}`),
  });
  const port = tunnel.port;
  const made = tunnelKubeconfig(admin.text, port);

  await fs.mkdir(accessRoot(deps.dataDir), { recursive: true, mode: 0o700 });
  const dir = await fs.mkdtemp(join(accessRoot(deps.dataDir), 'c-'));
  await fs.chmod(dir, 0o700);
  const path = join(dir, 'kubeconfig');
  removeOnExit(dir);
  try {
    const fh = await fs.open(path, 'wx', 0o600);
    try {
      await fh.chmod(0o600);
      await fh.writeFile(made.text);
    } finally {
      await fh.close();
    }
  } catch (e) {
    await tunnel.close();
    await fs.rm(dir, { recursive: true, force: true });
    open.delete(dir);
    throw new ApiError('IO_ERROR', `Cannot write the kubeconfig: ${(e as Error).message}`);
  }
  log(`kubectl access ${cluster.name}: 127.0.0.1:${port} -> ${admin.name} -> ${made.server}`);

  let closing: Promise<void> | null = null;
  const access: KubectlAccess = {
    cluster: cluster.name,
    path,
    port,
    via: admin.name,
    server: made.server,
    serverName: made.serverName,
    close() {
      closing ??= (async () => {
        await tunnel.close();
        await fs.rm(dir, { recursive: true, force: true });
        open.delete(dir);
        live.delete(access);
        log(`kubectl access ${cluster.name}: closed (127.0.0.1:${port}, kubeconfig removed)`);
      })();
      return closing;
    },
  };
  live.add(access);
  return access;
}
