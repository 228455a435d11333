// The etcd side of the app as the handlers use it: builds job declarations by kind, runs the
// read-only operations (initialize, health, verify), and the snapshot schedule.
import { z } from 'zod';
import type { ClusterFacts } from '@shared/domain';
import type { HealthReport } from '@shared/health';
import type { JobRecord } from '@shared/jobs';
import type { SnapshotMeta } from '@shared/vault';
import { clusterHealth } from '../cluster/health';
import { initializeCluster } from '../cluster/initialize';
import { kesValues, type Log } from '../cluster/ops';
import type { JobService } from '../jobs/service';
import type { JobDef, JobDefExtras } from '../jobs/types';
import { EtcdOpError, masterNodes, requireFacts, transferDir, type EtcdDeps } from './deps';
import { drillJob, prepareDrill } from './drill';
import { prepareRestore, restoreEmbeddedJob } from './restore-embedded';
import { captureState, restoreStateSteps, type RestoreStateCtx } from './state';
import { takeSnapshot } from './snapshot';
import { cleanTransferDirs } from './transfers';
import { installTools, type ToolCache } from './tools';
import { prepareExternalRestore, prepareProvision, provisionJob, restoreExternalJob, unitAction } from './external';
import { prepareSwitch, switchJob } from './switch';
import { addMemberJob, maintenanceJob, prepareMemberChange, removeMemberJob } from './members';
import { createClusterJob, prepareCreate } from '../kube/create-cluster';
import { lbOf } from '@shared/domain';
import { prepareReset, resetNodeJob, restartRuntimeJob, teardownJob, type TeardownCtx } from '../kube/reset-node';
import { posix } from 'node:path';
import { readJsonFile, writeJsonAtomic } from '../util/jsonfile';
import { join } from 'node:path';

import { JobRequest, Schedule } from '@shared/jobs';

export { JobRequest, Schedule };
const SCHEDULED_NOTE = 'scheduled snapshot';

export class EtcdService {
  private schedules: Schedule[] = [];
  private timer: NodeJS.Timeout | null = null;
  /**
   * Health-gate timeout of restore and switch jobs planned from now on. Not user-facing: failure
   * tests shorten it so a gate that cannot pass fails in seconds.
   */
  gateTimeoutMs = 180_000;
  /** See EtcdDeps.parkTimeoutS (not user-facing: tests of a stuck kubelet shorten it). */
  set parkTimeoutS(s: number | undefined) {
    this.deps.parkTimeoutS = s;
  }

  constructor(
    private readonly deps: EtcdDeps,
    private readonly jobs: JobService,
    private readonly tools: ToolCache,
    private readonly dataDir: string,
  ) {}

  /**
   * Discover the cluster; then remove what a job cut short by a crash left in the transfer
   * folders of its masters and etcd nodes (not while this app runs a job on the cluster).
   */
  async initialize(clusterId: string, nodeId: string, log?: Log): Promise<ClusterFacts> {
    const facts = await initializeCluster(this.deps, clusterId, nodeId, log);
    if (!this.jobs.running(clusterId).length) {
      const ids = new Set([...facts.masters.map((m) => m.nodeId)]);
      const nodes = this.deps.inventory.get(clusterId).nodes.filter((n) => ids.has(n.id) || n.roles.includes('etcd'));
      await cleanTransferDirs(this.deps, clusterId, nodes, log);
    }
    return facts;
  }

  health(clusterId: string): Promise<HealthReport> {
    return clusterHealth(this.deps, clusterId);
  }

  /** Build the job for a request and return its plan (nothing runs yet). */
  async plan(clusterId: string, req: JobRequest): Promise<JobRecord> {
    const cluster = this.deps.inventory.get(clusterId);
    const { deps } = this;
    switch (req.kind) {
      case 'snapshot': {
        requireFacts(deps, clusterId);
        const def: JobDef<{ meta?: SnapshotMeta }> = {
          kind: 'snapshot',
          title: 'Take a snapshot',
          destructive: false,
          clusterId,
          clusterName: cluster.name,
          steps: [
            {
              id: 'save',
              title: 'Stream a snapshot from etcd into the vault',
              plan: () => [
                {
                  kind: 'note',
                  text:
                    `From ${req.source === 'in-use' ? 'the etcd the apiservers use' : `the ${req.source} etcd`}, one member: ` +
                    (deps.streamDirect && !deps.streamDirect()
                      ? 'its snapshot stream read through an SSH tunnel from a healthy master (straight from etcd is off in Settings); '
                      : 'its snapshot stream read straight from its client port when this computer reaches it, else through an SSH tunnel from a healthy master; ') +
                    `if that does not work, etcdctl snapshot save on the master, then SFTP download (the copy there removed). ` +
                    `etcd's own sha256 is checked before the vault keeps it.`,
                },
              ],
              run: async (c, s) => {
                c.meta = await takeSnapshot(deps, clusterId, {
                  note: req.note,
                  nodeId: req.nodeId,
                  source: req.source,
                  log: s.log,
                  signal: s.signal,
                  onProgress: (d, t) => s.progress(t ? d / t : 0),
                });
              },
            },
          ],
        };
        return this.jobs.plan(def, {});
      }
      case 'restore-embedded': {
        const ctx = await prepareRestore(deps, clusterId, req.snapshotId, { gateTimeoutMs: this.gateTimeoutMs });
        return this.jobs.plan(this.refreshing(restoreEmbeddedJob(ctx, cluster.name)), ctx);
      }
      case 'capture-state': {
        requireFacts(deps, clusterId);
        const def: JobDef<object> = {
          kind: 'capture-state',
          title: 'Save the current state',
          destructive: false,
          clusterId,
          clusterName: cluster.name,
          steps: [
            {
              id: 'capture',
              title: 'Archive manifests, units and data dirs of every master and etcd node',
              run: async (_c, s) => void (await captureState(deps, clusterId, req.note || 'saved on demand', s.log)),
            },
          ],
        };
        return this.jobs.plan(def, {});
      }
      case 'restore-state': {
        const state = await deps.states.manifest(req.stateId);
        const ctx: RestoreStateCtx = { deps, clusterId, stateId: req.stateId };
        const def: JobDef<RestoreStateCtx> & JobDefExtras<RestoreStateCtx> = {
          kind: 'restore-state',
          title: `Bring back the state of ${new Date(state.createdAt).toLocaleString()} (${state.mode})`,
          destructive: true,
          clusterId,
          clusterName: cluster.name,
          steps: restoreStateSteps(ctx),
        };
        return this.jobs.plan(this.refreshing(def), ctx);
      }
      case 'drill': {
        requireFacts(deps, clusterId);
        const ctx = await prepareDrill(deps, clusterId, req);
        return this.jobs.plan(drillJob(ctx, cluster.name), ctx);
      }
      case 'provision-external': {
        const ctx = await prepareProvision(deps, this.tools, clusterId, req.nodeIds, req.startEmpty);
        return this.jobs.plan(this.refreshing(provisionJob(ctx, cluster.name)), ctx);
      }
      case 'external-unit': {
        const nodes = req.nodeIds.map((id) => deps.inventory.node(clusterId, id));
        const def: JobDef<object> & JobDefExtras<object> = {
          kind: 'external-unit',
          title: `${req.action === 'start' ? 'Start' : 'Stop'} etcd on ${nodes.map((n) => n.name).join(', ')}`,
          destructive: req.action === 'stop',
          clusterId,
          clusterName: cluster.name,
          steps: nodes.map((n) => ({
            id: n.name,
            title: `${req.action} etcd.service on ${n.name}`,
            node: n.name,
            plan: () => [
              { kind: 'command' as const, node: n.name, command: `bash systemd-unit.sh ${req.action} etcd` },
            ],
            run: async (_c: object, s: { log: Log }) =>
              void s.log('info', `etcd on ${n.name}: ${await unitAction(deps, clusterId, n, req.action, s.log)}`),
          })),
        };
        return this.jobs.plan(this.refreshing(def), {});
      }
      case 'restore-external': {
        const ctx = await prepareExternalRestore(deps, clusterId, req.snapshotId, {
          gateTimeoutMs: this.gateTimeoutMs,
        });
        return this.jobs.plan(this.refreshing(restoreExternalJob(ctx, cluster.name)), ctx);
      }
      case 'switch': {
        const ctx = await prepareSwitch(deps, clusterId, req.direction, {
          keepExternalRunning: req.keepExternalRunning,
          data: req.data,
          snapshotId: req.snapshotId,
          gateTimeoutMs: this.gateTimeoutMs,
        });
        return this.jobs.plan(this.refreshing(switchJob(ctx, cluster.name)), ctx);
      }
      case 'member-remove': {
        const ctx = await prepareMemberChange(deps, clusterId, req.nodeId, undefined, req.kind);
        return this.jobs.plan(this.refreshing(removeMemberJob(ctx, cluster.name)), ctx);
      }
      case 'member-add': {
        const ctx = await prepareMemberChange(deps, clusterId, req.nodeId, undefined, req.kind);
        return this.jobs.plan(this.refreshing(addMemberJob(ctx, cluster.name)), ctx);
      }
      case 'defrag':
      case 'alarm-disarm': {
        const health = await this.health(clusterId);
        const urls = [...new Set(health.members.flatMap((m) => m.clientUrls))];
        if (!urls.length) throw new EtcdOpError('ETCD_DOWN', 'No etcd member answered');
        return this.jobs.plan(maintenanceJob(deps, clusterId, cluster.name, req.kind, urls), {});
      }
      case 'create-cluster': {
        const ctx = await prepareCreate(
          deps,
          clusterId,
          req,
          (nodeId, log) => this.initialize(clusterId, nodeId, log),
          this.tools,
        );
        return this.jobs.plan(createClusterJob(ctx, cluster.name), ctx);
      }
      case 'reset-node': {
        const ctx = prepareReset(deps, clusterId, req.nodeId, lbOf(cluster.creation), (nodeId, log) =>
          this.initialize(clusterId, nodeId, log),
        );
        return this.jobs.plan(resetNodeJob(ctx, cluster.name), ctx);
      }
      case 'teardown-cluster': {
        const nodes = cluster.nodes.filter((n) => n.roles.includes('master') || n.roles.includes('worker'));
        const lbNode = cluster.nodes.find((n) => n.roles.includes('lb'));
        const ctx: TeardownCtx = {
          deps,
          clusterId,
          nodes,
          lb: lbNode && lbOf(cluster.creation) ? { node: lbNode, kind: lbOf(cluster.creation)!.kind } : undefined,
        };
        return this.jobs.plan(teardownJob(ctx, cluster.name, lbOf(cluster.creation)?.kind ?? 'none'), ctx);
      }
      case 'restart-runtime': {
        const nodes = req.nodeIds.map((id) => deps.inventory.node(clusterId, id));
        return this.jobs.plan(restartRuntimeJob(deps, clusterId, cluster.name, nodes), {});
      }
      case 'install-tools': {
        const archive = (await this.tools.list()).find((a) => a.name === req.archive);
        if (!archive) throw new EtcdOpError('NOT_FOUND', `No cached archive ${req.archive}; add or download one first`);
        const nodes = req.nodeIds.map((id) => deps.inventory.node(clusterId, id));
        const def: JobDef<object> = {
          kind: 'install-tools',
          title: `Install etcd tools ${archive.version}`,
          destructive: false,
          clusterId,
          clusterName: cluster.name,
          steps: [
            {
              id: 'install',
              title: 'Install etcd tools',
              parallel: true,
              children: nodes.map((n) => ({
                id: n.name,
                title: `Install ${archive.name} on ${n.name}`,
                node: n.name,
                plan: () => [
                  {
                    kind: 'upload' as const,
                    node: n.name,
                    from: archive.name,
                    to: `/var/lib/kube-etcd-switch/transfer/${n.user}/${archive.name}`,
                  },
                  {
                    kind: 'command' as const,
                    node: n.name,
                    command: `bash install-etcd-tools.sh ${archive.name} ${archive.sha256}`,
                  },
                ],
                run: async (_c: object, s: { log: Log }) => {
                  const r = await installTools(deps, clusterId, n, archive, s.log);
                  s.log('info', `installed ${r.installed.join(', ')} ${r.version} on ${n.name}`);
                },
              })),
            },
          ],
        };
        return this.jobs.plan(def, {});
      }
    }
  }

  /**
   * The job re-reads the cluster into its facts when it ends (any outcome, unless nothing was done
   * or its own `refresh` step did it): the mode badge, node chips, member lists and the external
   * etcd view follow what the job changed, without the user initializing again.
   */
  private refreshing<C>(def: JobDef<C> & JobDefExtras<C>): JobDef<C> & JobDefExtras<C> {
    const { deps } = this;
    const clusterId = def.clusterId;
    return {
      ...def,
      refreshAtEnd: async (c: C, s: { log: Log }) => {
        // Jobs that track it (restores, the switch) know when they stopped before touching anything.
        if ((c as { changed?: unknown }).changed === false) {
          s.log('info', 'nothing on the cluster was changed: the facts stand');
          return;
        }
        const f = await initializeCluster(deps, clusterId, requireFacts(deps, clusterId).seedNodeId, s.log);
        s.log('info', `mode is now ${f.mode}`);
      },
    };
  }

  /** Re-hash in the vault, and when a cluster is given, `snapshot status` on one of its masters. */
  async verify(snapshotId: string, clusterId?: string, log?: Log): Promise<SnapshotMeta> {
    let meta = await this.deps.snapshots.verify(snapshotId);
    if (!clusterId) return meta;
    const node = masterNodes(this.deps, clusterId)[0];
    const { dir } = await transferDir(this.deps, clusterId, node, log);
    const remote = posix.join(dir, `verify-${snapshotId}.db`);
    try {
      await this.deps.pool.upload(
        this.deps.targetOf(clusterId, node.id),
        this.deps.snapshots.filePath(snapshotId),
        remote,
        { onCommand: (c) => log?.('cmd', c) },
      );
      const res = await this.deps.ops.run(clusterId, node.id, 'snapshot-status.sh', [remote, meta.sha256], { log });
      const st = JSON.parse(kesValues(res.stdout).get('STATUS') ?? '{}') as {
        hash?: number;
        revision?: number;
        totalKey?: number;
      };
      if (typeof st.revision !== 'number')
        throw new EtcdOpError('SNAPSHOT_INVALID', 'snapshot status printed no revision');
      meta = await this.deps.snapshots.update(snapshotId, {
        revision: st.revision,
        hash: st.hash ?? null,
        totalKeys: st.totalKey ?? null,
      });
    } finally {
      await this.deps.ops.run(clusterId, node.id, 'remove-file.sh', [remote], { check: false }).catch(() => undefined);
    }
    return meta;
  }

  // --- schedule -------------------------------------------------------------------------------

  async loadSchedules(): Promise<void> {
    const r = await readJsonFile(
      join(this.dataDir, 'schedules.json'),
      (raw) => z.array(Schedule).parse(raw),
      () => [],
    );
    this.schedules = r.value;
  }

  getSchedule(clusterId: string): Schedule | null {
    return this.schedules.find((s) => s.clusterId === clusterId) ?? null;
  }

  async setSchedule(s: Omit<Schedule, 'lastRunAt'>): Promise<Schedule> {
    const prev = this.getSchedule(s.clusterId);
    const next = Schedule.parse({ ...s, lastRunAt: prev?.lastRunAt ?? null });
    this.schedules = [...this.schedules.filter((x) => x.clusterId !== s.clusterId), next];
    await writeJsonAtomic(join(this.dataDir, 'schedules.json'), this.schedules);
    return next;
  }

  /** Check schedules every `tickMs` while the app is open. */
  startScheduler(tickMs = 60_000): void {
    this.timer = setInterval(() => void this.tick(), tickMs);
    this.timer.unref();
  }

  stopScheduler(): void {
    if (this.timer) clearInterval(this.timer);
  }

  async tick(): Promise<void> {
    for (const s of this.schedules) {
      if (!s.enabled) continue;
      const due = !s.lastRunAt || Date.now() - Date.parse(s.lastRunAt) >= s.everyHours * 3600_000;
      if (!due || this.jobs.running(s.clusterId).length) continue;
      try {
        this.deps.inventory.get(s.clusterId);
      } catch {
        continue; // cluster removed
      }
      s.lastRunAt = new Date().toISOString();
      await writeJsonAtomic(join(this.dataDir, 'schedules.json'), this.schedules);
      try {
        const rec = await this.plan(s.clusterId, { kind: 'snapshot', note: SCHEDULED_NOTE, source: 'in-use' });
        const done = await this.jobs.runToEnd(rec.id);
        if (done.status === 'succeeded')
          await this.deps.snapshots.prune(s.clusterId, s.keep, (m) => m.note === SCHEDULED_NOTE);
      } catch {
        // recorded in the job history; the next tick tries again when due
      }
    }
  }
}
