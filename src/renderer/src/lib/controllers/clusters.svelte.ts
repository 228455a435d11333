// Clusters, their nodes and each node's live connection state (the node.status event).
import type {
  Cluster,
  ClusterFacts,
  ClusterNode,
  ModeName,
  ConnectionTest,
  NodeInput,
  NodeStatus,
  SecretFlags,
  SecretKind,
} from '@shared/domain';
import { api, ApiCallError } from '../api';
import type { HostKeyController } from './hostkeys.svelte';

export interface NodeRef {
  clusterId: string;
  nodeId: string;
}

export type NodeAction = 'test' | 'connect' | 'disconnect' | 'terminal' | 'remove';

export class ClustersController {
  list = $state.raw<Cluster[]>([]);
  loaded = $state(false);
  loadError = $state<string | null>(null);
  /** nodeId → latest status; replaced wholesale on each event (cheap, and keeps reactivity simple). */
  statuses = $state.raw<Record<string, NodeStatus>>({});
  /** nodeId → the action in flight, to disable buttons and show a spinner. */
  busy = $state.raw<Record<string, NodeAction>>({});
  /** Latest "Test connection" result per node, shown in the result panel. */
  tests = $state.raw<Record<string, { node: string; result: ConnectionTest; at: number }>>({});
  /** clusterId → mode seen by the latest health report, and when that report was made. */
  modes = $state.raw<Record<string, { mode: ModeName; at: string }>>({});
  /** clusterId → initialize in flight. */
  initializing = $state.raw<Record<string, boolean>>({});

  constructor(private readonly hostKeys: HostKeyController) {
    api.on('node.status', (s) => this.setStatus(s));
  }

  byId(id: string): Cluster | undefined {
    return this.list.find((c) => c.id === id);
  }

  /**
   * Mode to show for a cluster: whichever is newer of the latest health report's and the facts'
   * (a switch refreshes the facts at its end), or null (never initialized).
   */
  modeOf(c: Cluster): ModeName | null {
    const seen = this.modes[c.id];
    if (seen && (!c.facts || Date.parse(seen.at) >= Date.parse(c.facts.initializedAt))) return seen.mode;
    return c.facts?.mode ?? seen?.mode ?? null;
  }

  /** Record the mode a health report saw (`at`: when the report was made). */
  setMode(clusterId: string, mode: ModeName, at: string): void {
    const prev = this.modes[clusterId];
    if (prev && Date.parse(prev.at) > Date.parse(at)) return;
    if (prev?.mode !== mode || prev.at !== at) this.modes = { ...this.modes, [clusterId]: { mode, at } };
  }

  /**
   * Initialize from a seed master. The seed's own unknown host key goes through the usual prompt;
   * newly discovered masters (HOST_KEYS_UNKNOWN) are confirmed together in one dialog, then the
   * call is repeated. The inventory changes (masters added, facts), so the cluster is reloaded.
   */
  async initialize(clusterId: string, nodeId: string): Promise<ClusterFacts> {
    this.initializing = { ...this.initializing, [clusterId]: true };
    try {
      const facts = await this.hostKeys.guard(this.named({ clusterId, nodeId }), async () => {
        for (let attempt = 0; ; attempt++) {
          try {
            return await api.invoke('cluster.initialize', { clusterId, nodeId });
          } catch (e) {
            if (!(e instanceof ApiCallError) || e.code !== 'HOST_KEYS_UNKNOWN' || attempt >= 3) throw e;
            // New master nodes are in the inventory now: show them while the dialog is open.
            await this.reload().catch(() => undefined);
            await this.hostKeys.confirmMany(clusterId, e.details, e.message);
          }
        }
      });
      const c = this.byId(clusterId);
      if (c) this.replace({ ...c, facts });
      this.forgetMode(clusterId);
      return facts;
    } finally {
      const next = { ...this.initializing };
      delete next[clusterId];
      this.initializing = next;
      await this.reload().catch(() => undefined);
    }
  }

  /** Drop the mode seen by health (initialize has just read the cluster afresh). */
  private forgetMode(clusterId: string): void {
    if (!(clusterId in this.modes)) return;
    const modes = { ...this.modes };
    delete modes[clusterId];
    this.modes = modes;
  }

  /** Re-read the inventory (nodes and facts) without touching the connection states. */
  async reload(): Promise<void> {
    this.list = await api.invoke('clusters.list', {});
  }

  status(nodeId: string): NodeStatus['state'] {
    return this.statuses[nodeId]?.state ?? 'disconnected';
  }

  private setStatus(s: NodeStatus): void {
    this.statuses = { ...this.statuses, [s.nodeId]: s };
  }

  private setBusy(nodeId: string, action: NodeAction | null): void {
    const next = { ...this.busy };
    if (action) next[nodeId] = action;
    else delete next[nodeId];
    this.busy = next;
  }

  private replace(cluster: Cluster): void {
    const i = this.list.findIndex((c) => c.id === cluster.id);
    this.list = i < 0 ? [...this.list, cluster] : this.list.map((c) => (c.id === cluster.id ? cluster : c));
  }

  async load(): Promise<void> {
    try {
      this.list = await api.invoke('clusters.list', {});
      this.loadError = null;
      await Promise.all(this.list.map((c) => this.loadStatuses(c.id)));
    } catch (e) {
      this.loadError = (e as Error).message;
    } finally {
      this.loaded = true;
    }
  }

  async loadStatuses(clusterId: string): Promise<void> {
    const list = await api.invoke('nodes.status', { clusterId });
    const next = { ...this.statuses };
    for (const s of list) next[s.nodeId] = s;
    this.statuses = next;
  }

  async create(name: string): Promise<Cluster> {
    const c = await api.invoke('clusters.create', { name });
    this.replace(c);
    return c;
  }

  async rename(clusterId: string, name: string): Promise<Cluster> {
    const c = await api.invoke('clusters.rename', { clusterId, name });
    this.replace(c);
    return c;
  }

  /** Save the admin kubeconfig (cluster-admin) to a new local file, 0600; ALREADY_EXISTS if it exists. */
  exportKubeconfig(clusterId: string, path: string): Promise<{ path: string; bytes: number }> {
    return api.invoke('cluster.exportKubeconfig', { clusterId, path });
  }

  async remove(clusterId: string): Promise<void> {
    await api.invoke('clusters.remove', { clusterId });
    this.list = this.list.filter((c) => c.id !== clusterId);
  }

  async upsertNode(clusterId: string, node: NodeInput): Promise<ClusterNode> {
    const saved = await api.invoke('nodes.upsert', { clusterId, node });
    const c = this.byId(clusterId);
    if (c) {
      const exists = c.nodes.some((n) => n.id === saved.id);
      this.replace({ ...c, nodes: exists ? c.nodes.map((n) => (n.id === saved.id ? saved : n)) : [...c.nodes, saved] });
    }
    return saved;
  }

  async removeNode(ref: NodeRef): Promise<void> {
    this.setBusy(ref.nodeId, 'remove');
    try {
      await api.invoke('nodes.remove', ref);
      const c = this.byId(ref.clusterId);
      if (c) this.replace({ ...c, nodes: c.nodes.filter((n) => n.id !== ref.nodeId) });
      const tests = { ...this.tests };
      delete tests[ref.nodeId];
      this.tests = tests;
    } finally {
      this.setBusy(ref.nodeId, null);
    }
  }

  async importSshConfig(clusterId: string, hosts: string[], path?: string): Promise<ClusterNode[]> {
    const saved = await api.invoke('sshConfig.import', path ? { clusterId, hosts, path } : { clusterId, hosts });
    // Import may update existing nodes too: re-read the cluster list rather than merge by hand.
    this.list = await api.invoke('clusters.list', {});
    return saved;
  }

  secretStatus(ref: NodeRef): Promise<SecretFlags> {
    return api.invoke('secrets.status', ref);
  }

  setSecret(ref: NodeRef, kind: SecretKind, value: string): Promise<SecretFlags> {
    return api.invoke('secrets.set', { ...ref, kind, value });
  }

  /** Give `toNodeId` a copy of what `fromNodeId` has stored for its auth method (inside main). */
  copySecrets(clusterId: string, fromNodeId: string, toNodeId: string): Promise<SecretFlags> {
    return api.invoke('secrets.copy', { clusterId, fromNodeId, toNodeId });
  }

  /** Add several nodes in one write (all or none); the cluster list is read again. */
  async addNodes(
    clusterId: string,
    nodes: NodeInput[],
    credential?: { copyFrom?: string; privateKey?: string; passphrase?: string; password?: string },
  ): Promise<ClusterNode[]> {
    const added = await api.invoke(
      'nodes.addMany',
      credential ? { clusterId, nodes, credential } : { clusterId, nodes },
    );
    this.list = await api.invoke('clusters.list', {});
    return added;
  }

  clearSecret(ref: NodeRef, kind: SecretKind): Promise<SecretFlags> {
    return api.invoke('secrets.clear', { ...ref, kind });
  }

  private named(ref: NodeRef) {
    const node = this.byId(ref.clusterId)?.nodes.find((n) => n.id === ref.nodeId);
    return { ...ref, name: node?.name ?? ref.nodeId };
  }

  /** Test connection; a host-key verdict in the result goes through the same prompt as connect. */
  async test(ref: NodeRef): Promise<ConnectionTest> {
    this.setBusy(ref.nodeId, 'test');
    const named = this.named(ref);
    let last = null as ConnectionTest | null;
    const record = (result: ConnectionTest) => {
      this.tests = { ...this.tests, [ref.nodeId]: { node: named.name, result, at: Date.now() } };
    };
    try {
      const result = await this.hostKeys.guard(named, async () => {
        const r = await api.invoke('ssh.test', ref);
        last = r;
        const code = r.error?.code;
        if (r.hostKey && (code === 'HOST_KEY_UNKNOWN' || code === 'HOST_KEY_CHANGED')) {
          const { host, port, keyType, fingerprint } = r.hostKey;
          throw new ApiCallError(code, r.error?.message ?? code, { hostKey: { host, port, keyType, fingerprint } });
        }
        return r;
      });
      record(result);
      return result;
    } catch (e) {
      // Cancelled at the host-key prompt: still show what the test found.
      if (last) {
        record(last);
        return last;
      }
      throw e;
    } finally {
      this.setBusy(ref.nodeId, null);
    }
  }

  clearTest(nodeId: string): void {
    const tests = { ...this.tests };
    delete tests[nodeId];
    this.tests = tests;
  }

  async connect(ref: NodeRef): Promise<void> {
    this.setBusy(ref.nodeId, 'connect');
    try {
      const s = await this.hostKeys.guard(this.named(ref), () => api.invoke('ssh.connect', ref));
      this.setStatus(s);
    } finally {
      this.setBusy(ref.nodeId, null);
    }
  }

  async disconnect(ref: NodeRef): Promise<void> {
    this.setBusy(ref.nodeId, 'disconnect');
    try {
      this.setStatus(await api.invoke('ssh.disconnect', ref));
    } finally {
      this.setBusy(ref.nodeId, null);
    }
  }
}
