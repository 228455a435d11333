// Shrink and tear down what "New cluster" built. "Reset node" takes one master or worker out the
// way kubeadm's docs say — drain it, remove a master's etcd member first (while quorum is there to
// agree), `kubeadm reset`, delete its Node object, and give the load balancer the remaining
// masters. "Clean up everything" resets every node and removes the load balancer. Both are
// destructive (typed cluster name) and say in the plan exactly what goes.
import type { ClusterNode } from '@shared/domain';
import { parseMemberList } from '../cluster/etcdjson';
import { STACKED_ETCD_TLS, type Log } from '../cluster/ops';
import { EtcdOpError, type EtcdDeps } from '../etcd/deps';
import type { JobDef, StepDef } from '../jobs/types';
import { applyLbConfig } from './create-cluster';
import { renderLbConfig, type LbConfigKind } from './lb-config';

const APISERVER_PORT = 6443;

export interface ResetCtx {
  deps: EtcdDeps;
  clusterId: string;
  node: ClusterNode;
  /** A master that stays (drains, deletes the Node object, removes the etcd member). */
  via: ClusterNode;
  lb?: { node: ClusterNode; kind: LbConfigKind; port: number };
  remainingMasters: ClusterNode[];
  /** Runs the app's initialize once the node is gone (the facts must not name it any more). */
  initialize: (nodeId: string, log: Log) => Promise<unknown>;
  memberId?: string;
}

const run = (c: { deps: EtcdDeps; clusterId: string }, n: ClusterNode, script: string, args: string[], log: Log) =>
  c.deps.ops.run(c.clusterId, n.id, script, args, { log, timeoutMs: 600_000 });

export function prepareReset(
  deps: EtcdDeps,
  clusterId: string,
  nodeId: string,
  lb: { kind: LbConfigKind | 'none'; port: number } | undefined,
  initialize: ResetCtx['initialize'],
): ResetCtx {
  const nodes = deps.inventory.get(clusterId).nodes;
  const node = deps.inventory.node(clusterId, nodeId);
  if (!node.roles.includes('master') && !node.roles.includes('worker'))
    throw new EtcdOpError('INVALID_INPUT', `${node.name} is neither a master nor a worker`);
  const masters = nodes.filter((n) => n.roles.includes('master'));
  const remainingMasters = masters.filter((n) => n.id !== node.id);
  if (!remainingMasters.length)
    throw new EtcdOpError('INVALID_INPUT', `${node.name} is the only master: use "Clean up everything" instead`);
  const lbNode = nodes.find((n) => n.roles.includes('lb'));
  return {
    deps,
    clusterId,
    node,
    via: remainingMasters[0],
    lb: lbNode && lb && lb.kind !== 'none' ? { node: lbNode, kind: lb.kind, port: lb.port } : undefined,
    remainingMasters,
    initialize,
  };
}

function lbUpdateStep(c0: ResetCtx): StepDef<ResetCtx>[] {
  const lb = c0.lb;
  if (!lb || !c0.node.roles.includes('master')) return [];
  const cfg = renderLbConfig(lb.kind, {
    port: lb.port,
    masters: c0.remainingMasters.map((m) => ({ name: m.name, address: m.address, port: APISERVER_PORT })),
  });
  return [
    {
      id: 'load-balancer',
      title: `Load balancer on ${lb.node.name}: only the remaining masters (${c0.remainingMasters.map((m) => m.name).join(', ')})`,
      node: lb.node.name,
      plan: () => [{ kind: 'file', node: lb.node.name, path: cfg.configPath, diff: cfg.content }],
      run: async (c, s) => {
        await applyLbConfig(c, lb.node, cfg, lb.port, s.log);
      },
    },
  ];
}

export function resetNodeJob(ctx: ResetCtx, clusterName: string): JobDef<ResetCtx> {
  const n = ctx.node;
  const master = n.roles.includes('master');
  return {
    kind: 'reset-node',
    title: `Reset ${master ? 'master' : 'worker'} ${n.name}: out of the cluster, kubeadm reset`,
    destructive: true,
    clusterId: ctx.clusterId,
    clusterName,
    steps: [
      {
        id: 'drain',
        title: `Drain ${n.name} (its pods move to other nodes; DaemonSet pods stay)`,
        plan: (c) => [
          {
            kind: 'command',
            node: c.via.name,
            command: `kubectl drain ${n.name} --ignore-daemonsets --delete-emptydir-data --force`,
          },
        ],
        run: async (c, s) => void (await run(c, c.via, 'kubectl-node.sh', ['drain', n.name], s.log)),
      },
      ...(master
        ? [
            {
              id: 'etcd-member',
              title: `Remove ${n.name}'s etcd member first (the others agree while they have quorum)`,
              plan: (c: ResetCtx) => [
                { kind: 'command' as const, node: c.via.name, command: `etcdctl member remove <id of ${n.name}>` },
              ],
              run: async (c: ResetCtx, s: { log: Log }) => {
                const ep = ['https://127.0.0.1:2379'];
                const members = parseMemberList(
                  await c.deps.ops.etcdctl(c.clusterId, c.via.id, ep, ['member', 'list', '-w', 'json'], {
                    log: s.log,
                    tls: STACKED_ETCD_TLS,
                  }),
                );
                const mine = members.find(
                  (m) =>
                    m.name === n.name ||
                    m.peerUrls.some((u) => new URL(u).hostname.replace(/^\[|\]$/g, '') === n.address),
                );
                if (!mine) return void s.log('info', `no etcd member of ${n.name}: nothing to remove`);
                c.memberId = mine.id;
                await c.deps.ops.etcdctl(c.clusterId, c.via.id, ep, ['member', 'remove', mine.id], {
                  log: s.log,
                  tls: STACKED_ETCD_TLS,
                });
                s.log('info', `removed etcd member ${mine.id} (${n.name}); ${members.length - 1} left`);
              },
            },
          ]
        : []),
      {
        id: 'kubeadm-reset',
        title: `kubeadm reset on ${n.name} (and the CNI configuration and Kubernetes iptables rules it leaves)`,
        node: n.name,
        plan: () => [{ kind: 'command', node: n.name, command: 'bash kubeadm-node.sh reset', asRoot: true }],
        run: async (c, s) => void (await run(c, n, 'kubeadm-node.sh', ['reset'], s.log)),
      },
      {
        id: 'delete-node',
        title: `Delete the Node object ${n.name}`,
        plan: (c) => [{ kind: 'command', node: c.via.name, command: `kubectl delete node ${n.name}` }],
        run: async (c, s) => void (await run(c, c.via, 'kubectl-node.sh', ['delete', n.name], s.log)),
      },
      ...lbUpdateStep(ctx),
      {
        id: 'inventory',
        title: `Take the master/worker role off ${n.name} in the inventory and discover the cluster again`,
        run: async (c, s) => {
          const roles = n.roles.filter((r) => r !== 'master' && r !== 'worker');
          await c.deps.inventory.upsertNode(c.clusterId, { ...n, roles });
          await c.initialize(c.via.id, s.log);
        },
      },
    ],
    describeStop: (c, done) =>
      `${n.name} was being reset; done: ${done.join(', ') || 'nothing'}.${c.memberId && !done.includes('kubeadm-reset') ? ` Its etcd member ${c.memberId} is already removed: finish with this job again, or join the node again.` : ''}`,
  };
}

export interface TeardownCtx {
  deps: EtcdDeps;
  clusterId: string;
  nodes: ClusterNode[];
  lb?: { node: ClusterNode; kind: LbConfigKind };
}

/** "Clean up everything": kubeadm reset on every master and worker, then the load balancer removed. */
export function teardownJob(ctx: TeardownCtx, clusterName: string, lbKind: LbConfigKind | 'none'): JobDef<TeardownCtx> {
  const lbNode = ctx.deps.inventory.get(ctx.clusterId).nodes.find((n) => n.roles.includes('lb'));
  // only the unit and the config path are used: which master it pointed at does not matter here
  const lbCfg =
    lbNode && lbKind !== 'none'
      ? renderLbConfig(lbKind, { port: 6443, masters: [{ name: 'any', address: '127.0.0.1', port: 6443 }] })
      : undefined;
  return {
    kind: 'teardown-cluster',
    title: `Clean up everything of ${clusterName}: kubeadm reset on ${ctx.nodes.length} node(s)${lbCfg ? `, ${lbKind} removed from ${lbNode!.name}` : ''}`,
    destructive: true,
    clusterId: ctx.clusterId,
    clusterName,
    steps: [
      {
        id: 'reset',
        title: 'kubeadm reset on every master and worker (workers first would not matter: the whole cluster goes)',
        parallel: true,
        children: ctx.nodes.map((n) => ({
          id: n.name,
          title: `kubeadm reset on ${n.name}`,
          node: n.name,
          plan: () => [{ kind: 'command' as const, node: n.name, command: 'bash kubeadm-node.sh reset', asRoot: true }],
          run: async (c: TeardownCtx, s: { log: Log }) => void (await run(c, n, 'kubeadm-node.sh', ['reset'], s.log)),
        })),
      },
      ...(lbCfg && lbNode
        ? [
            {
              id: 'load-balancer',
              title: `Remove ${lbKind} from ${lbNode.name} (unit stopped and disabled, its configuration put back or removed, packages this app installed purged)`,
              node: lbNode.name,
              plan: () => [
                {
                  kind: 'command' as const,
                  node: lbNode.name,
                  command: `bash lb-remove.sh ${lbCfg.unit} ${lbCfg.configPath}`,
                  asRoot: true,
                },
              ],
              run: async (c: TeardownCtx, s: { log: Log }) =>
                void (await run(c, lbNode, 'lb-remove.sh', [lbCfg.unit, lbCfg.configPath], s.log)),
            },
          ]
        : []),
      {
        id: 'forget',
        title: 'Forget what the app knew of the cluster (the inventory keeps the nodes)',
        run: async (c) => {
          await c.deps.inventory.setFacts(c.clusterId, null);
        },
      },
    ],
  };
}

/**
 * "Restart the Kubernetes runtime" on chosen nodes: containerd, then the kubelet, one node at a time
 * (running containers survive a containerd restart — their shims keep them — and the kubelet picks
 * its pods up again; one at a time keeps every etcd quorum when masters are among them).
 */
export function restartRuntimeJob(
  deps: EtcdDeps,
  clusterId: string,
  clusterName: string,
  nodes: ClusterNode[],
): JobDef<object> {
  const restart = (n: ClusterNode, unit: 'containerd' | 'kubelet') => ({
    id: unit,
    title: `systemctl restart ${unit}`,
    node: n.name,
    plan: () => [
      { kind: 'command' as const, node: n.name, command: `bash systemd-unit.sh restart ${unit}`, asRoot: true },
    ],
    run: async (_c: object, s: { log: Log }) => {
      const out = await deps.ops.run(clusterId, n.id, 'systemd-unit.sh', ['restart', unit], { log: s.log });
      const active = /KES_ACTIVE=(\S*)/.exec(out.stdout)?.[1];
      if (active !== 'active')
        throw new EtcdOpError('REMOTE_FAILED', `${unit} on ${n.name} is ${active || 'unknown'} after the restart`);
    },
  });
  return {
    kind: 'restart-runtime',
    title: `Restart the Kubernetes runtime (containerd + kubelet) on ${nodes.map((n) => n.name).join(', ')}`,
    destructive: false,
    clusterId,
    clusterName,
    steps: nodes.map((n) => ({
      id: n.name,
      title: `Restart containerd and the kubelet on ${n.name}`,
      node: n.name,
      safePoint: true,
      children: [restart(n, 'containerd'), restart(n, 'kubelet')],
    })),
  };
}
