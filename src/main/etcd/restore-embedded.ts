// Restore a vault snapshot onto the stacked ("embedded") etcd: every master, the same snapshot,
// each into a new data dir, one new cluster token and the full initial cluster (kubeadm#2641);
// etcd.yaml rewritten (data dir flag AND etcd-data hostPath, token, initial cluster); etcd
// started, then the apiservers; health gates; automatic rollback to the state saved first.
import { posix } from 'node:path';
import type { ClusterNode } from '@shared/domain';
import { kesValues, type Log } from '../cluster/ops';
import { parseInitialCluster } from '../cluster/facts';
import type { JobDef, JobDefExtras, StepDef } from '../jobs/types';
import type { SnapshotMeta } from '../vault/snapshots';
import type { StateManifest } from '../vault/states';
import { EtcdOpError, masterNodes, opSuffix, requireFacts, transferDir, type EtcdDeps } from './deps';
import { apiserversAfterRestore } from './plan-notes';
import { MANIFESTS, PARKED, readFiles, removeFile, parkStackedEtcd, staticPod, staticPodCommand } from './files';
import { editEtcdManifest, firstStartManifest, readEtcdManifest, unifiedDiff } from './manifests';
import { corruptCheckStep, writeFirstStartManifest, type FirstStartMember } from './first-start';
import { bringBackState, captureState, waitHealthy } from './state';
import { sh } from '../remote/quote';
import { checkRestoreTools } from './tools';
import {
  kubeadmConfigOutcome,
  kubeadmConfigStep,
  undoKubeadmConfig,
  type KubeadmConfigTrack,
} from './kubeadm-config-step';

export interface MemberPlan {
  node: ClusterNode;
  name: string;
  peerUrl: string;
  oldManifest: string;
  /** Where the current etcd.yaml lives (active in manifests, or parked). */
  manifestPath: string;
  newManifest: string;
  /** newManifest with etcd's initial corruption check off, for the first start (first-start.ts). */
  firstStartManifest?: string;
  newDataDir: string;
  /** The etcd version the member runs (its image tag): the restore tool must be at least as new. */
  serverVersion: string | null;
  remoteSnapshot?: string;
}

/** restore-member.sh's arguments for one stacked member (restore and switch to embedded alike). */
export function restoreMemberArgs(
  m: Pick<MemberPlan, 'remoteSnapshot' | 'name' | 'peerUrl' | 'newDataDir' | 'serverVersion'>,
  sha256: string,
  initialCluster: string,
  token: string,
): string[] {
  return [m.remoteSnapshot!, sha256, m.name, initialCluster, token, m.peerUrl, m.newDataDir, m.serverVersion ?? ''];
}

export interface RestoreCtx {
  deps: EtcdDeps;
  clusterId: string;
  snapshotId: string;
  meta: SnapshotMeta;
  token: string;
  initialCluster: string;
  members: MemberPlan[];
  /** Set once the first member was stopped: from then on a failure rolls back. */
  changed: boolean;
  /** Set once every apiserver serves the restored data: from then on nothing rolls back. */
  served?: boolean;
  /** The last change (etcd.yaml back with the corruption check on) failed after a good restore. */
  checkBackFailed?: boolean;
  state?: StateManifest;
  /** Health gate timeout (tests shorten it). */
  gateTimeoutMs: number;
  /** kubeadm-config rewritten for the new data dir (kubeadm-config-step.ts). */
  kubeadmConfig?: KubeadmConfigTrack;
}

/** A data dir next to the old one: /var/lib/etcd → /var/lib/etcd-kes-<time> (never reused). */
export function nextDataDir(current: string, suffix: string): string {
  return `${current.replace(/-kes-[0-9]{8}-[0-9]{6}-[0-9a-f]{4}$/, '')}-kes-${suffix}`;
}

/**
 * Read every master's etcd.yaml (active or parked) and compute the restored one: new data dir,
 * one new token, the full initial cluster. Nothing is changed on the nodes.
 */
/** Throws when two nodes plan the same member (by name or by peer URL). */
export function refuseDuplicateMembers(list: { node: ClusterNode; name: string; peerUrl: string }[]): void {
  for (let i = 0; i < list.length; i++)
    for (let j = i + 1; j < list.length; j++) {
      const [a, b] = [list[i], list[j]];
      const what = a.name === b.name ? `member "${a.name}"` : a.peerUrl === b.peerUrl ? `peer URL ${a.peerUrl}` : null;
      if (what)
        throw new EtcdOpError(
          'DUPLICATE_MEMBER',
          `${a.node.name} and ${b.node.name} both have ${what}: one machine listed twice (by name and by address, or through two NICs)? Remove one of them from the cluster's nodes, then initialize again`,
        );
    }
}

export async function planStackedMembers(
  deps: EtcdDeps,
  clusterId: string,
  masters: ClusterNode[],
  suffix: string,
  log?: Log,
): Promise<{ token: string; initialCluster: string; members: MemberPlan[] }> {
  const token = `kes-${suffix}`;
  const read = await Promise.all(
    masters.map(async (node) => {
      const r = await readFiles(deps, clusterId, node.id, [`${MANIFESTS}/etcd.yaml`, `${PARKED}/etcd.yaml`], [], log);
      const f = r.files.find((x) => x.content);
      if (!f?.content)
        throw new EtcdOpError(
          'NOT_STACKED',
          `${node.name} has no etcd.yaml (active or parked): it runs no stacked etcd member`,
        );
      const text = f.content.toString('utf8');
      return { node, manifestPath: f.path, text, info: readEtcdManifest(text) };
    }),
  );
  // One member per machine: two masters answering with the same member (one machine listed twice,
  // by name and by address) would make a cluster with a duplicate member — refuse the plan.
  refuseDuplicateMembers(
    read.map((i) => ({ node: i.node, name: i.info.name, peerUrl: i.info.initialAdvertisePeerUrls.split(',')[0] })),
  );
  // The full initial cluster: every stacked member with its advertised peer URL.
  const initialCluster = read.map((i) => `${i.info.name}=${i.info.initialAdvertisePeerUrls.split(',')[0]}`).join(',');
  parseInitialCluster(initialCluster); // validates
  const members = read.map((i): MemberPlan => {
    const newDataDir = nextDataDir(i.info.dataDir, suffix);
    const newManifest = editEtcdManifest(i.text, {
      dataDir: newDataDir,
      initialClusterToken: token,
      initialCluster,
      initialClusterState: 'new',
    });
    return {
      node: i.node,
      name: i.info.name,
      peerUrl: i.info.initialAdvertisePeerUrls.split(',')[0],
      oldManifest: i.text,
      manifestPath: i.manifestPath,
      newDataDir,
      newManifest,
      firstStartManifest: firstStartManifest(newManifest) ?? undefined,
      serverVersion: i.info.version ?? deps.inventory.get(clusterId).facts?.etcdVersion ?? null,
    };
  });
  return { token, initialCluster, members };
}

/** Read every master's etcd.yaml and compute the new one; nothing is changed. */
export async function prepareRestore(
  deps: EtcdDeps,
  clusterId: string,
  snapshotId: string,
  opts: { gateTimeoutMs?: number; log?: Log } = {},
): Promise<RestoreCtx> {
  requireFacts(deps, clusterId);
  const meta = await deps.snapshots.get(snapshotId);
  const { token, initialCluster, members } = await planStackedMembers(
    deps,
    clusterId,
    masterNodes(deps, clusterId),
    opSuffix(),
    opts.log,
  );
  return {
    deps,
    clusterId,
    snapshotId,
    meta,
    token,
    initialCluster,
    members,
    changed: false,
    gateTimeoutMs: opts.gateTimeoutMs ?? 180_000,
  };
}

function perMember(
  ctx: RestoreCtx,
  id: string,
  title: string,
  run: (m: MemberPlan, c: RestoreCtx, log: Log, signal: AbortSignal) => Promise<void>,
  plan?: (m: MemberPlan) => ReturnType<NonNullable<StepDef<RestoreCtx>['plan']>>,
): StepDef<RestoreCtx>[] {
  return ctx.members.map((m) => ({
    id: m.node.name,
    title: `${title} on ${m.node.name}`,
    node: m.node.name,
    plan: plan ? () => plan(m) : undefined,
    run: (c, s) =>
      run(
        c.members.find((x) => x.node.id === m.node.id)!,
        c,
        s.log,
        s.signal,
      ),
  }));
}

export function restoreEmbeddedJob(
  ctx: RestoreCtx,
  clusterName: string,
): JobDef<RestoreCtx> & JobDefExtras<RestoreCtx> {
  const { deps, clusterId } = ctx;
  const nodes = () => ctx.members.map((m) => m.node);
  const steps: StepDef<RestoreCtx>[] = [
    {
      id: 'verify',
      title: 'Verify the snapshot in the vault (sha256, integrity hash)',
      plan: () => [
        {
          kind: 'note',
          text: `Snapshot ${ctx.meta.id}: ${ctx.meta.size} bytes, revision ${ctx.meta.revision ?? '?'}, ${ctx.meta.totalKeys ?? '?'} keys, sha256 ${ctx.meta.sha256}`,
        },
        { kind: 'note', text: apiserversAfterRestore(requireFacts(deps, clusterId).mode, 'embedded') },
      ],
      run: async (c, s) => {
        const m = await deps.snapshots.verify(c.snapshotId, s.signal);
        if (m.integrity !== 'ok')
          throw new EtcdOpError('SNAPSHOT_INVALID', 'The snapshot has no integrity hash; refusing to restore it');
        s.log('info', `sha256 ${m.sha256} matches`);
      },
    },
    {
      id: 'preflight',
      title: 'Check every master: reachable, etcd tools fit the etcd version it runs',
      run: async (c, s) => {
        // Refused here, before any member stops, rather than by restore-member.sh mid-restore.
        await checkRestoreTools(
          deps,
          clusterId,
          c.members.map((m) => ({ node: m.node, serverVersion: m.serverVersion })),
          s.log,
        );
      },
    },
    {
      id: 'save-state',
      title: 'Save the current state (the way back)',
      plan: () => [
        {
          kind: 'note',
          text: 'Archive etcd.yaml, kube-apiserver.yaml, units and data dirs of every master into the vault',
        },
      ],
      run: async (c, s) => {
        c.state = await captureState(deps, clusterId, `before restoring snapshot ${c.snapshotId}`, s.log);
      },
    },
    {
      id: 'upload',
      title: 'Upload the snapshot to every master and verify it there',
      parallel: true,
      children: perMember(
        ctx,
        'upload',
        'Upload and verify',
        async (m, c, log, signal) => {
          const { dir, freeKb } = await transferDir(deps, clusterId, m.node, log);
          if (freeKb * 1024 < c.meta.size * 3)
            throw new EtcdOpError(
              'NO_SPACE',
              `${m.node.name} has ${Math.round(freeKb / 1024)} MiB free; the restore needs about ${Math.round((c.meta.size * 3) / 1048576)} MiB`,
            );
          m.remoteSnapshot = posix.join(dir, `restore-${c.meta.id}.db`);
          log('info', `upload ${c.meta.size} bytes to ${m.node.name}:${m.remoteSnapshot}`);
          // The vault's file was verified in `verify`; the copy is checked on the node itself
          // against the vault's sha256 right after (snapshot-status.sh), so no hash on the way.
          await deps.pool.upload(
            deps.targetOf(clusterId, m.node.id),
            deps.snapshots.filePath(c.meta.id),
            m.remoteSnapshot,
            { signal, hash: false, onCommand: (c) => log('cmd', c) },
          );
          const res = await deps.ops.run(
            clusterId,
            m.node.id,
            'snapshot-status.sh',
            [m.remoteSnapshot, c.meta.sha256],
            { log: (st, tx) => st !== 'stdout' && log(st, tx) },
          );
          log('info', `verified on ${m.node.name}: ${kesValues(res.stdout).get('STATUS')}`);
        },
        (m) => [
          {
            kind: 'upload',
            node: m.node.name,
            from: `vault/${ctx.meta.id}`,
            to: `/var/lib/kube-etcd-switch/transfer/${m.node.user}/restore-${ctx.meta.id}.db`,
            bytes: ctx.meta.size,
          },
        ],
      ),
    },
    {
      id: 'stop',
      title: 'Stop the apiservers, then the etcd members (static pods parked)',
      safePoint: true,
      plan: () =>
        nodes().flatMap((n) => [
          { kind: 'command' as const, node: n.name, command: staticPodCommand('park', 'kube-apiserver') },
          { kind: 'command' as const, node: n.name, command: staticPodCommand('park', 'etcd') },
        ]),
      run: async (c, s) => {
        c.changed = true;
        await Promise.all(nodes().map((n) => staticPod(deps, clusterId, n, 'park', 'kube-apiserver', { log: s.log })));
        await parkStackedEtcd(deps, clusterId, nodes(), { log: s.log });
      },
    },
    {
      id: 'restore',
      title: 'Restore every member from the same snapshot into a new data dir',
      parallel: true,
      safePoint: false,
      children: perMember(
        ctx,
        'restore',
        'Restore member',
        async (m, c, log) => {
          await deps.ops.run(
            clusterId,
            m.node.id,
            'restore-member.sh',
            restoreMemberArgs(m, c.meta.sha256, c.initialCluster, c.token),
            { log, timeoutMs: 30 * 60_000 },
          );
        },
        (m) => [
          {
            kind: 'command',
            node: m.node.name,
            command: sh`bash restore-member.sh SNAPSHOT ${ctx.meta.sha256} ${m.name} ${ctx.initialCluster} ${ctx.token} ${m.peerUrl} ${m.newDataDir} ${m.serverVersion ?? ''}`,
          },
        ],
      ),
    },
    {
      id: 'manifests',
      title: 'Rewrite etcd.yaml on every master (data dir, hostPath, token, initial cluster)',
      parallel: true,
      safePoint: false,
      children: perMember(
        ctx,
        'manifests',
        'Write etcd.yaml',
        async (m, _c, log) => {
          await writeFirstStartManifest(deps, clusterId, firstStartMembers([m])[0], log);
        },
        (m) => [
          {
            kind: 'file',
            node: m.node.name,
            path: `${MANIFESTS}/etcd.yaml`,
            diff: unifiedDiff(`${MANIFESTS}/etcd.yaml`, m.oldManifest, m.newManifest),
          },
        ],
      ),
    },
    {
      id: 'start-etcd',
      title: 'Start etcd on every master and wait until the cluster is healthy',
      safePoint: false,
      plan: () =>
        nodes().map((n) => ({
          kind: 'command' as const,
          node: n.name,
          command: staticPodCommand('unpark', 'etcd'),
        })),
      run: async (c, s) => {
        // The wait for each member's port is part of the health gate: same timeout.
        const timeoutS = Math.ceil(c.gateTimeoutMs / 1000);
        await Promise.all(
          nodes().map((n) => staticPod(deps, clusterId, n, 'unpark', 'etcd', { log: s.log, timeoutS })),
        );
        await waitHealthy(deps, clusterId, nodes(), {
          etcd: true,
          apiserver: false,
          timeoutMs: c.gateTimeoutMs,
          log: s.log,
        });
      },
    },
    {
      id: 'start-apiservers',
      title: 'Start the apiservers and wait until every one is ready',
      safePoint: false,
      plan: () =>
        nodes().map((n) => ({
          kind: 'command' as const,
          node: n.name,
          command: staticPodCommand('unpark', 'kube-apiserver'),
        })),
      run: async (c, s) => {
        const timeoutS = Math.ceil(c.gateTimeoutMs / 1000);
        await Promise.all(
          nodes().map((n) => staticPod(deps, clusterId, n, 'unpark', 'kube-apiserver', { log: s.log, timeoutS })),
        );
        await waitHealthy(deps, clusterId, nodes(), {
          etcd: false,
          apiserver: true,
          timeoutMs: c.gateTimeoutMs,
          log: s.log,
        });
        c.served = true;
      },
    },
    corruptCheckStep<RestoreCtx>(deps, clusterId, (c) => firstStartMembers(c.members), nodes),
    {
      id: 'cleanup',
      title: 'Remove the uploaded snapshot copies',
      run: async (c, s) => removeCopies(c, s.log),
    },
    kubeadmConfigStep<RestoreCtx>(deps, clusterId, {
      masters: () => nodes(),
      planned: (c) => ({ kind: 'stacked', dataDir: c.members[0].newDataDir }),
    }),
  ];
  return {
    kind: 'restore-embedded',
    title: `Restore snapshot ${ctx.meta.id.slice(0, 8)} onto the embedded etcd`,
    destructive: true,
    clusterId,
    clusterName,
    steps,
    rollback: {
      title: 'Roll back: bring back the state saved before the restore',
      // Once the apiservers serve the restored data, going back would throw away a good restore.
      when: (c) => c.changed && !!c.state && !c.served,
      run: async (c, s) => rollbackTo(c, s.log),
    },
    // A failed or cancelled restore must not leave snapshot copies (every secret of the cluster)
    // on the masters either; found by the failure tests (SSH cut during the upload left them on
    // the other masters). A master still unreachable is given up after 15 s, named in the log.
    tidyUp: (c, s) => removeCopies(c, s.log, 15_000),
    describeStop: (c, done) => {
      if (c.checkBackFailed) return CHECK_BACK_FAILED;
      if (c.kubeadmConfig?.failed)
        return `The restore itself succeeded: the apiservers serve the restored data. ${kubeadmConfigOutcome(c.kubeadmConfig)}`;
      if (!c.changed)
        return `Nothing on the cluster was changed (${done.length} preparatory step(s) done). It runs as before.`;
      // The runner appends what the automatic rollback did.
      return 'The restore failed after it had started changing the cluster (members stopped). Check the health view.';
    },
  };
}

/** Remove the uploaded snapshot copies (best effort; each failure is logged, not thrown). */
async function removeCopies(c: RestoreCtx, log: Log, timeoutMs?: number): Promise<void> {
  await Promise.all(
    c.members
      .filter((m) => m.remoteSnapshot)
      .map(async (m) => {
        const path = m.remoteSnapshot!;
        let timer: NodeJS.Timeout | undefined;
        const limit = new Promise<never>((_, rej) => {
          if (timeoutMs) timer = setTimeout(() => rej(new Error(`no answer within ${timeoutMs / 1000} s`)), timeoutMs);
        });
        try {
          await Promise.race([removeFile(c.deps, c.clusterId, m.node, path, log), limit]);
          m.remoteSnapshot = undefined;
        } catch (e) {
          log('error', `could not remove ${path} on ${m.node.name}: ${(e as Error).message.split('\n')[0]}`);
        } finally {
          clearTimeout(timer);
        }
      }),
  );
}

/** Put the saved state's files back on every master, start what it ran, wait for health. */
async function rollbackTo(c: RestoreCtx, log: Log): Promise<void> {
  await bringBackState(c.deps, c.clusterId, c.state!.id, { log, nodeIds: c.members.map((m) => m.node.id) });
  await undoKubeadmConfig(
    c.deps,
    c.clusterId,
    c.members.map((m) => m.node),
    c.kubeadmConfig,
    log,
  );
}

export function firstStartMembers(members: MemberPlan[]): FirstStartMember[] {
  return members.map((m) => ({ node: m.node, finalManifest: m.newManifest, firstStart: m.firstStartManifest }));
}

/** Outcome when only the last step (etcd.yaml back with the corruption check on) failed. */
export const CHECK_BACK_FAILED =
  'The restore itself succeeded: the apiservers served the restored data. Putting etcd.yaml back with the ' +
  'initial corruption check on failed on the master named in the log, and nothing was rolled back. On that ' +
  'master etcd and its apiserver may be stopped, their manifests parked in /etc/kubernetes/kes-parked: see why ' +
  'etcd does not start (its log, the health view), then move both back to /etc/kubernetes/manifests (the ' +
  "node's console can). The other masters serve.";
