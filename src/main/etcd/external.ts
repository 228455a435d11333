// External etcd: provision members on chosen nodes (certificates from the cluster's etcd CA,
// tools, data and backup folders, a systemd unit configured but not started), start/stop them,
// and restore a snapshot onto them with the same guarantees as the embedded restore.
import { posix } from 'node:path';
import type { ClusterNode } from '@shared/domain';
import type { JobDef, PlanItem, StepDef } from '../jobs/types';
import type { SnapshotMeta } from '../vault/snapshots';
import type { StateManifest } from '../vault/states';
import { kesValues, STACKED_ETCD_TLS, type Log } from '../cluster/ops';
import { sh } from '../remote/quote';
import { EtcdOpError, masterNodes, opSuffix, requireFacts, transferDir, waitFor, type EtcdDeps } from './deps';
import { apiserversAfterRestore } from './plan-notes';
import { evenMembersWarning } from '@shared/quorum';
import { ApiError } from '../api/errors';
import {
  ETCD_ENV,
  ETCD_UNIT,
  MANIFESTS,
  PARKED,
  LEADER_QUERY_TIMEOUTS,
  leaderLast,
  leaderNode,
  putFile,
  readFiles,
  removeFile,
} from './files';
import {
  clientUrl,
  editEtcdEnv,
  EXTERNAL_PKI,
  parseEtcdEnv,
  peerUrl,
  renderEtcdEnv,
  renderEtcdUnit,
} from './external-config';
import { issueMemberCerts, loadCa, type EtcdCa } from './pki';
import { bringBackState, captureState, waitHealthy } from './state';
import { kubeadmConfigStep, liveLayout, type KubeadmConfigTrack } from './kubeadm-config-step';
import { readEtcdManifest, unifiedDiff } from './manifests';
import { checkRestoreTools, chooseEtcdInstall, installTools, type CachedArchive, type ToolCache } from './tools';

export interface ExternalNodeInfo {
  node: ClusterNode;
  env: Map<string, string>;
  envText: string;
  unitActive: boolean;
}

/** External members as configured on their nodes (role etcd, not a master, with /etc/default/etcd). */
export async function externalMembers(deps: EtcdDeps, clusterId: string, log?: Log): Promise<ExternalNodeInfo[]> {
  const masters = new Set(masterNodes(deps, clusterId).map((n) => n.id));
  const nodes = deps.inventory.get(clusterId).nodes.filter((n) => n.roles.includes('etcd') && !masters.has(n.id));
  const out = await Promise.all(
    nodes.map(async (node) => {
      const r = await readFiles(deps, clusterId, node.id, [ETCD_ENV, ETCD_UNIT], [], log);
      const env = r.files.find((f) => f.path === ETCD_ENV)?.content;
      if (!env || !r.files.find((f) => f.path === ETCD_UNIT)?.content) return null;
      const text = env.toString('utf8');
      return { node, env: parseEtcdEnv(text), envText: text, unitActive: r.unitActive === 'active' };
    }),
  );
  return out.filter((x): x is ExternalNodeInfo => !!x);
}

/** Client URLs of the external cluster, for --etcd-servers. */
export function externalClientUrls(members: { node: ClusterNode }[]): string[] {
  return members.map((m) => clientUrl(m.node.address));
}

/** Read the etcd CA (cert + key) from a master that holds the key. Only kept in memory. */
export async function readCa(deps: EtcdDeps, clusterId: string, log?: Log): Promise<EtcdCa> {
  const facts = requireFacts(deps, clusterId);
  const holders = masterNodes(deps, clusterId).filter((n) => facts.etcdCaKeyOn.includes(n.name));
  for (const n of holders) {
    try {
      const r = await readFiles(
        deps,
        clusterId,
        n.id,
        [`${deps.ops.etcdPkiDir(clusterId, n.id)}/ca.crt`, `${deps.ops.etcdPkiDir(clusterId, n.id)}/ca.key`],
        [],
        (s, t) => s !== 'stdout' && log?.(s, t),
      );
      const [crt, key] = r.files.map((f) => f.content?.toString('utf8'));
      if (crt && key) return await loadCa(crt, key);
    } catch (e) {
      log?.('error', `reading the etcd CA from ${n.name}: ${(e as Error).message}`);
    }
  }
  throw new EtcdOpError(
    'CA_UNAVAILABLE',
    "No master could provide the etcd CA key (ca.key in kubeadm's etcd PKI folder)",
  );
}

/** etcd health of the external cluster, checked from a master with its healthcheck-client cert. */
export async function externalHealthy(deps: EtcdDeps, clusterId: string, urls: string[]): Promise<boolean> {
  const master = masterNodes(deps, clusterId)[0];
  const out = await deps.ops.etcdctl(clusterId, master.id, urls, ['endpoint', 'health', '-w', 'json'], {
    tls: STACKED_ETCD_TLS,
  });
  const arr = JSON.parse(out.slice(out.indexOf('['), out.lastIndexOf(']') + 1)) as { health: boolean }[];
  return arr.length === urls.length && arr.every((x) => x.health);
}

export async function waitExternalHealthy(
  deps: EtcdDeps,
  clusterId: string,
  urls: string[],
  timeoutMs: number,
  log?: Log,
): Promise<void> {
  // Polled often: inside a switch this wait is part of the apiservers' outage (one etcdctl call per poll).
  await waitFor('the external etcd cluster to be healthy', () => externalHealthy(deps, clusterId, urls), {
    timeoutMs,
    intervalMs: 500,
    log,
  });
  log?.('info', `external etcd healthy: ${urls.join(', ')}`);
}

/**
 * Stop the etcd units of external members: followers together, then the leader (a leader that
 * still sees a peer waits ~7 s trying to hand over leadership — bench:switch showed 7 s stops).
 */
export async function stopExternalUnits(
  deps: EtcdDeps,
  clusterId: string,
  nodes: ClusterNode[],
  opts: { log?: Log; soft?: boolean } = {},
): Promise<void> {
  // Only running members can lead; stopped ones (the usual case inside a switch) need no order.
  const status = await Promise.all(nodes.map((n) => unitAction(deps, clusterId, n, 'status').catch(() => '')));
  const active = nodes.filter((_, i) => status[i] === 'active');
  const leader =
    active.length > 1
      ? await deps.ops
          .etcdctl(
            clusterId,
            masterNodes(deps, clusterId)[0].id,
            active.map((n) => clientUrl(n.address)),
            ['endpoint', 'status', '-w', 'json', ...LEADER_QUERY_TIMEOUTS],
            { tls: STACKED_ETCD_TLS, timeoutMs: 5_000 },
          )
          .then((out) => leaderNode(out, active))
          .catch(() => undefined) // sick: stop them all together
      : undefined;
  await leaderLast(nodes, leader, (n) => unitAction(deps, clusterId, n, 'stop', opts.log), opts);
}

/**
 * `noBlock`: queue a start/restart and return at once (`systemctl --no-block`). The unit is
 * Type=notify and etcd reports ready only once its cluster has quorum, so a member started alone
 * blocks `systemctl start` until its peers run too — starting members one after another never
 * finishes. Whoever starts several members together this way waits for cluster health afterwards.
 */
export async function unitAction(
  deps: EtcdDeps,
  clusterId: string,
  node: ClusterNode,
  action: 'start' | 'stop' | 'restart' | 'enable' | 'disable' | 'status',
  log?: Log,
  opts: { noBlock?: boolean } = {},
): Promise<string> {
  const args = [action, 'etcd', ...(opts.noBlock ? ['--no-block'] : [])];
  const r = await deps.ops.run(clusterId, node.id, 'systemd-unit.sh', args, { log, timeoutMs: 60_000 });
  return kesValues(r.stdout).get('ACTIVE') ?? '';
}

/** Start several external members together and return at once; wait for health afterwards. */
export async function startExternalUnits(
  deps: EtcdDeps,
  clusterId: string,
  nodes: ClusterNode[],
  action: 'start' | 'restart',
  log?: Log,
): Promise<void> {
  await Promise.all(nodes.map((n) => unitAction(deps, clusterId, n, action, log, { noBlock: true })));
}

// ---------------------------------------------------------------------------------- provision

export interface ProvisionCtx {
  deps: EtcdDeps;
  tools: ToolCache;
  clusterId: string;
  nodes: ClusterNode[];
  startEmpty: boolean;
  token: string;
  warnings: string[];
  hostnames: Map<string, string>;
  etcdBinary: Map<string, string>;
  /** The etcd version each node will run: /etc/default/etcd is spelled for it. */
  etcdVersions: Map<string, string | null>;
  /** Nodes that get the cluster's etcd version from a cached release archive. */
  archives: Map<string, CachedArchive>;
  /** The etcd version the cluster runs (from the image in etcd.yaml). */
  clusterVersion: string | null;
  dataDirs: Map<string, string>;
  ca?: EtcdCa;
}

/**
 * The etcd version the cluster runs: the image tag of a master's etcd.yaml (active, or parked
 * after a switch), else what initialize recorded.
 */
export async function clusterEtcdVersion(deps: EtcdDeps, clusterId: string, log?: Log): Promise<string | null> {
  for (const m of masterNodes(deps, clusterId)) {
    try {
      const r = await readFiles(deps, clusterId, m.id, [`${MANIFESTS}/etcd.yaml`, `${PARKED}/etcd.yaml`], [], log);
      for (const f of r.files) {
        const v = f.content ? readEtcdManifest(f.content.toString('utf8')).version : undefined;
        if (v) return v;
      }
    } catch (e) {
      log?.('info', `${m.name}: cannot read etcd.yaml (${(e as Error).message.split('\n')[0]})`);
    }
  }
  return requireFacts(deps, clusterId).etcdVersion;
}

export async function prepareProvision(
  deps: EtcdDeps,
  tools: ToolCache,
  clusterId: string,
  nodeIds: string[],
  startEmpty: boolean,
  log?: Log,
): Promise<ProvisionCtx> {
  requireFacts(deps, clusterId);
  // 1, 3 and 5 are the recommendation; 2 and 4 work (the old tool's own example has 2) and are
  // planned with a warning about quorum. More than 5 only slows writes down.
  if (nodeIds.length < 1 || nodeIds.length > 5)
    throw new EtcdOpError(
      'INVALID_INPUT',
      `Choose 1 to 5 nodes for the external etcd (1, 3 or 5 recommended; got ${nodeIds.length})`,
    );
  const nodes = nodeIds.map((id) => deps.inventory.node(clusterId, id));
  const warnings: string[] = [];
  const masters = new Set(masterNodes(deps, clusterId).map((n) => n.id));
  const hostnames = new Map<string, string>();
  const etcdBinary = new Map<string, string>();
  const etcdVersions = new Map<string, string | null>();
  const archives = new Map<string, CachedArchive>();
  const dataDirs = new Map<string, string>();
  // The external members must run the version the cluster runs (its snapshot is restored onto
  // them), built for each node's CPU — never simply the newest archive in the cache.
  const clusterVersion = await clusterEtcdVersion(deps, clusterId, log);
  const cached = await tools.list();
  // Every node must answer before anything is written, so an unreachable node leaves nothing half-done.
  const problems: string[] = [];
  const toolProblems: string[] = [];
  // First contacts: their host keys are confirmed by the user in one table (as at initialize).
  const unknownKeys: { nodeId: string; name: string; hostKey: unknown }[] = [];
  await Promise.all(
    nodes.map(async (n) => {
      try {
        const f = await deps.ops.discover(clusterId, n.id, log);
        hostnames.set(n.id, f.hostname || n.name);
        const choice = chooseEtcdInstall(f, clusterVersion, cached);
        if (choice.kind === 'existing') {
          etcdBinary.set(n.id, f.tools.etcd!);
          etcdVersions.set(n.id, choice.version);
        } else if (choice.kind === 'install') {
          archives.set(n.id, choice.archive);
          etcdVersions.set(n.id, choice.archive.version);
          if (f.tools.etcd)
            warnings.push(
              `${n.name}: its etcd ${f.versions.etcd ?? ''} is not the cluster's ${clusterVersion}; installing ${choice.archive.name} into /usr/local/bin`,
            );
        } else toolProblems.push(`${n.name} ${choice.problem}`);
        const ours = !!f.etcdUnit && /Kube Etcd Switch/.test(f.etcdUnit);
        const clash = f.listening.filter((p) => p === 2379 || p === 2380);
        if (clash.length && !ours) {
          if (masters.has(n.id) && f.etcd)
            problems.push(
              `${n.name} is a master whose stacked etcd member still uses ports ${clash.join('/')}; retire it first`,
            );
          else warnings.push(`${n.name}: port(s) ${clash.join(', ')} already in use — etcd will fail to start there`);
        }
        dataDirs.set(n.id, masters.has(n.id) ? '/var/lib/etcd-external' : '/var/lib/etcd');
      } catch (e) {
        const err = e as { code?: string; details?: { hostKey?: unknown }; message: string };
        if (err.code === 'HOST_KEY_UNKNOWN')
          unknownKeys.push({ nodeId: n.id, name: n.name, hostKey: err.details?.hostKey });
        else problems.push(`${n.name}: ${err.message.split('\n')[0]}`);
      }
    }),
  );
  if (unknownKeys.length && !problems.length)
    throw new ApiError(
      'HOST_KEYS_UNKNOWN',
      `${unknownKeys.map((k) => k.name).join(', ')}: host key${unknownKeys.length === 1 ? '' : 's'} not trusted yet; confirm, then plan again. Nothing was changed.`,
      { nodes: unknownKeys },
    );
  for (const k of unknownKeys) problems.push(`${k.name}: its host key is not trusted yet`);
  if (problems.length)
    throw new EtcdOpError('PREFLIGHT_FAILED', `Cannot provision: ${problems.join('; ')}. Nothing was changed.`);
  if (nodes.length % 2 === 0) warnings.push(evenMembersWarning(nodes.length));
  if (toolProblems.length)
    throw new EtcdOpError(
      'TOOLS_MISSING',
      `Cannot provision: ${toolProblems.sort().join('; ')}. The cluster runs etcd ${clusterVersion ?? '(unknown version)'}: ` +
        'add or download that release archive under Settings → etcd tools, then plan again. Nothing was changed.',
    );
  return {
    deps,
    tools,
    clusterId,
    nodes,
    startEmpty,
    token: `kes-ext-${opSuffix()}`,
    warnings,
    hostnames,
    etcdBinary,
    etcdVersions,
    archives,
    clusterVersion,
    dataDirs,
  };
}

function initialClusterOf(nodes: ClusterNode[]): string {
  return nodes.map((n) => `${n.name}=${peerUrl(n.address)}`).join(',');
}

export function provisionJob(ctx: ProvisionCtx, clusterName: string): JobDef<ProvisionCtx> {
  const { deps, clusterId } = ctx;
  const initialCluster = initialClusterOf(ctx.nodes);
  const envOf = (n: ClusterNode) =>
    renderEtcdEnv(
      { name: n.name, address: n.address, dataDir: ctx.dataDirs.get(n.id)! },
      { initialCluster, token: ctx.token, state: 'new' },
      ctx.etcdVersions.get(n.id) ?? null,
    );
  const perNode = (n: ClusterNode): StepDef<ProvisionCtx> => ({
    id: n.name,
    title: `Set up ${n.name}`,
    node: n.name,
    plan: (): PlanItem[] => {
      const archive = ctx.archives.get(n.id);
      return [
        ...(archive
          ? [
              {
                kind: 'command' as const,
                node: n.name,
                command: sh`bash install-etcd-tools.sh ${archive.name} ${archive.sha256}`,
              },
            ]
          : []),
        { kind: 'command', node: n.name, command: sh`bash prepare-external.sh ${ctx.dataDirs.get(n.id)!}` },
        ...[
          'ca.crt',
          'server.crt',
          'server.key',
          'peer.crt',
          'peer.key',
          'healthcheck-client.crt',
          'healthcheck-client.key',
        ].map((f) => ({
          kind: 'note' as const,
          text: `${n.name}: write ${EXTERNAL_PKI}/${f} (${f.endsWith('.key') ? '0600' : '0644'})`,
        })),
        { kind: 'file', node: n.name, path: ETCD_ENV, diff: unifiedDiff(ETCD_ENV, '', envOf(n)) },
        {
          kind: 'file',
          node: n.name,
          path: ETCD_UNIT,
          diff: unifiedDiff(ETCD_UNIT, '', renderEtcdUnit(ctx.etcdBinary.get(n.id) ?? '/usr/local/bin/etcd')),
        },
        { kind: 'command', node: n.name, command: 'bash systemd-unit.sh enable etcd' },
      ];
    },
    run: async (c, s) => {
      const archive = c.archives.get(n.id);
      if (archive) {
        const r = await installTools(deps, clusterId, n, archive, s.log);
        s.log('info', `installed ${r.installed.join(', ')} ${r.version}`);
        c.etcdBinary.set(n.id, r.paths.etcd ?? '/usr/local/bin/etcd');
      }
      await deps.ops.run(clusterId, n.id, 'prepare-external.sh', [c.dataDirs.get(n.id)!], { log: s.log });
      const certs = await issueMemberCerts(c.ca!, {
        hostname: c.hostnames.get(n.id)!,
        address: n.address,
        name: n.name,
      });
      await putFile(deps, clusterId, n, `${EXTERNAL_PKI}/ca.crt`, c.ca!.cert.toString('pem') + '\n', 0o644, s.log);
      for (const [name, pair] of [
        ['server', certs.server],
        ['peer', certs.peer],
        ['healthcheck-client', certs.client],
      ] as const) {
        await putFile(deps, clusterId, n, `${EXTERNAL_PKI}/${name}.crt`, pair.cert, 0o644, s.log);
        await putFile(deps, clusterId, n, `${EXTERNAL_PKI}/${name}.key`, pair.key, 0o600, s.log);
      }
      await putFile(deps, clusterId, n, ETCD_ENV, envOf(n), 0o644, s.log);
      await putFile(deps, clusterId, n, ETCD_UNIT, renderEtcdUnit(c.etcdBinary.get(n.id)!), 0o644, s.log);
      await unitAction(deps, clusterId, n, 'enable', s.log);
      await deps.inventory.recordExternalEtcd(clusterId, n.id, {
        provisionedAt: new Date().toISOString(),
        version: c.etcdVersions.get(n.id) ?? c.clusterVersion,
        dataDir: c.dataDirs.get(n.id)!,
      });
      if (!n.roles.includes('etcd')) await deps.inventory.upsertNode(clusterId, { ...n, roles: [...n.roles, 'etcd'] });
    },
  });
  return {
    kind: 'provision-external',
    title: `Provision an external etcd on ${ctx.nodes.map((n) => n.name).join(', ')}`,
    destructive: false,
    clusterId,
    clusterName,
    steps: [
      {
        id: 'ca',
        title: 'Read the etcd CA from a master (kept in memory only)',
        plan: () => ctx.warnings.map((w) => ({ kind: 'note' as const, text: `Warning: ${w}` })),
        run: async (c, s) => {
          c.ca = await readCa(deps, clusterId, s.log);
          s.log('info', `etcd CA: ${c.ca.cert.subject}`);
        },
      },
      {
        id: 'nodes',
        title: 'Certificates, tools, folders and unit on every node',
        parallel: true,
        children: ctx.nodes.map(perNode),
      },
      {
        id: 'start',
        title: 'Start the members empty',
        runIf: (c) => c.startEmpty,
        plan: () =>
          ctx.startEmpty
            ? ctx.nodes.map((n) => ({
                kind: 'command' as const,
                node: n.name,
                command: 'bash systemd-unit.sh start etcd --no-block',
              }))
            : [{ kind: 'note' as const, text: 'Members stay stopped until a restore (configured, not started)' }],
        run: async (c, s) => {
          // Together and without waiting on each: no member reports ready before quorum.
          await startExternalUnits(deps, clusterId, c.nodes, 'start', s.log);
          await waitExternalHealthy(
            deps,
            clusterId,
            c.nodes.map((n) => clientUrl(n.address)),
            120_000,
            s.log,
          );
        },
      },
    ],
    describeStop: (_c, done) =>
      done.length
        ? `Some nodes were set up (${done.join(', ')}); no member was started. Rerun the job to finish.`
        : 'Nothing was changed.',
  };
}

// ----------------------------------------------------------------------------- restore

export interface ExternalRestorePlan {
  node: ClusterNode;
  oldEnv: string;
  newEnv: string;
  newDataDir: string;
  /** Version of the etcd binary on the node (set by the preflight): the restore tool must fit it. */
  serverVersion?: string | null;
  remoteSnapshot?: string;
}

/** Upload a vault snapshot to every external member and restore it there (units stopped first). */
export async function restoreOntoExternal(
  deps: EtcdDeps,
  clusterId: string,
  meta: SnapshotMeta,
  plans: ExternalRestorePlan[],
  token: string,
  initialCluster: string,
  log: Log,
  signal?: AbortSignal,
): Promise<void> {
  // Uploaded while the members still run (a restore onto the etcd the apiservers use keeps its
  // outage to the restore itself), then stopped and restored.
  await Promise.all(
    plans.map(async (p) => {
      const { dir } = await transferDir(deps, clusterId, p.node, log);
      p.remoteSnapshot = posix.join(dir, `restore-${meta.id}.db`);
      // Checked on the node against the vault's sha256 before anything is restored (restore-member.sh).
      await deps.pool.upload(deps.targetOf(clusterId, p.node.id), deps.snapshots.filePath(meta.id), p.remoteSnapshot, {
        signal,
        hash: false,
        onCommand: (c) => log('cmd', c),
      });
    }),
  );
  await stopExternalUnits(
    deps,
    clusterId,
    plans.map((p) => p.node),
    { log },
  );
  await Promise.all(
    plans.map(async (p) => {
      await deps.ops.run(
        clusterId,
        p.node.id,
        'restore-member.sh',
        [
          p.remoteSnapshot!,
          meta.sha256,
          p.node.name,
          initialCluster,
          token,
          peerUrl(p.node.address),
          p.newDataDir,
          p.serverVersion ?? '',
        ],
        { log, timeoutMs: 30 * 60_000 },
      );
      // the copy is not needed once restored; removed beside the env write, not after the start
      await Promise.all([
        putFile(deps, clusterId, p.node, ETCD_ENV, p.newEnv, 0o644, log),
        removeFile(deps, clusterId, p.node, p.remoteSnapshot!).catch(() => undefined),
      ]);
    }),
  );
  // Started together without waiting for each (Type=notify: no member is ready before quorum);
  // every caller waits for the external cluster's health next.
  await startExternalUnits(
    deps,
    clusterId,
    plans.map((p) => p.node),
    'start',
    log,
  );
}

export function planExternalRestore(
  members: ExternalNodeInfo[],
  suffix: string,
): { plans: ExternalRestorePlan[]; token: string; initialCluster: string } {
  const token = `kes-${suffix}`;
  const initialCluster = initialClusterOf(members.map((m) => m.node));
  const plans = members.map((m) => {
    const base = (m.env.get('ETCD_DATA_DIR') ?? '/var/lib/etcd').replace(/-kes-[0-9]{8}-[0-9]{6}-[0-9a-f]{4}$/, '');
    const newDataDir = `${base}-kes-${suffix}`;
    return {
      node: m.node,
      oldEnv: m.envText,
      newEnv: editEtcdEnv(m.envText, { dataDir: newDataDir, initialCluster, token, state: 'new' }),
      newDataDir,
    };
  });
  return { plans, token, initialCluster };
}

export interface ExternalRestoreCtx {
  deps: EtcdDeps;
  clusterId: string;
  meta: SnapshotMeta;
  members: ExternalNodeInfo[];
  plans: ExternalRestorePlan[];
  token: string;
  initialCluster: string;
  changed: boolean;
  state?: StateManifest;
  gateTimeoutMs: number;
  /** kubeadm-config rewritten when the apiservers use this etcd (kubeadm-config-step.ts). */
  kubeadmConfig?: KubeadmConfigTrack;
}

export async function prepareExternalRestore(
  deps: EtcdDeps,
  clusterId: string,
  snapshotId: string,
  opts: { gateTimeoutMs?: number; log?: Log } = {},
): Promise<ExternalRestoreCtx> {
  requireFacts(deps, clusterId);
  const meta = await deps.snapshots.get(snapshotId);
  const members = await externalMembers(deps, clusterId, opts.log);
  if (!members.length) throw new EtcdOpError('NO_EXTERNAL', 'No external etcd is provisioned: provision one first');
  const p = planExternalRestore(members, opSuffix());
  return { deps, clusterId, meta, members, ...p, changed: false, gateTimeoutMs: opts.gateTimeoutMs ?? 180_000 };
}

export function restoreExternalJob(ctx: ExternalRestoreCtx, clusterName: string): JobDef<ExternalRestoreCtx> {
  const { deps, clusterId } = ctx;
  return {
    kind: 'restore-external',
    title: `Restore snapshot ${ctx.meta.id.slice(0, 8)} onto the external etcd`,
    destructive: true,
    clusterId,
    clusterName,
    steps: [
      {
        id: 'verify',
        title: 'Verify the snapshot in the vault',
        plan: () => [
          {
            kind: 'note',
            text: `Snapshot ${ctx.meta.id}: ${ctx.meta.size} bytes, revision ${ctx.meta.revision ?? '?'}, ${ctx.meta.totalKeys ?? '?'} keys`,
          },
          { kind: 'note', text: apiserversAfterRestore(requireFacts(deps, clusterId).mode, 'external') },
        ],
        run: async (c, s) => {
          const m = await deps.snapshots.verify(c.meta.id, s.signal);
          if (m.integrity !== 'ok')
            throw new EtcdOpError('SNAPSHOT_INVALID', 'The snapshot has no integrity hash; refusing to restore it');
        },
      },
      {
        id: 'preflight',
        title: 'Check every member: etcd tools fit the etcd version it runs',
        run: async (c, s) => {
          // Before any member stops: a member's server is the etcd binary on its node.
          const v = await checkRestoreTools(
            deps,
            clusterId,
            c.plans.map((p) => ({ node: p.node })),
            s.log,
          );
          for (const p of c.plans) p.serverVersion = v.get(p.node.id) ?? null;
        },
      },
      {
        id: 'save-state',
        title: 'Save the current state (the way back)',
        run: async (c, s) =>
          void (c.state = await captureState(
            deps,
            clusterId,
            `before restoring snapshot ${c.meta.id} onto the external etcd`,
            s.log,
          )),
      },
      {
        id: 'restore',
        title: 'Upload, stop the members, restore each into a new data dir, start',
        safePoint: true,
        plan: () =>
          ctx.plans.map((p) => ({
            kind: 'file' as const,
            node: p.node.name,
            path: ETCD_ENV,
            diff: unifiedDiff(ETCD_ENV, p.oldEnv, p.newEnv),
          })),
        run: async (c, s) => {
          c.changed = true;
          await restoreOntoExternal(deps, clusterId, c.meta, c.plans, c.token, c.initialCluster, s.log, s.signal);
        },
      },
      {
        id: 'health',
        title: 'Wait until the external cluster is healthy',
        safePoint: false,
        run: async (c, s) =>
          waitExternalHealthy(
            deps,
            clusterId,
            c.plans.map((p) => clientUrl(p.node.address)),
            c.gateTimeoutMs,
            s.log,
          ),
      },
      // The restored data carries the ClusterConfiguration of the snapshot's time: when the
      // apiservers use this etcd, they serve it as kubeadm's stored configuration.
      kubeadmConfigStep<ExternalRestoreCtx>(deps, clusterId, {
        masters: () => masterNodes(deps, clusterId),
        planned: async () => {
          const l = await liveLayout(deps, clusterId, masterNodes(deps, clusterId)).catch(() => null);
          return l?.layout.kind === 'external' ? l.layout : null;
        },
        onlyExternal: true,
        before: (c, log) =>
          waitHealthy(deps, clusterId, masterNodes(deps, clusterId), {
            etcd: false,
            apiserver: true,
            timeoutMs: c.gateTimeoutMs,
            log,
          }),
      }),
    ],
    rollback: {
      title: 'Roll back: bring back the external members’ previous configuration',
      // Once the kubeadm-config step began, the restore itself was healthy: keep it.
      when: (c) => c.changed && !!c.state && !c.kubeadmConfig,
      run: async (c, s) =>
        rollbackExternal(
          deps,
          clusterId,
          c.state!,
          c.members.map((m) => m.node),
          s.log,
        ),
    },
  };
}

/** Put the saved state's unit/env files back on external nodes and start/stop as they were. */
export async function rollbackExternal(
  deps: EtcdDeps,
  clusterId: string,
  state: StateManifest,
  nodes: ClusterNode[],
  log: Log,
): Promise<void> {
  await bringBackState(deps, clusterId, state.id, {
    log,
    nodeIds: nodes.map((n) => n.id),
    external: (addresses) => waitExternalHealthy(deps, clusterId, addresses.map(clientUrl), 120_000, log),
  });
}

export { EXTERNAL_PKI };
