// States: capture the configuration of every master and etcd node into the vault, and bring a
// captured state back (files put back, what it ran started, what it did not stopped, health
// waited for). Bringing a state back refuses when the topology changed, and says what differs.
import type { ClusterNode } from '@shared/domain';
import { createHash } from 'node:crypto';
import type { StateNode } from '@shared/vault';
import { readEtcdManifest } from './manifests';
import { initializeCluster } from '../cluster/initialize';
import { layoutFromLive, type EtcdLayout } from '../cluster/kubeadm-config';
import { kubeadmConfigStep, liveMaster, type KubeadmConfigTrack } from './kubeadm-config-step';
import type { Log } from '../cluster/ops';
import type { StateManifest } from '../vault/states';
import type { StepDef } from '../jobs/types';
import { EtcdOpError, masterNodes, requireFacts, waitFor, type EtcdDeps } from './deps';
import {
  ETCD_ENV,
  ETCD_UNIT,
  MANIFESTS,
  PARKED,
  parkStackedEtcd,
  putFile,
  readFiles,
  removeFile,
  scriptCommand,
  STATE_FILES,
  staticPod,
  staticPodCommand,
  type RemoteFile,
} from './files';
import type { PlanItem } from '@shared/jobs';
import { unifiedDiff } from './manifests';
import { STACKED_ETCD_TLS } from '../cluster/ops';
import { parseMemberList } from '../cluster/etcdjson';
import { clientUrl } from './external-config';

/** How long a good restore waits for the load balancer before it only warns (haproxy rise is ~1 s). */
const ENDPOINT_WAIT_MS = 30_000;

/** Nodes whose configuration a state covers: masters plus nodes with the etcd role. */
export function stateNodes(deps: EtcdDeps, clusterId: string): ClusterNode[] {
  const masters = masterNodes(deps, clusterId);
  const etcd = deps.inventory
    .get(clusterId)
    .nodes.filter((n) => n.roles.includes('etcd') && !masters.some((m) => m.id === n.id));
  return [...masters, ...etcd];
}

function dataDirOf(files: RemoteFile[]): string | null {
  for (const p of [`${MANIFESTS}/etcd.yaml`, `${PARKED}/etcd.yaml`]) {
    const f = files.find((x) => x.path === p);
    if (f?.content) {
      try {
        return readEtcdManifest(f.content.toString('utf8')).dataDir;
      } catch {
        // unreadable manifest: no data dir recorded
      }
    }
  }
  const unit = files.find((x) => x.path === ETCD_UNIT || x.path === ETCD_ENV);
  const m = unit?.content
    ? (/--data-dir[= ](\S+)/.exec(unit.content.toString('utf8')) ??
      /ETCD_DATA_DIR=(\S+)/.exec(unit.content.toString('utf8')))
    : null;
  return m ? m[1].replace(/^["']|["']$/g, '') : null;
}

export async function captureState(
  deps: EtcdDeps,
  clusterId: string,
  reason: string,
  log?: Log,
): Promise<StateManifest> {
  const facts = requireFacts(deps, clusterId);
  const cluster = deps.inventory.get(clusterId);
  const nodes = stateNodes(deps, clusterId);
  const collected = await Promise.all(
    nodes.map(async (n) => {
      const r = await readFiles(deps, clusterId, n.id, STATE_FILES, [], log);
      return {
        name: n.name,
        nodeId: n.id,
        address: n.address,
        roles: n.roles,
        etcdDataDir: dataDirOf(r.files),
        etcdUnitActive: r.unitActive === null ? null : r.unitActive === 'active',
        files: r.files,
      };
    }),
  );
  const m = await deps.states.save({
    clusterId,
    clusterName: cluster.name,
    mode: facts.mode,
    reason,
    nodes: collected,
  });
  log?.('info', `state ${m.id} saved (${m.nodes.length} nodes, mode ${m.mode})`);
  return m;
}

export interface TopologyCheck {
  ok: boolean;
  differences: string[];
}

/** Can this state be brought back? Every node still known at the same address, data dirs present. */
export async function checkStateTopology(
  deps: EtcdDeps,
  clusterId: string,
  state: StateManifest,
  log?: Log,
): Promise<TopologyCheck> {
  const differences: string[] = [];
  const nodes = deps.inventory.get(clusterId).nodes;
  if (state.clusterId !== clusterId) differences.push(`the state belongs to cluster ${state.clusterName}`);
  for (const sn of state.nodes) {
    const n = nodes.find((x) => x.id === sn.nodeId);
    if (!n) {
      differences.push(`${sn.name} (${sn.address}) is no longer in the inventory`);
      continue;
    }
    if (n.address !== sn.address) differences.push(`${sn.name} moved from ${sn.address} to ${n.address}`);
    if (sn.etcdDataDir) {
      try {
        const r = await readFiles(deps, clusterId, n.id, [], [sn.etcdDataDir], log);
        if (!r.dirs.get(sn.etcdDataDir)) differences.push(`${sn.name}: data dir ${sn.etcdDataDir} no longer exists`);
      } catch (e) {
        differences.push(`${sn.name}: unreachable (${(e as Error).message.split('\n')[0]})`);
      }
    }
  }
  return { ok: differences.length === 0, differences };
}

export interface RestoreStateCtx {
  deps: EtcdDeps;
  clusterId: string;
  stateId: string;
  state?: StateManifest;
  content?: (node: string, path: string) => Buffer | null;
  log?: Log;
  /** kubeadm-config rewritten for the layout brought back (kubeadm-config-step.ts). */
  kubeadmConfig?: KubeadmConfigTrack;
}

/** etcd and apiserver endpoints healthy again after a state or restore change. */
/** Until the apiserver on `node` answers 200 on /readyz (through its own port, not the LB). */
export function waitApiserverReady(
  deps: EtcdDeps,
  clusterId: string,
  node: ClusterNode,
  opts: { timeoutMs: number; intervalMs: number; signal?: AbortSignal },
): Promise<void> {
  return waitFor(
    `the apiserver on ${node.name} to be ready`,
    async () => (await deps.ops.kubeGet(clusterId, node.id, '/readyz')).status === 200,
    opts,
  );
}

export async function waitHealthy(
  deps: EtcdDeps,
  clusterId: string,
  nodes: ClusterNode[],
  opts: { etcd: boolean; apiserver: boolean; timeoutMs: number; log?: Log; signal?: AbortSignal },
): Promise<void> {
  if (opts.etcd && nodes.length) {
    await waitFor(
      'etcd to be healthy',
      async () => {
        // `endpoint health --cluster` only checks members that have published client URLs; a
        // restored member that never started has none and would be skipped silently (found by
        // the failure tests: a broken member passed this gate). So every member must have them.
        const members = parseMemberList(
          await deps.ops.etcdctl(clusterId, nodes[0].id, ['https://127.0.0.1:2379'], ['member', 'list', '-w', 'json'], {
            tls: STACKED_ETCD_TLS,
          }),
        );
        // A member that never started has no name yet: name it by the node its peer URL points at.
        const byAddress = new Map(deps.inventory.get(clusterId).nodes.map((n) => [n.address, n.name]));
        const nodeOf = (m: { peerUrls: string[] }) => {
          try {
            return byAddress.get(new URL(m.peerUrls[0]).hostname.replace(/^\[|\]$/g, ''));
          } catch {
            return undefined;
          }
        };
        const silent = members.filter((m) => !m.clientUrls.length).map((m) => m.name || nodeOf(m) || m.id);
        if (silent.length) throw new Error(`member(s) not started yet: ${silent.join(', ')}`);
        const out = await deps.ops.etcdctl(
          clusterId,
          nodes[0].id,
          ['https://127.0.0.1:2379'],
          ['endpoint', 'health', '--cluster', '-w', 'json'],
          { tls: STACKED_ETCD_TLS },
        );
        const arr = JSON.parse(out.slice(out.indexOf('['), out.lastIndexOf(']') + 1)) as { health: boolean }[];
        return arr.length > 0 && arr.every((x) => x.health);
      },
      // polled often: inside a switch or restore this wait is part of the apiservers' outage
      { timeoutMs: opts.timeoutMs, intervalMs: 500, signal: opts.signal, log: opts.log },
    );
    opts.log?.('info', 'etcd is healthy');
  }
  if (opts.apiserver) {
    await Promise.all(
      nodes.map((n) =>
        waitApiserverReady(deps, clusterId, n, { timeoutMs: opts.timeoutMs, intervalMs: 1500, signal: opts.signal }),
      ),
    );
    opts.log?.('info', 'apiservers are ready');
    if (nodes.length) await waitEndpointReady(deps, clusterId, nodes[0], opts);
  }
}

/**
 * Every apiserver being ready on its own node is not yet what users and kubelets see: a load balancer
 * with active checks marks backends up again only on its next check (found by CI: a request through
 * haproxy right after a restore was dropped). So also wait for /readyz through the control plane
 * endpoint. A load balancer that stays broken is not etcd's fault and must not roll back a good
 * restore, so after a short wait this only warns.
 */
async function waitEndpointReady(
  deps: EtcdDeps,
  clusterId: string,
  via: ClusterNode,
  opts: { timeoutMs: number; log?: Log; signal?: AbortSignal },
): Promise<void> {
  try {
    await waitFor(
      'the control plane endpoint to answer /readyz',
      async () => (await deps.ops.endpointGet(clusterId, via.id, '/readyz')).status === 200,
      { timeoutMs: Math.min(opts.timeoutMs, ENDPOINT_WAIT_MS), intervalMs: 500, signal: opts.signal },
    );
    opts.log?.('info', 'the control plane endpoint answers /readyz');
  } catch (e) {
    if (e instanceof EtcdOpError && e.code === 'CANCELLED') throw e;
    opts.log?.(
      'stderr',
      `warning: every apiserver is ready, but the control plane endpoint (admin.conf on ${via.name}) does not answer /readyz: check the load balancer. ${(e as Error).message}`,
    );
  }
}

/**
 * Put a state's files back on one node, with the static pods parked; returns which pods to start.
 * A manifest that was active in the state is written parked and started afterwards, so etcd on
 * all masters starts together from complete configuration.
 */
export async function applyStateFiles(
  deps: EtcdDeps,
  clusterId: string,
  node: ClusterNode,
  files: { path: string; mode: number; content: Buffer | null }[],
  log?: Log,
): Promise<{ start: ('etcd' | 'kube-apiserver')[]; unitActive: boolean | null }> {
  const start: ('etcd' | 'kube-apiserver')[] = [];
  const byPath = new Map(files.map((f) => [f.path, f]));
  for (const name of ['etcd', 'kube-apiserver'] as const) {
    const active = byPath.get(`${MANIFESTS}/${name}.yaml`);
    const parked = byPath.get(`${PARKED}/${name}.yaml`);
    const use = active?.content ? active : parked?.content ? parked : null;
    if (use?.content) {
      await putFile(deps, clusterId, node, `${PARKED}/${name}.yaml`, use.content, use.mode, log);
      if (use === active) start.push(name);
    } else if (active || parked) {
      await removeFile(deps, clusterId, node, `${PARKED}/${name}.yaml`, log);
    }
  }
  for (const p of [ETCD_UNIT, ETCD_ENV]) {
    const f = byPath.get(p);
    if (!f) continue;
    if (f.content) await putFile(deps, clusterId, node, p, f.content, f.mode, log);
    else await removeFile(deps, clusterId, node, p, log);
  }
  return { start, unitActive: null };
}

/**
 * systemd-unit.sh arguments to bring an external member to how a state had it. A restart is
 * queued (--no-block) rather than waited for: the unit is Type=notify and etcd reports ready only
 * with quorum, so `systemctl restart` of one member blocks until its peers run too — members
 * restarted one after another never finish. Callers restart them together, then wait for health.
 */
export function unitArgs(active: boolean): string[] {
  return active ? ['restart', 'etcd', '--no-block'] : ['stop', 'etcd'];
}

/** Wait for the external members at these addresses to be healthy (external.ts imports this module). */
async function waitExternal(deps: EtcdDeps, clusterId: string, addresses: string[], log?: Log): Promise<void> {
  const { waitExternalHealthy } = await import('./external');
  await waitExternalHealthy(deps, clusterId, addresses.map(clientUrl), 120_000, log);
}

/** One node of a "bring back state" plan: the files that change and what is stopped and started. */
export interface StateNodePreview {
  node: ClusterNode;
  master: boolean;
  /** Files whose content changes (diff current → state; a file the state did not have is removed). */
  files: { path: string; diff: string }[];
  /** Why the current files could not be read (the diffs are then unknown). */
  unreadable?: string;
  startEtcd: boolean;
  startApiserver: boolean;
  /** The external etcd unit: restarted (true), stopped (false), left alone (null). */
  unit: boolean | null;
}

export interface StateRestorePreview {
  state: StateManifest;
  nodes: StateNodePreview[];
  /** State nodes no longer in the inventory (the check step refuses the job). */
  missing: string[];
}

/** What bringing back `stateId` changes on every node, read at plan time (nothing is changed). */
export async function previewStateRestore(
  deps: EtcdDeps,
  clusterId: string,
  stateId: string,
  log?: Log,
): Promise<StateRestorePreview> {
  const { manifest, content } = await deps.states.load(stateId);
  const inventory = deps.inventory.get(clusterId).nodes;
  const missing: string[] = [];
  const nodes = await Promise.all(
    manifest.nodes.map(async (sn): Promise<StateNodePreview | null> => {
      const node = inventory.find((n) => n.id === sn.nodeId);
      if (!node) {
        missing.push(sn.name);
        return null;
      }
      const wanted = (path: string) => {
        const f = sn.files.find((x) => x.path === path);
        return f?.sha256 ? (content(sn.name, path)?.toString('utf8') ?? null) : null;
      };
      let current: RemoteFile[] = [];
      let unreadable: string | undefined;
      try {
        current = (await readFiles(deps, clusterId, node.id, STATE_FILES, [], log)).files;
      } catch (e) {
        unreadable = (e as Error).message.split('\n')[0];
      }
      const files = unreadable
        ? []
        : sn.files
            .map((f) => {
              const now = current.find((x) => x.path === f.path)?.content?.toString('utf8') ?? '';
              return { path: f.path, diff: unifiedDiff(f.path, now, wanted(f.path) ?? '') };
            })
            .filter((f) => f.diff);
      return {
        node,
        master: node.roles.includes('master'),
        files,
        unreadable,
        startEtcd: wanted(`${MANIFESTS}/etcd.yaml`) !== null,
        startApiserver: wanted(`${MANIFESTS}/kube-apiserver.yaml`) !== null,
        unit: sn.etcdUnitActive,
      };
    }),
  );
  return { state: manifest, nodes: nodes.filter((n): n is StateNodePreview => !!n), missing };
}

/** The plan items of each step of "bring back a state" (commands per node, file diffs). */
export function stateRestorePlanItems(p: StateRestorePreview): Record<string, PlanItem[]> {
  const masters = p.nodes.filter((n) => n.master);
  const cmd = (n: StateNodePreview, command: string): PlanItem => ({ kind: 'command', node: n.node.name, command });
  return {
    check: [
      {
        kind: 'note',
        text: `State ${p.state.id} (${p.state.mode}, ${p.state.nodes.length} node(s), ${new Date(p.state.createdAt).toISOString()}): ${p.state.reason}`,
      },
      ...(p.missing.length
        ? [
            {
              kind: 'note' as const,
              text: `Not in the inventory any more: ${p.missing.join(', ')}. The check refuses to bring this state back.`,
            },
          ]
        : []),
    ],
    'save-current': [
      { kind: 'note', text: 'Archive manifests, units and data dirs of every master and etcd node into the vault' },
    ],
    stop: masters.flatMap((n) => [
      cmd(n, staticPodCommand('park', 'kube-apiserver')),
      cmd(n, staticPodCommand('park', 'etcd')),
    ]),
    files: p.nodes.flatMap((n): PlanItem[] => [
      ...(n.unreadable
        ? [
            {
              kind: 'note' as const,
              text: `${n.node.name}: the current files could not be read (${n.unreadable}); the state's files are put back as they are.`,
            },
          ]
        : []),
      ...n.files.map((f): PlanItem => ({ kind: 'file', node: n.node.name, path: f.path, diff: f.diff })),
      ...(n.unit === null ? [] : [cmd(n, scriptCommand('systemd-unit.sh', unitArgs(n.unit)))]),
    ]),
    'start-etcd': masters.filter((n) => n.startEtcd).map((n) => cmd(n, staticPodCommand('unpark', 'etcd'))),
    'start-apiservers': masters
      .filter((n) => n.startApiserver)
      .map((n) => cmd(n, staticPodCommand('unpark', 'kube-apiserver'))),
  };
}

/** The step tree of "bring back state X". */
export function restoreStateSteps(ctx: RestoreStateCtx): StepDef<RestoreStateCtx>[] {
  const { deps, clusterId } = ctx;
  const nodesOf = (c: RestoreStateCtx) => c.state!.nodes.map((sn) => deps.inventory.node(clusterId, sn.nodeId));
  const starts = new Map<string, ('etcd' | 'kube-apiserver')[]>();
  // Read once at plan time (the steps' plans are asked one after another), never at run time.
  let preview: Promise<Record<string, PlanItem[]>> | undefined;
  const planOf = (id: string) => async () =>
    (await (preview ??= previewStateRestore(deps, clusterId, ctx.stateId).then(stateRestorePlanItems)))[id] ?? [];
  return [
    {
      id: 'check',
      title: 'Check the state against the cluster as it is now',
      plan: planOf('check'),
      run: async (c, s) => {
        const loaded = await deps.states.load(c.stateId);
        c.state = loaded.manifest;
        c.content = loaded.content;
        const t = await checkStateTopology(deps, clusterId, loaded.manifest, s.log);
        if (!t.ok)
          throw new EtcdOpError('TOPOLOGY_CHANGED', `This state cannot be brought back: ${t.differences.join('; ')}`);
      },
    },
    {
      id: 'save-current',
      title: 'Save the current state first (so this can be undone)',
      plan: planOf('save-current'),
      run: async (_c, s) =>
        void (await captureState(deps, clusterId, `before bringing back state ${ctx.stateId}`, s.log)),
    },
    {
      id: 'stop',
      title: 'Stop apiservers and etcd members (static pods parked)',
      plan: planOf('stop'),
      safePoint: true,
      run: async (c, s) => {
        const masters = nodesOf(c).filter((n) => n.roles.includes('master'));
        await Promise.all(masters.map((n) => staticPod(deps, clusterId, n, 'park', 'kube-apiserver', { log: s.log })));
        await parkStackedEtcd(deps, clusterId, masters, { log: s.log });
      },
    },
    {
      id: 'files',
      title: 'Put the state’s files back on every node',
      plan: planOf('files'),
      safePoint: false,
      run: async (c, s) => {
        const restarted: string[] = [];
        await Promise.all(
          c.state!.nodes.map(async (sn) => {
            const node = deps.inventory.node(clusterId, sn.nodeId);
            const files = sn.files.map((f) => ({
              path: f.path,
              mode: f.mode,
              content: f.sha256 ? c.content!(sn.name, f.path) : null,
            }));
            const r = await applyStateFiles(deps, clusterId, node, files, s.log);
            starts.set(node.id, r.start);
            if (sn.etcdUnitActive !== null) {
              // --no-block: see unitArgs; the members' health is waited for below.
              await deps.ops.run(clusterId, node.id, 'systemd-unit.sh', unitArgs(sn.etcdUnitActive), { log: s.log });
              if (sn.etcdUnitActive) restarted.push(node.address);
            }
          }),
        );
        if (restarted.length) await waitExternal(deps, clusterId, restarted, s.log);
      },
    },
    {
      id: 'start-etcd',
      title: 'Start the etcd members the state ran',
      plan: planOf('start-etcd'),
      safePoint: false,
      run: async (c, s) => {
        const nodes = nodesOf(c).filter((n) => starts.get(n.id)?.includes('etcd'));
        await Promise.all(nodes.map((n) => staticPod(deps, clusterId, n, 'unpark', 'etcd', { log: s.log })));
        if (nodes.length)
          await waitHealthy(deps, clusterId, nodes, { etcd: true, apiserver: false, timeoutMs: 120_000, log: s.log });
      },
    },
    {
      id: 'start-apiservers',
      title: 'Start the apiservers and wait until they are ready',
      plan: planOf('start-apiservers'),
      safePoint: false,
      run: async (c, s) => {
        const nodes = nodesOf(c).filter((n) => starts.get(n.id)?.includes('kube-apiserver'));
        await Promise.all(nodes.map((n) => staticPod(deps, clusterId, n, 'unpark', 'kube-apiserver', { log: s.log })));
        await waitHealthy(deps, clusterId, nodes, { etcd: false, apiserver: true, timeoutMs: 120_000, log: s.log });
      },
    },
    {
      // Snapshots and states record the stored mode: it must be the one brought back.
      id: 'refresh',
      title: 'Refresh what the app knows about the cluster (mode)',
      run: async (_c, s) => {
        const f = await initializeCluster(deps, clusterId, requireFacts(deps, clusterId).seedNodeId, s.log);
        s.log('info', `mode is now ${f.mode}`);
      },
    },
    kubeadmConfigStep<RestoreStateCtx>(deps, clusterId, {
      masters: () => masterNodes(deps, clusterId),
      planned: () => stateLayout(deps, clusterId, ctx.stateId),
    }),
  ];
}

/** The etcd layout a state's active manifests describe (for the plan; null when unclear). */
async function stateLayout(deps: EtcdDeps, clusterId: string, stateId: string): Promise<EtcdLayout | null> {
  try {
    const { manifest, content } = await deps.states.load(stateId);
    const text = (node: string, name: string) => content(node, `${MANIFESTS}/${name}.yaml`)?.toString('utf8');
    const masters = masterNodes(deps, clusterId).map((n) => {
      const sn = manifest.nodes.find((x) => x.nodeId === n.id);
      return liveMaster(n, sn && text(sn.name, 'kube-apiserver'), sn && text(sn.name, 'etcd'));
    });
    return layoutFromLive(masters).layout;
  } catch {
    return null;
  }
}

/**
 * The automatic way back of restore and switch jobs: put a saved state's files back on `nodes`
 * (default: every node of the state), start what it ran and stop what it did not, wait for
 * health. Everything on those masters is stopped first, so old and new members never mix.
 */
export async function bringBackState(
  deps: EtcdDeps,
  clusterId: string,
  stateId: string,
  opts: { log: Log; nodeIds?: string[]; external?: (urls: string[]) => Promise<void> },
): Promise<void> {
  const { log } = opts;
  const loaded = await deps.states.load(stateId);
  const inventoryNodes = deps.inventory.get(clusterId).nodes;
  const inScope = loaded.manifest.nodes.filter((sn) => !opts.nodeIds || opts.nodeIds.includes(sn.nodeId));
  // A master the job never changed is left alone: stopping its pods again brings nothing back,
  // and a pod its kubelet will not let go of (a usual reason for a job to fail before changing a
  // node) would hold the rollback for the whole park timeout, twice.
  const untouched = await unchangedMasters(deps, clusterId, inScope, inventoryNodes, log);
  const stateNodes = inScope.filter((sn) => !untouched.has(sn.nodeId));
  const nodes = stateNodes
    .map((sn) => inventoryNodes.find((n) => n.id === sn.nodeId))
    .filter((n): n is ClusterNode => !!n);
  const masters = nodes.filter((n) => n.roles.includes('master'));
  const soft = (p: Promise<unknown>) => p.catch((e) => log('error', String((e as Error).message ?? e)));
  await Promise.all(masters.map((n) => soft(staticPod(deps, clusterId, n, 'park', 'kube-apiserver', { log }))));
  await parkStackedEtcd(deps, clusterId, masters, { log, soft: true });
  const starts = new Map<string, ('etcd' | 'kube-apiserver')[]>();
  const units: { node: ClusterNode; active: boolean }[] = [];
  for (const sn of stateNodes) {
    const node = nodes.find((n) => n.id === sn.nodeId);
    if (!node) continue;
    const files = sn.files.map((f) => ({
      path: f.path,
      mode: f.mode,
      content: f.sha256 ? loaded.content(sn.name, f.path) : null,
    }));
    starts.set(node.id, (await applyStateFiles(deps, clusterId, node, files, log)).start);
    if (sn.etcdUnitActive !== null) units.push({ node, active: sn.etcdUnitActive });
  }
  // All external members at once (a restart one after another never finishes: see unitArgs);
  // opts.external waits for their health below.
  await Promise.all(
    units.map((u) => soft(deps.ops.run(clusterId, u.node.id, 'systemd-unit.sh', unitArgs(u.active), { log }))),
  );
  const etcdNodes = masters.filter((n) => starts.get(n.id)?.includes('etcd'));
  await Promise.all(etcdNodes.map((n) => staticPod(deps, clusterId, n, 'unpark', 'etcd', { log })));
  if (etcdNodes.length)
    await waitHealthy(deps, clusterId, etcdNodes, { etcd: true, apiserver: false, timeoutMs: 120_000, log });
  const activeUnits = units.filter((u) => u.active).map((u) => u.node.address);
  if (activeUnits.length && opts.external) await opts.external(activeUnits);
  const apiNodes = masters.filter((n) => starts.get(n.id)?.includes('kube-apiserver'));
  await Promise.all(apiNodes.map((n) => staticPod(deps, clusterId, n, 'unpark', 'kube-apiserver', { log })));
  if (apiNodes.length)
    await waitHealthy(deps, clusterId, apiNodes, { etcd: false, apiserver: true, timeoutMs: 120_000, log });
}

/**
 * The masters among `stateNodes` that are exactly as the state saved them: every file byte for
 * byte, with its mode, present or absent alike (a parked manifest is a change), and no external
 * unit. A node that cannot be read counts as changed. (Exported for tests.)
 */
export async function unchangedMasters(
  deps: EtcdDeps,
  clusterId: string,
  stateNodes: StateNode[],
  inventoryNodes: ClusterNode[],
  log: Log,
): Promise<Set<string>> {
  const same = new Set<string>();
  await Promise.all(
    stateNodes.map(async (sn) => {
      const node = inventoryNodes.find((n) => n.id === sn.nodeId);
      if (!node?.roles.includes('master') || sn.etcdUnitActive !== null) return;
      const now = await readFiles(deps, clusterId, node.id, STATE_FILES, [], log).catch(() => null);
      if (!now || now.unitActive !== null) return;
      const current = new Map(now.files.map((f) => [f.path, f]));
      const unchanged = sn.files.every((f) => {
        const c = current.get(f.path);
        if (!c?.content) return f.sha256 === null;
        return f.sha256 === createHash('sha256').update(c.content).digest('hex') && f.mode === c.mode;
      });
      if (unchanged && sn.files.length) {
        same.add(node.id);
        log('info', `${node.name}: as the saved state has it (its files unchanged, nothing parked): left alone`);
      }
    }),
  );
  return same;
}

export { requireFacts };
