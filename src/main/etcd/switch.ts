// Switch the apiservers between the stacked ("embedded") etcd and the external one, both ways,
// as one job: save the state, stop the apiservers (so no write is lost between the snapshot and
// the switch), take a fresh snapshot of the source — or use a snapshot from the vault ("restore
// onto the target and point the apiservers at it"), or the data the target already holds — restore
// it onto the target, rewire
// --etcd-servers in every kube-apiserver.yaml (the etcd client cert flags stay: same CA), start
// the apiservers, wait for readiness. Any failed gate rolls back to the saved state. The time
// the apiservers were unavailable is measured and recorded.
import type { ClusterNode } from '@shared/domain';
import type { SwitchData } from '@shared/jobs';
import type { JobDef } from '../jobs/types';
import type { EtcdLayout } from '../cluster/kubeadm-config';
import type { SnapshotMeta } from '../vault/snapshots';
import type { StateManifest } from '../vault/states';
import { STACKED_ETCD_TLS, type Log } from '../cluster/ops';
import { parseRangeCount } from '../cluster/etcdjson';
import { initializeCluster } from '../cluster/initialize';
import { EtcdOpError, masterNodes, opSuffix, requireFacts, type EtcdDeps } from './deps';
import { MANIFESTS, PARKED, parkStackedEtcd, putFile, readFiles, staticPod, staticPodCommand } from './files';
import { editApiserverEtcdServers, readApiserverManifest, readEtcdManifest, unifiedDiff } from './manifests';
import {
  kubeadmConfigOutcome,
  kubeadmConfigStep,
  undoKubeadmConfig,
  type KubeadmConfigTrack,
} from './kubeadm-config-step';
import { bringBackState, captureState, waitApiserverReady, waitHealthy } from './state';
import { takeSnapshot } from './snapshot';
import { CHECK_BACK_FAILED, planStackedMembers, restoreMemberArgs } from './restore-embedded';
import { corruptCheckStep, writeFirstStartManifest, type FirstStartMember } from './first-start';
import { clientUrl } from './external-config';
import { checkRestoreTools } from './tools';
import {
  externalMembers,
  planExternalRestore,
  restoreOntoExternal,
  stopExternalUnits,
  waitExternalHealthy,
  type ExternalNodeInfo,
  type ExternalRestorePlan,
} from './external';

export interface SwitchCtx {
  deps: EtcdDeps;
  clusterId: string;
  direction: 'to-external' | 'to-embedded';
  masters: ClusterNode[];
  external: ExternalNodeInfo[];
  /** Per master: current kube-apiserver.yaml (path + text) and the rewired one. */
  apiservers: { node: ClusterNode; path: string; oldText: string; newText: string }[];
  /** to-embedded: per master etcd.yaml (parked) and its restored version. */
  stacked: {
    node: ClusterNode;
    name: string;
    peerUrl: string;
    path: string;
    oldText: string;
    newText: string;
    /** newText with etcd's initial corruption check off, for the first start (first-start.ts). */
    firstStart?: string;
    newDataDir: string;
    /** The etcd version the member runs (image tag): what the restore tool must match. */
    serverVersion: string | null;
    remoteSnapshot?: string;
  }[];
  externalPlans: ExternalRestorePlan[];
  token: string;
  initialCluster: string;
  keepExternalRunning: boolean;
  /** Where the target's data comes from (see SwitchData). */
  data: SwitchData;
  /** data 'on-target': what the target held when planned (shown in the plan, checked again). */
  targetData?: TargetData;
  /** The snapshot restored onto the target: fresh (taken by the job) or from the vault. */
  snapshot?: SnapshotMeta;
  state?: StateManifest;
  changed: boolean;
  downSince?: number;
  downtimeMs?: number;
  /** The last change (etcd.yaml back with the corruption check on) failed after a good switch. */
  checkBackFailed?: boolean;
  gateTimeoutMs: number;
  /** kubeadm-config rewritten for the new layout (kubeadm-config-step.ts). */
  kubeadmConfig?: KubeadmConfigTrack;
}

async function readApiservers(deps: EtcdDeps, clusterId: string, masters: ClusterNode[], log?: Log) {
  return Promise.all(
    masters.map(async (node) => {
      const r = await readFiles(
        deps,
        clusterId,
        node.id,
        [`${MANIFESTS}/kube-apiserver.yaml`, `${PARKED}/kube-apiserver.yaml`],
        [],
        log,
      );
      const f = r.files.find((x) => x.content);
      if (!f?.content) throw new EtcdOpError('NOT_A_MASTER', `${node.name} has no kube-apiserver.yaml`);
      return { node, path: f.path, text: f.content.toString('utf8') };
    }),
  );
}

/** What an etcd holds, as the apiservers would see it. */
export interface TargetData {
  revision: number;
  /** Keys under /registry/ (Kubernetes objects). */
  keys: number;
}

/**
 * Revision and Kubernetes key count of the switch's target, asked from the first master (its
 * healthcheck-client cert is trusted by both etcds). Refused when the target does not answer or
 * holds no Kubernetes object: pointing the apiservers at it would serve an empty cluster.
 */
export async function readTargetData(
  deps: EtcdDeps,
  clusterId: string,
  direction: SwitchCtx['direction'],
  external: ExternalNodeInfo[],
  log?: Log,
): Promise<TargetData> {
  const master = masterNodes(deps, clusterId)[0];
  const toExternal = direction === 'to-external';
  const urls = toExternal ? external.map((m) => clientUrl(m.node.address)) : ['https://127.0.0.1:2379'];
  const what = toExternal ? 'The external etcd' : `The stacked etcd member on ${master.name}`;
  let out: string;
  try {
    out = await deps.ops.etcdctl(
      clusterId,
      master.id,
      urls,
      // one key, but `count` is the whole range's (etcdctl 3.4 has no --count-only)
      ['get', '/registry/', '--prefix', '--keys-only', '--limit=1', '-w', 'json'],
      {
        tls: STACKED_ETCD_TLS,
        log,
      },
    );
  } catch (e) {
    throw new EtcdOpError(
      'TARGET_NOT_SERVING',
      `${what} does not answer, so it has no data to use (${lastLine((e as Error).message)}). Switch with a fresh snapshot, or restore a snapshot onto it and point the apiservers at it.`,
    );
  }
  const data = parseRangeCount(out);
  if (!data.keys)
    throw new EtcdOpError(
      'TARGET_EMPTY',
      `${what} holds no Kubernetes object (revision ${data.revision}): the apiservers would serve an empty cluster. Switch with a fresh snapshot, or restore a snapshot onto it first.`,
    );
  return data;
}

export async function prepareSwitch(
  deps: EtcdDeps,
  clusterId: string,
  direction: SwitchCtx['direction'],
  opts: {
    keepExternalRunning?: boolean;
    gateTimeoutMs?: number;
    log?: Log;
    data?: SwitchData;
    snapshotId?: string;
  } = {},
): Promise<SwitchCtx> {
  const data = opts.data ?? 'fresh-snapshot';
  if ((data === 'vault-snapshot') !== !!opts.snapshotId)
    throw new EtcdOpError(
      'INVALID_INPUT',
      data === 'vault-snapshot'
        ? 'Choose the snapshot to restore onto the target'
        : 'A snapshot is only used with data "vault-snapshot"',
    );
  const facts = requireFacts(deps, clusterId);
  if (direction === 'to-external' && facts.mode !== 'embedded-up')
    throw new EtcdOpError(
      'WRONG_MODE',
      `The cluster is ${facts.mode}; switching to external needs embedded-up (initialize again if this is stale)`,
    );
  if (direction === 'to-embedded' && facts.mode !== 'external-up')
    throw new EtcdOpError(
      'WRONG_MODE',
      `The cluster is ${facts.mode}; switching to embedded needs external-up (initialize again if this is stale)`,
    );
  const masters = masterNodes(deps, clusterId);
  const external = await externalMembers(deps, clusterId, opts.log);
  if (!external.length) throw new EtcdOpError('NO_EXTERNAL', 'No external etcd is provisioned: provision one first');
  const snapshot = opts.snapshotId ? await deps.snapshots.get(opts.snapshotId) : undefined;
  const targetData =
    data === 'on-target' ? await readTargetData(deps, clusterId, direction, external, opts.log) : undefined;
  const suffix = opSuffix();
  const apis = await readApiservers(deps, clusterId, masters, opts.log);
  const targetServers =
    direction === 'to-external' ? external.map((m) => clientUrl(m.node.address)) : ['https://127.0.0.1:2379'];
  const apiservers = apis.map((a) => ({
    node: a.node,
    path: a.path,
    oldText: a.text,
    newText: editApiserverEtcdServers(a.text, targetServers),
  }));
  let stacked: SwitchCtx['stacked'] = [];
  let externalPlans: ExternalRestorePlan[] = [];
  let token: string;
  let initialCluster: string;
  if (direction === 'to-external') {
    const p = planExternalRestore(external, suffix);
    externalPlans = p.plans;
    token = p.token;
    initialCluster = p.initialCluster;
  } else {
    const p = await planStackedMembers(deps, clusterId, masters, suffix, opts.log);
    token = p.token;
    initialCluster = p.initialCluster;
    stacked = p.members.map((m) => ({
      node: m.node,
      name: m.name,
      peerUrl: m.peerUrl,
      path: m.manifestPath,
      oldText: m.oldManifest,
      newText: m.newManifest,
      firstStart: m.firstStartManifest,
      newDataDir: m.newDataDir,
      serverVersion: m.serverVersion,
    }));
  }
  return {
    deps,
    clusterId,
    direction,
    masters,
    external,
    apiservers,
    stacked,
    externalPlans,
    token,
    initialCluster,
    keepExternalRunning: !!opts.keepExternalRunning,
    data,
    targetData,
    snapshot,
    changed: false,
    gateTimeoutMs: opts.gateTimeoutMs ?? 180_000,
  };
}

export function switchJob(ctx: SwitchCtx, clusterName: string): JobDef<SwitchCtx> {
  const { deps, clusterId } = ctx;
  const toExternal = ctx.direction === 'to-external';
  const masters = () => ctx.masters;
  const target = toExternal ? 'the external etcd' : 'the embedded etcd';
  const source = toExternal ? 'the embedded etcd' : 'the external etcd';
  const restores = ctx.data !== 'on-target';
  return {
    kind: toExternal ? 'switch-to-external' : 'switch-to-embedded',
    title:
      ctx.data === 'vault-snapshot'
        ? `Restore snapshot ${ctx.snapshot!.id.slice(0, 8)} onto ${target} and point the apiservers at it`
        : ctx.data === 'on-target'
          ? `Point the apiservers at ${target}, with the data it holds`
          : toExternal
            ? 'Switch the apiservers to the external etcd'
            : 'Switch the apiservers back to the embedded etcd',
    destructive: true,
    clusterId,
    clusterName,
    steps: [
      {
        id: 'preflight',
        title: toExternal
          ? 'Check the external members are configured'
          : 'Check the stacked members can be brought back',
        plan: () => [
          {
            kind: 'note',
            text: `Target --etcd-servers: ${toExternal ? ctx.external.map((m) => clientUrl(m.node.address)).join(',') : 'https://127.0.0.1:2379'}`,
          },
          { kind: 'note', text: dataNote(ctx, source, target) },
          {
            kind: 'note',
            text: `When the job ends, the apiservers use ${target}${toExternal ? ` (${ctx.external.map((m) => m.node.name).join(', ')})` : ' (each master’s own member)'}.`,
          },
        ],
        run: async (c, s) => {
          const ext = await externalMembers(deps, clusterId, s.log);
          if (ext.length !== c.external.length)
            throw new EtcdOpError(
              'TOPOLOGY_CHANGED',
              'The external members changed since the plan; plan the switch again',
            );
          if (c.data === 'vault-snapshot') {
            const m = await deps.snapshots.verify(c.snapshot!.id, s.signal);
            if (m.integrity !== 'ok')
              throw new EtcdOpError('SNAPSHOT_INVALID', 'The snapshot has no integrity hash; refusing to restore it');
            s.log('info', `snapshot ${m.id} verified: sha256 and integrity hash match`);
          }
          if (c.data === 'on-target') {
            // Checked again: what the user saw in the plan must still be what the target holds.
            const now = await readTargetData(deps, clusterId, c.direction, c.external, s.log);
            if (now.revision !== c.targetData!.revision)
              throw new EtcdOpError(
                'TARGET_CHANGED',
                `${cap(target)} is at revision ${now.revision}, not ${c.targetData!.revision} as planned: something wrote to it since; plan the switch again`,
              );
            s.log(
              'info',
              `${cap(target)} holds ${now.keys} Kubernetes keys at revision ${now.revision}: used as it is`,
            );
            return;
          }
          // Tools that cannot write a data dir for the target's etcd are refused now, before the
          // apiservers stop, not by restore-member.sh in the middle of the switch.
          if (toExternal) {
            const v = await checkRestoreTools(
              deps,
              clusterId,
              c.externalPlans.map((p) => ({ node: p.node })),
              s.log,
            );
            for (const p of c.externalPlans) p.serverVersion = v.get(p.node.id) ?? null;
          } else {
            await checkRestoreTools(
              deps,
              clusterId,
              c.stacked.map((m) => ({ node: m.node, serverVersion: m.serverVersion })),
              s.log,
            );
          }
        },
      },
      {
        id: 'save-state',
        title: 'Save the current state (the way back)',
        run: async (c, s) =>
          void (c.state = await captureState(
            deps,
            clusterId,
            `before switching ${toExternal ? 'to external' : 'to embedded'}`,
            s.log,
          )),
      },
      // To external: the external members serve nothing yet and are about to be restored, so stop
      // them before the apiservers go down — a stop takes seconds that would otherwise count as
      // unavailable time (bench:switch). restoreOntoExternal's own stop then finds them stopped.
      // Steps that do not apply to the data chosen are left out of the plan (not shown as skipped).
      ...(toExternal && restores
        ? [
            {
              id: 'stop-external-first',
              title: 'Stop the external members (they serve nothing yet; restored next)',
              plan: () =>
                ctx.external.map((m) => ({
                  kind: 'command' as const,
                  node: m.node.name,
                  command: 'bash systemd-unit.sh stop etcd',
                })),
              run: async (c: SwitchCtx, s: { log: Log }) => {
                c.changed = true; // the rollback restarts them if they were running
                await stopExternalUnits(
                  deps,
                  clusterId,
                  c.external.map((m) => m.node),
                  { log: s.log },
                );
              },
            },
          ]
        : []),
      {
        id: 'stop-apiservers',
        title: 'Stop the apiservers (no writes from here on)',
        safePoint: true,
        plan: () =>
          masters().map((n) => ({
            kind: 'command' as const,
            node: n.name,
            command: staticPodCommand('park', 'kube-apiserver'),
          })),
        run: async (c, s) => {
          c.changed = true;
          c.downSince = Date.now();
          await Promise.all(
            masters().map((n) => staticPod(deps, clusterId, n, 'park', 'kube-apiserver', { log: s.log })),
          );
        },
      },
      ...(ctx.data === 'fresh-snapshot'
        ? [
            {
              id: 'snapshot',
              title: `Take a fresh snapshot of ${source}`,
              safePoint: false,
              run: async (c: SwitchCtx, s: { log: Log; progress: (f: number) => void }) => {
                c.snapshot = await takeSnapshot(deps, clusterId, {
                  note: `switch ${toExternal ? 'to external' : 'to embedded'}: source`,
                  log: s.log,
                  onProgress: (d, t) => s.progress(t ? d / t : 0),
                });
              },
            },
          ]
        : []),
      ...(!restores
        ? []
        : toExternal
          ? [
              {
                id: 'restore-external',
                title: 'Restore the snapshot onto the external members and start them',
                safePoint: false,
                plan: () =>
                  ctx.externalPlans.map((p) => ({
                    kind: 'file' as const,
                    node: p.node.name,
                    path: '/etc/default/etcd',
                    diff: unifiedDiff('/etc/default/etcd', p.oldEnv, p.newEnv),
                  })),
                run: async (c: SwitchCtx, s: { log: Log }) => {
                  await restoreOntoExternal(
                    deps,
                    clusterId,
                    c.snapshot!,
                    c.externalPlans,
                    c.token,
                    c.initialCluster,
                    s.log,
                  );
                  await waitExternalHealthy(
                    deps,
                    clusterId,
                    c.externalPlans.map((p) => clientUrl(p.node.address)),
                    c.gateTimeoutMs,
                    s.log,
                  );
                },
              },
            ]
          : [
              {
                id: 'restore-stacked',
                title: 'Restore the snapshot onto every stacked member and start them',
                safePoint: false,
                plan: () =>
                  ctx.stacked.map((m) => ({
                    kind: 'file' as const,
                    node: m.node.name,
                    path: `${MANIFESTS}/etcd.yaml`,
                    diff: unifiedDiff(`${MANIFESTS}/etcd.yaml`, m.oldText, m.newText),
                  })),
                run: async (c: SwitchCtx, s: { log: Log }) => {
                  const { posix } = await import('node:path');
                  const { transferDir } = await import('./deps');
                  await Promise.all(
                    c.stacked.map(async (m) => {
                      const { dir } = await transferDir(deps, clusterId, m.node, s.log);
                      m.remoteSnapshot = posix.join(dir, `restore-${c.snapshot!.id}.db`);
                      // checked on the node against the vault's sha256 (restore-member.sh)
                      await deps.pool.upload(
                        deps.targetOf(clusterId, m.node.id),
                        deps.snapshots.filePath(c.snapshot!.id),
                        m.remoteSnapshot,
                        { hash: false, onCommand: (c) => s.log('cmd', c) },
                      );
                      await staticPod(deps, clusterId, m.node, 'park', 'etcd', { log: s.log });
                      await deps.ops.run(
                        clusterId,
                        m.node.id,
                        'restore-member.sh',
                        restoreMemberArgs(m, c.snapshot!.sha256, c.initialCluster, c.token),
                        { log: s.log, timeoutMs: 30 * 60_000 },
                      );
                      await writeFirstStartManifest(
                        deps,
                        clusterId,
                        stackedFirstStart(c).find((x) => x.node === m.node)!,
                        s.log,
                      );
                    }),
                  );
                  await Promise.all(
                    c.stacked.map((m) => staticPod(deps, clusterId, m.node, 'unpark', 'etcd', { log: s.log })),
                  );
                  await waitHealthy(deps, clusterId, c.masters, {
                    etcd: true,
                    apiserver: false,
                    timeoutMs: c.gateTimeoutMs,
                    log: s.log,
                  });
                },
              },
            ]),
      {
        id: 'rewire',
        title: 'Point every apiserver at the new etcd and start it; wait until all are ready',
        safePoint: false,
        plan: () =>
          ctx.apiservers.map((a) => ({
            kind: 'file' as const,
            node: a.node.name,
            path: `${MANIFESTS}/kube-apiserver.yaml`,
            diff: unifiedDiff(`${MANIFESTS}/kube-apiserver.yaml`, a.oldText, a.newText),
          })),
        run: async (c, s) => {
          await Promise.all(
            c.apiservers.map((a) =>
              putFile(deps, clusterId, a.node, `${PARKED}/kube-apiserver.yaml`, a.newText, 0o600, s.log),
            ),
          );
          // One apiserver first, alone: an apiserver's start is CPU-bound (caches filled from etcd),
          // and started beside the others on a small master it is ready seconds later
          // (bench:switch). The load balancer serves as soon as this one is ready, which ends the
          // outage for clients; the others start after it.
          const [first, ...rest] = c.masters;
          await staticPod(deps, clusterId, first, 'unpark', 'kube-apiserver', { log: s.log });
          await waitApiserverReady(deps, clusterId, first, { timeoutMs: c.gateTimeoutMs, intervalMs: 250 });
          c.downtimeMs = Date.now() - c.downSince!;
          s.metric?.('apiserverUnavailableMs', c.downtimeMs);
          s.log(
            'info',
            `the apiserver on ${first.name} is ready: the apiservers were unavailable for ${(c.downtimeMs / 1000).toFixed(1)} s; starting the others`,
          );
          await Promise.all(rest.map((n) => staticPod(deps, clusterId, n, 'unpark', 'kube-apiserver', { log: s.log })));
          await waitHealthy(deps, clusterId, c.masters, {
            etcd: false,
            apiserver: true,
            timeoutMs: c.gateTimeoutMs,
            log: s.log,
          });
          s.metric?.('allApiserversReadyMs', Date.now() - c.downSince!);
        },
      },
      // After the rewire, outside the unavailable time: nothing uses the stacked members any more
      // (the apiservers were stopped before the snapshot, so they hold nothing the external lacks).
      // Stopping them takes seconds, and in the lab a kubelet busy stopping etcd started the
      // apiserver beside it late (bench:switch: 7 s of one master's downtime).
      ...(toExternal
        ? [
            {
              id: 'retire-stacked',
              title: 'Stop the stacked etcd members (manifests parked on each master)',
              safePoint: false,
              plan: () =>
                masters().map((n) => ({
                  kind: 'command' as const,
                  node: n.name,
                  command: staticPodCommand('park', 'etcd'),
                })),
              run: async (_c: SwitchCtx, s: { log: Log }) => {
                // The switch itself is done: a member that will not stop must not roll it back.
                await parkStackedEtcd(deps, clusterId, masters(), { log: s.log, soft: true });
              },
            },
          ]
        : [corruptCheckStep<SwitchCtx>(deps, clusterId, stackedFirstStart, (c) => c.masters)]),
      // Stopping etcd members takes seconds (each leader tries to hand over leadership while its
      // peers stop too), so it happens after the apiservers are back, outside the unavailable time
      // (bench:switch). Nothing uses the external members once the apiservers are rewired.
      ...(toExternal
        ? []
        : [
            {
              id: 'stop-external',
              title: ctx.keepExternalRunning
                ? 'Keep the external members running (as chosen)'
                : 'Stop the external members',
              safePoint: false,
              runIf: (c: SwitchCtx) => !c.keepExternalRunning,
              run: async (c: SwitchCtx, s: { log: Log }) => {
                // The switch itself is done: a member that will not stop must not roll it back
                // (each failure is logged; stop it from the external etcd view).
                await stopExternalUnits(
                  deps,
                  clusterId,
                  c.external.map((m) => m.node),
                  { log: s.log, soft: true },
                );
              },
            },
          ]),
      {
        id: 'refresh',
        title: 'Refresh what the app knows about the cluster (mode)',
        run: async (_c, s) => {
          const f = await initializeCluster(deps, clusterId, requireFacts(deps, clusterId).seedNodeId, s.log);
          s.log('info', `mode is now ${f.mode}`);
        },
      },
      kubeadmConfigStep<SwitchCtx>(deps, clusterId, { masters, planned: plannedLayout }),
    ],
    rollback: {
      title: 'Roll back: bring back the state saved before the switch',
      // Once every apiserver serves from the new etcd (downtime measured), a rollback would throw
      // away a good switch.
      when: (c) => c.changed && !!c.state && c.downtimeMs === undefined,
      run: async (c, s) => rollbackSwitch(c, s.log),
    },
    describeStop: (c) =>
      c.downtimeMs !== undefined
        ? `Switched; the apiservers were unavailable for ${(c.downtimeMs / 1000).toFixed(1)} s. ${c.checkBackFailed ? CHECK_BACK_FAILED : ''}${kubeadmConfigOutcome(c.kubeadmConfig)}`
        : c.changed
          ? 'The switch did not complete; see the rollback result. Check the health view.'
          : 'Nothing on the cluster was changed.',
  };
}

async function rollbackSwitch(c: SwitchCtx, log: Log): Promise<void> {
  const { deps, clusterId } = c;
  await bringBackState(deps, clusterId, c.state!.id, {
    log,
    external: (addresses) => waitExternalHealthy(deps, clusterId, addresses.map(clientUrl), 120_000, log),
  });
  await undoKubeadmConfig(deps, clusterId, c.masters, c.kubeadmConfig, log);
  await initializeCluster(deps, clusterId, requireFacts(deps, clusterId).seedNodeId, log).catch(() => undefined);
}

export { STACKED_ETCD_TLS };

/** The layout the switch leaves, for the plan's kubeadm-config diff (the step renders the live one). */
function plannedLayout(c: SwitchCtx): EtcdLayout {
  if (c.direction === 'to-embedded')
    return {
      kind: 'stacked',
      dataDir: c.data === 'on-target' ? readEtcdManifest(c.stacked[0].oldText).dataDir : c.stacked[0].newDataDir,
    };
  const a = readApiserverManifest(c.apiservers[0].newText);
  return {
    kind: 'external',
    endpoints: a.etcdServers,
    caFile: a.etcdCaFile ?? '',
    certFile: a.etcdCertFile ?? '',
    keyFile: a.etcdKeyFile ?? '',
  };
}

/** The last non-empty line of an error (etcdctl prints its warnings first, its error last). */
function lastLine(text: string): string {
  return (
    text
      .split(/\n| \| /)
      .map((l) => l.trim())
      .filter(Boolean)
      .pop() ?? text
  );
}

const cap = (t: string) => t.charAt(0).toUpperCase() + t.slice(1);

/** What the plan says about the data the target gets. */
function dataNote(c: SwitchCtx, source: string, target: string): string {
  if (c.data === 'vault-snapshot') {
    const m = c.snapshot!;
    return `Snapshot ${m.id} (${new Date(m.createdAt).toISOString()}, revision ${m.revision ?? '?'}, ${m.totalKeys ?? '?'} keys) is restored onto ${target}: the cluster goes back to that moment, and what was written to ${source} after it is discarded (it stays in ${source} until that is reused; the current state is saved first).`;
  }
  if (c.data === 'on-target')
    return `${cap(target)} is used as it is: revision ${c.targetData!.revision}, ${c.targetData!.keys} Kubernetes keys. Nothing is copied; what was written to ${source} since the target got its data is not carried over.`;
  return `The apiservers are stopped before a fresh snapshot of ${source} is taken and restored onto ${target}, so no write is lost; the unavailable time is measured.`;
}

function stackedFirstStart(c: SwitchCtx): FirstStartMember[] {
  // Members used as they are were not restored by this job: their manifests stay as they run.
  if (c.data === 'on-target') return [];
  return c.stacked.map((m) => ({ node: m.node, finalManifest: m.newText, firstStart: m.firstStart }));
}
