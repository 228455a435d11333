// Clusters and their nodes, persisted as one JSON document in the data dir. Writes are atomic and
// serialized; a corrupt file is moved aside (never overwritten) and the problem is kept for the UI.
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { z } from 'zod';
import {
  Cluster,
  ClusterNode,
  NodeInput,
  type Cluster as ClusterT,
  type ClusterFacts,
  type ExternalEtcdFact,
  type ClusterNode as NodeT,
  type ToolPaths,
} from '@shared/domain';
import { readJsonFile, writeJsonAtomic } from '../util/jsonfile';
import { ApiError } from '../api/errors';

const InventoryFile = z.object({
  version: z.literal(1),
  clusters: z.array(Cluster),
});
type InventoryFile = z.infer<typeof InventoryFile>;

export interface LoadProblem {
  file: string;
  backup: string;
  error: string;
}

export function newId(): string {
  return randomUUID().replace(/-/g, '').slice(0, 16);
}

export class InventoryStore {
  private data: InventoryFile = { version: 1, clusters: [] };
  private writing: Promise<void> = Promise.resolve();
  readonly file: string;
  loadProblem: LoadProblem | null = null;

  private constructor(dataDir: string) {
    this.file = join(dataDir, 'inventory.json');
  }

  static async open(dataDir: string): Promise<InventoryStore> {
    const store = new InventoryStore(dataDir);
    const loaded = await readJsonFile(
      store.file,
      (raw) => InventoryFile.parse(raw),
      () => ({
        version: 1 as const,
        clusters: [],
      }),
    );
    store.data = loaded.value;
    if (loaded.status === 'corrupt') {
      store.loadProblem = { file: store.file, backup: loaded.backup, error: loaded.error };
    }
    return store;
  }

  list(): ClusterT[] {
    return structuredClone(this.data.clusters);
  }

  get(clusterId: string): ClusterT {
    const c = this.data.clusters.find((x) => x.id === clusterId);
    if (!c) throw new ApiError('NOT_FOUND', `No cluster with id ${clusterId}`);
    return c;
  }

  node(clusterId: string, nodeId: string): NodeT {
    const n = this.get(clusterId).nodes.find((x) => x.id === nodeId);
    if (!n) throw new ApiError('NOT_FOUND', `No node with id ${nodeId} in cluster ${clusterId}`);
    return n;
  }

  async createCluster(name: string): Promise<ClusterT> {
    this.assertUniqueClusterName(name);
    const c: ClusterT = {
      id: newId(),
      name,
      nodes: [],
      createdAt: new Date().toISOString(),
      facts: null,
      creation: null,
    };
    this.data.clusters.push(c);
    await this.save();
    return structuredClone(c);
  }

  async renameCluster(clusterId: string, name: string): Promise<ClusterT> {
    const c = this.get(clusterId);
    this.assertUniqueClusterName(name, clusterId);
    c.name = name;
    await this.save();
    return structuredClone(c);
  }

  async removeCluster(clusterId: string): Promise<ClusterT> {
    const c = this.get(clusterId);
    this.data.clusters = this.data.clusters.filter((x) => x.id !== clusterId);
    await this.save();
    return c;
  }

  /** Add (no id) or replace (id) a node. Names are unique within a cluster; jumps must not loop. */
  async upsertNode(clusterId: string, input: z.output<typeof NodeInput>): Promise<NodeT> {
    const c = this.get(clusterId);
    const id = input.id ?? newId();
    const node = ClusterNode.parse({ ...input, id, roles: [...new Set(input.roles)] });
    if (c.nodes.some((n) => n.id !== id && n.name.toLowerCase() === node.name.toLowerCase())) {
      throw new ApiError('INVALID_INPUT', `A node named "${node.name}" already exists in this cluster`, {
        issues: [{ path: ['node', 'name'], message: 'Name already used in this cluster' }],
      });
    }
    if (input.id && !c.nodes.some((n) => n.id === id)) {
      throw new ApiError('NOT_FOUND', `No node with id ${id} in cluster ${clusterId}`);
    }
    const next = c.nodes.some((n) => n.id === id) ? c.nodes.map((n) => (n.id === id ? node : n)) : [...c.nodes, node];
    checkJumpChain(next, id);
    c.nodes = next;
    await this.save();
    return structuredClone(node);
  }

  /**
   * Add several new nodes in one write: every problem of every entry is reported (paths
   * `nodes.<i>.<field>`) and nothing is written unless all of them can be added — a name used
   * twice, a machine (address and SSH port) already in the cluster or twice in the list, a jump
   * host that is not a node of the cluster.
   */
  async addNodes(clusterId: string, inputs: z.output<typeof NodeInput>[]): Promise<NodeT[]> {
    const c = this.get(clusterId);
    const issues: { path: (string | number)[]; message: string }[] = [];
    const names = new Map(c.nodes.map((n) => [n.name.toLowerCase(), 'in this cluster']));
    const machines = new Map(c.nodes.map((n) => [machineOf(n), `the cluster's ${n.name}`]));
    const added: NodeT[] = [];
    inputs.forEach((input, i) => {
      const { id: _ignored, ...rest } = input;
      const node = ClusterNode.parse({ ...rest, id: newId(), roles: [...new Set(input.roles)] });
      const usedName = names.get(node.name.toLowerCase());
      if (usedName) issues.push({ path: ['nodes', i, 'name'], message: `Name already used ${usedName}` });
      else names.set(node.name.toLowerCase(), `by entry ${i + 1}`);
      const usedMachine = machines.get(machineOf(node));
      if (usedMachine) issues.push({ path: ['nodes', i, 'address'], message: `Same machine as ${usedMachine}` });
      else machines.set(machineOf(node), `entry ${i + 1}`);
      if (node.jumpNodeId && !c.nodes.some((n) => n.id === node.jumpNodeId))
        issues.push({ path: ['nodes', i, 'jumpNodeId'], message: 'The jump host is not a node of this cluster' });
      added.push(node);
    });
    if (issues.length) {
      const first = issues[0];
      throw new ApiError(
        'INVALID_INPUT',
        `Nothing was added: entry ${Number(first.path[1]) + 1}: ${first.message}${issues.length > 1 ? ` (and ${issues.length - 1} more)` : ''}`,
        { issues },
      );
    }
    c.nodes = [...c.nodes, ...added];
    await this.save();
    return structuredClone(added);
  }

  /** Remove several nodes in one write (undoing `addNodes`); unknown ids are ignored. */
  async removeNodes(clusterId: string, nodeIds: string[]): Promise<void> {
    const c = this.get(clusterId);
    const gone = new Set(nodeIds);
    c.nodes = c.nodes.filter((n) => !gone.has(n.id));
    await this.save();
  }

  async setCreation(clusterId: string, creation: ClusterT['creation']): Promise<ClusterT> {
    const c = this.get(clusterId);
    c.creation = creation;
    await this.save();
    return structuredClone(c);
  }

  /** Remember the namespaces the health view shows for this cluster (no write when unchanged). */
  async setHealthNamespaces(clusterId: string, namespaces: string[]): Promise<void> {
    const c = this.get(clusterId);
    if (JSON.stringify(c.healthNamespaces ?? null) === JSON.stringify(namespaces)) return;
    c.healthNamespaces = [...namespaces];
    await this.save();
  }

  async setFacts(clusterId: string, facts: ClusterFacts | null): Promise<ClusterT> {
    const c = this.get(clusterId);
    c.facts = facts;
    await this.save();
    return structuredClone(c);
  }

  /**
   * Remember where a node's etcd tools are (absolute paths from discovery or an install) in the
   * facts, for the scripts that call them; a master's entry follows (with the versions, when
   * given). Nothing to do before initialize, or when nothing changed.
   */
  async recordNodeTools(
    clusterId: string,
    nodeId: string,
    tools: ToolPaths,
    versions?: Partial<ToolPaths>,
  ): Promise<void> {
    const f = this.get(clusterId).facts;
    if (!f) return;
    const master = f.masters.find((m) => m.nodeId === nodeId);
    const was = JSON.stringify([f.nodeTools?.[nodeId], master?.tools, master?.versions]);
    f.nodeTools = { ...f.nodeTools, [nodeId]: { ...tools } };
    if (master) {
      master.tools = { ...tools };
      if (versions) master.versions = { ...master.versions, ...versions };
    }
    if (JSON.stringify([f.nodeTools[nodeId], master?.tools, master?.versions]) !== was) await this.save();
  }

  /** Remember that a node now carries an external etcd member the app set up (nothing before initialize). */
  async recordExternalEtcd(clusterId: string, nodeId: string, fact: ExternalEtcdFact): Promise<void> {
    const f = this.get(clusterId).facts;
    if (!f) return;
    f.externalEtcd = { ...f.externalEtcd, [nodeId]: { ...fact } };
    await this.save();
  }

  async removeNode(clusterId: string, nodeId: string): Promise<NodeT> {
    const c = this.get(clusterId);
    const node = this.node(clusterId, nodeId);
    const dependents = c.nodes.filter((n) => n.jumpNodeId === nodeId);
    if (dependents.length) {
      throw new ApiError(
        'CONFLICT',
        `${node.name} is the jump host of ${dependents.map((d) => d.name).join(', ')}; change those first`,
      );
    }
    c.nodes = c.nodes.filter((n) => n.id !== nodeId);
    if (c.facts?.nodeTools?.[nodeId]) {
      const { [nodeId]: _gone, ...rest } = c.facts.nodeTools;
      c.facts.nodeTools = rest;
    }
    if (c.facts?.externalEtcd?.[nodeId]) {
      const { [nodeId]: _gone, ...rest } = c.facts.externalEtcd;
      c.facts.externalEtcd = rest;
    }
    await this.save();
    return node;
  }

  private assertUniqueClusterName(name: string, exceptId?: string): void {
    if (this.data.clusters.some((c) => c.id !== exceptId && c.name.toLowerCase() === name.toLowerCase())) {
      throw new ApiError('INVALID_INPUT', `A cluster named "${name}" already exists`, {
        issues: [{ path: ['name'], message: 'Name already used' }],
      });
    }
  }

  /** Serialize writes so two quick edits cannot interleave their renames. */
  private save(): Promise<void> {
    const snapshot = structuredClone(this.data);
    this.writing = this.writing.catch(() => undefined).then(() => writeJsonAtomic(this.file, snapshot));
    return this.writing;
  }
}

/** One machine: its address (case-insensitive, unbracketed) and SSH port. */
function machineOf(n: { address: string; port: number }): string {
  return `${n.address.toLowerCase()}#${n.port}`;
}

/** Follow jump hosts from `startId`; a missing jump target or a loop is an input error. */
export function checkJumpChain(nodes: NodeT[], startId: string): void {
  const seen = new Set<string>();
  let cur = nodes.find((n) => n.id === startId);
  while (cur?.jumpNodeId) {
    if (seen.has(cur.id)) throw jumpError('The jump hosts form a loop');
    seen.add(cur.id);
    const next = nodes.find((n) => n.id === cur!.jumpNodeId);
    if (!next) throw jumpError('The jump host is not a node of this cluster');
    cur = next;
    if (seen.size > 8) throw jumpError('Too many chained jump hosts (max 8)');
  }
}

function jumpError(message: string): ApiError {
  return new ApiError('INVALID_INPUT', message, { issues: [{ path: ['node', 'jumpNodeId'], message }] });
}
