// Builds every main-process service from plain arguments (data dir, secret store, resources dir).
// Both entries use it: the Electron one (src/main/index.ts) and the headless web one
// (src/main/server/web.ts). Nothing here imports `electron`.
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import type { ClusterNode, NodeStatus } from '@shared/domain';
import { createDispatcher, EventHub, type Dispatch } from './api/dispatch';
import { ApiError } from './api/errors';
import { createHandlers } from './api/handlers';
import { InventoryStore } from './inventory/store';
import { syncScriptsFolder } from './scripts/folder';
import type { SecretStore } from './secrets/types';
import { SettingsStore } from './settings/store';
import { HostKeyStore } from './ssh/hostkeys';
import { SshPool } from './ssh/pool';
import type { SshTarget } from './ssh/types';
import { TerminalManager } from './terminal/manager';
import { clearAccessLeftovers, closeAllKubectlAccess } from './kube/kubectl-access';
import { ClusterOps } from './cluster/ops';
import { EtcdService } from './etcd/service';
import { ToolCache } from './etcd/tools';
import { JobHistory } from './jobs/history';
import { JobService } from './jobs/service';
import { ScriptLibrary } from './remote/scripts';
import { SnapshotVault } from './vault/snapshots';
import { StateVault } from './vault/states';

export interface ServiceOptions {
  dataDir: string;
  /** Folder with the shipped defaults (icon, scripts). */
  resourcesDir: string;
  secrets: SecretStore;
  transport: 'electron' | 'web';
  version: string;
  log?: (line: string) => void;
}

/** What handlers get to work with. */
export interface ServiceCore {
  opts: ServiceOptions;
  events: EventHub;
  inventory: InventoryStore;
  settings: SettingsStore;
  hostKeys: HostKeyStore;
  pool: SshPool;
  terminals: TerminalManager;
  secrets: SecretStore;
  scriptsDir: string;
  states: Map<string, NodeStatus>;
  targetOf(clusterId: string, nodeId: string): SshTarget;
  scripts: ScriptLibrary;
  ops: ClusterOps;
  snapshots: SnapshotVault;
  stateVault: StateVault;
  jobs: JobService;
  etcd: EtcdService;
  tools: ToolCache;
  log: (line: string) => void;
  close(): Promise<void>;
}

export interface Services extends ServiceCore {
  dispatch: Dispatch;
}

export async function createServices(opts: ServiceOptions): Promise<Services> {
  await fs.mkdir(opts.dataDir, { recursive: true, mode: 0o700 });
  const log = opts.log ?? (() => undefined);
  const events = new EventHub();
  const inventory = await InventoryStore.open(opts.dataDir);
  const settings = await SettingsStore.open(opts.dataDir);
  await clearAccessLeftovers(opts.dataDir); // kubectl consoles' kubeconfigs left by a crash
  const synced = await syncScriptsFolder(join(opts.resourcesDir, 'scripts'), opts.dataDir);
  const scriptsDir = synced.dir;
  if (synced.updated.length) log(`scripts updated to this version: ${synced.updated.join(', ')}`);
  if (synced.kept.length)
    log(`scripts you changed are kept, a new version is available (Settings): ${synced.kept.join(', ')}`);
  const s = settings.get();
  const hostKeys = await HostKeyStore.open(opts.dataDir, { readSystemKnownHosts: s.readSystemKnownHosts });

  // Connection state per node, mirrored to the renderer as node.status events.
  const states = new Map<string, NodeStatus>();
  const pool = new SshPool({
    hostKeys,
    secrets: opts.secrets,
    connectTimeoutMs: s.connectTimeoutMs,
    keepaliveIntervalMs: s.keepaliveIntervalMs,
    log,
    onState: (nodeId, state, message) => {
      for (const c of inventory.list()) {
        if (c.nodes.some((n) => n.id === nodeId)) {
          const st: NodeStatus = message
            ? { clusterId: c.id, nodeId, state, message }
            : { clusterId: c.id, nodeId, state };
          states.set(nodeId, st);
          events.emit('node.status', st);
        }
      }
    },
  });
  settings.onChange((next) => {
    pool.updateSettings({ connectTimeoutMs: next.connectTimeoutMs, keepaliveIntervalMs: next.keepaliveIntervalMs });
    hostKeys.setReadSystemKnownHosts(next.readSystemKnownHosts);
  });
  const terminals = new TerminalManager(events);

  /** Resolve a node (and its jump chain) into what the SSH pool needs. */
  function targetOf(clusterId: string, nodeId: string, depth = 0): SshTarget {
    if (depth > 8) throw new ApiError('INVALID_INPUT', 'Jump host chain too long');
    const node: ClusterNode = inventory.node(clusterId, nodeId);
    const t: SshTarget = {
      nodeId: node.id,
      label: node.name,
      host: node.address,
      port: node.port,
      user: node.user,
      auth: node.auth,
    };
    if (node.jumpNodeId) t.jump = targetOf(clusterId, node.jumpNodeId, depth + 1);
    return t;
  }

  const scripts = new ScriptLibrary(join(opts.resourcesDir, 'scripts'), scriptsDir);
  const ops = new ClusterOps({ inventory, pool, scripts, targetOf });
  const snapshots = await SnapshotVault.open(opts.dataDir);
  const stateVault = await StateVault.open(opts.dataDir);
  const jobs = new JobService(await JobHistory.open(opts.dataDir), events);
  const tools = new ToolCache(opts.dataDir);
  const etcd = new EtcdService(
    { ops, inventory, pool, snapshots, states: stateVault, targetOf, streamDirect: () => settings.get().etcdDirect },
    jobs,
    tools,
    opts.dataDir,
  );
  await etcd.loadSchedules();
  etcd.startScheduler();

  const services: ServiceCore = {
    opts,
    events,
    inventory,
    settings,
    hostKeys,
    pool,
    terminals,
    secrets: opts.secrets,
    scriptsDir,
    states,
    targetOf,
    scripts,
    ops,
    snapshots,
    stateVault,
    jobs,
    etcd,
    tools,
    log,
    async close() {
      etcd.stopScheduler();
      terminals.closeAll();
      await closeAllKubectlAccess();
      await pool.closeAll();
    },
  };
  const dispatch = createDispatcher(createHandlers(services));
  return { ...services, dispatch };
}
