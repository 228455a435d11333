// Intent: one machine is one master, however the user reached it. A master added by hostname (or
// through another NIC) is recognised when etcd's peer URLs or the API name it by another address —
// no second master, no duplicate member; one machine listed twice in the inventory is refused by
// initialize, and a restore plan in which two nodes bring the same member is refused.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ClusterFacts, ClusterNode } from '@shared/domain';
import { initializeCluster, sameMachines } from '../../src/main/cluster/initialize';
import { parseDiscovery, type NodeFacts } from '../../src/main/cluster/facts';
import type { ClusterOps } from '../../src/main/cluster/ops';
import type { InventoryStore } from '../../src/main/inventory/store';
import { refuseDuplicateMembers } from '../../src/main/etcd/restore-embedded';

const fixture = (f: string) => readFileSync(join(__dirname, 'fixtures', f), 'utf8');
const b64 = (s: string) => Buffer.from(s).toString('base64');

/** A machine as discover.sh reports it. */
interface Machine {
  hostname: string;
  machineId: string;
  addresses: string[];
  /** The addresses and names it answers SSH on. */
  reachableAs: string[];
  /** The kubelet's staticPodPath (kubeadm's default when absent). */
  staticPodPath?: string;
}

function discovery(m: Machine): string {
  return [
    'KES_BEGIN',
    `hostname=${m.hostname}`,
    `machine_id=${m.machineId}`,
    `addresses=${m.addresses.join(' ')} `,
    `etcd_manifest=${b64(fixture('etcd.yaml'))}`,
    `apiserver_manifest=${b64(fixture('kube-apiserver.yaml'))}`,
    'listening=2379 2380 6443',
    `static_pod_path=${m.staticPodPath ?? '/etc/kubernetes/manifests'}`,
    'KES_END',
  ].join('\n');
}

function world(
  machines: Machine[],
  inventoryNodes: Pick<ClusterNode, 'name' | 'address'>[],
  members: [string, string][],
) {
  let seq = 0;
  const nodes: ClusterNode[] = inventoryNodes.map(
    (n) =>
      ({
        id: `n${seq++}`,
        port: 22,
        user: 'root',
        roles: ['master'],
        auth: { method: 'agent' },
        jumpNodeId: null,
        ...n,
      }) as ClusterNode,
  );
  let facts: ClusterFacts | null = null;
  const inventory = {
    get: () => ({ id: 'c', name: 'c', nodes, facts }),
    node: (_c: string, id: string) => nodes.find((n) => n.id === id)!,
    upsertNode: async (_c: string, input: Partial<ClusterNode>) => {
      const node = { ...input, id: input.id ?? `n${seq++}` } as ClusterNode;
      const i = nodes.findIndex((n) => n.id === node.id);
      if (i >= 0) nodes[i] = node;
      else nodes.push(node);
      return node;
    },
    setFacts: async (_c: string, f: ClusterFacts) => {
      facts = f;
    },
  } as unknown as InventoryStore;
  const machineOf = (id: string) => {
    const n = nodes.find((x) => x.id === id)!;
    const m = machines.find((x) => x.reachableAs.includes(n.address));
    if (!m) throw new Error(`no route to ${n.address}`);
    return m;
  };
  const ops = {
    discover: async (_c: string, id: string): Promise<NodeFacts> => parseDiscovery(discovery(machineOf(id))),
    kubeGet: async () => ({ status: 200, body: '{"items":[]}' }),
    etcdctl: async () =>
      JSON.stringify({
        header: { cluster_id: 1 },
        members: members.map(([name, ip], i) => ({
          ID: i + 1,
          name,
          peerURLs: [`https://${ip}:2380`],
          clientURLs: [`https://${ip}:2379`],
        })),
      }),
  } as unknown as ClusterOps;
  return { deps: { ops, inventory }, nodes, facts: () => facts! };
}

const M1: Machine = {
  hostname: 'm1',
  machineId: 'a'.repeat(32),
  addresses: ['198.18.0.11', '198.19.0.11'],
  reachableAs: ['m1.lab', '198.18.0.11', '198.19.0.11'],
};
const M2: Machine = {
  hostname: 'm2',
  machineId: 'b'.repeat(32),
  addresses: ['198.18.0.12', '198.19.0.12'],
  reachableAs: ['198.18.0.12', '198.19.0.12'],
};

describe('one machine, one master', () => {
  it('a seed added by hostname is not added again under the address etcd names it by', async () => {
    const w = world(
      [M1, M2],
      [{ name: 'm1', address: 'm1.lab' }],
      [
        ['m1', '198.18.0.11'],
        ['m2', '198.18.0.12'],
      ],
    );
    const f = await initializeCluster(w.deps, 'c', 'n0');
    expect(w.nodes.map((n) => `${n.name}@${n.address}`)).toEqual(['m1@m1.lab', 'm2@198.18.0.12']);
    expect(f.masters.map((m) => m.name)).toEqual(['m1', 'm2']);
    // each member belongs to its own node
    expect(f.members.map((m) => [m.name, w.nodes.find((n) => n.id === m.nodeId)?.name])).toEqual([
      ['m1', 'm1'],
      ['m2', 'm2'],
    ]);
    expect(f.members.every((m) => m.kind === 'stacked')).toBe(true);
  });

  it('a master reached through another NIC (etcd peers on the back network) stays one master', async () => {
    const w = world(
      [M1, M2],
      [{ name: 'm1', address: '198.19.0.11' }],
      [
        ['m1', '198.18.0.11'],
        ['m2', '198.18.0.12'],
      ],
    );
    await initializeCluster(w.deps, 'c', 'n0');
    expect(w.nodes.map((n) => n.address)).toEqual(['198.19.0.11', '198.18.0.12']);
  });

  it('one machine listed twice (by name and by address) is refused, naming both', async () => {
    const w = world(
      [M1, M2],
      [
        { name: 'm1', address: 'm1.lab' },
        { name: 'm1-ip', address: '198.18.0.11' },
      ],
      [['m1', '198.18.0.11']],
    );
    await expect(initializeCluster(w.deps, 'c', 'n0')).rejects.toMatchObject({
      code: 'DUPLICATE_NODE',
      message: expect.stringMatching(/m1 \(m1\.lab\) and m1-ip \(198\.18\.0\.11\) are the same machine/),
    });
  });

  it("refuses a master whose kubelet reads static pods from another folder (the jobs' edits would be ignored)", async () => {
    const w = world(
      [M1, { ...M2, staticPodPath: '/srv/static-pods' }],
      [{ name: 'm1', address: '198.18.0.11' }],
      [
        ['m1', '198.18.0.11'],
        ['m2', '198.18.0.12'],
      ],
    );
    await expect(initializeCluster(w.deps, 'c', 'n0')).rejects.toMatchObject({
      code: 'UNSUPPORTED_LAYOUT',
      message: expect.stringContaining('m2 reads static pods from /srv/static-pods'),
    });
  });

  it('clones sharing a machine-id but not a hostname are two machines', () => {
    const f = (hostname: string) => ({ hostname, machineId: 'c'.repeat(32), addresses: [] }) as unknown as NodeFacts;
    const n = (name: string) => ({ name }) as ClusterNode;
    expect(
      sameMachines([
        { node: n('a'), facts: f('a') },
        { node: n('b'), facts: f('b') },
      ]),
    ).toEqual([]);
    expect(
      sameMachines([
        { node: n('a'), facts: f('a') },
        { node: n('b'), facts: f('a') },
      ]),
    ).toHaveLength(1);
  });

  it('a restore plan with the same member on two nodes is refused', () => {
    const n = (name: string) => ({ name }) as ClusterNode;
    expect(() =>
      refuseDuplicateMembers([
        { node: n('m1'), name: 'm1', peerUrl: 'https://198.18.0.11:2380' },
        { node: n('m1b'), name: 'm1', peerUrl: 'https://198.18.0.11:2380' },
      ]),
    ).toThrow(/m1 and m1b both have member "m1"/);
    expect(() =>
      refuseDuplicateMembers([
        { node: n('m1'), name: 'a', peerUrl: 'https://198.18.0.11:2380' },
        { node: n('m2'), name: 'b', peerUrl: 'https://198.18.0.11:2380' },
      ]),
    ).toThrow(/peer URL/);
    expect(() =>
      refuseDuplicateMembers([
        { node: n('m1'), name: 'm1', peerUrl: 'https://198.18.0.11:2380' },
        { node: n('m2'), name: 'm2', peerUrl: 'https://198.18.0.12:2380' },
      ]),
    ).not.toThrow();
  });
});
