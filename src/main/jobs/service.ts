// Jobs as the UI sees them: plan (kept in memory until run), run after confirmation, cancel, and
// history. Updates reach the renderer as events: `job.update` (record without the log, at most
// every 200 ms per job) and `job.log` (each new line).
import type { EventHub } from '../api/dispatch';
import { ApiError } from '../api/errors';
import type { JobHistory } from './history';
import { JobRunner } from './runner';
import type { JobDef, JobRecord, JobSummary } from './types';

const UPDATE_EVERY_MS = 200;

interface Planned {
  rec: JobRecord;
  def: JobDef<unknown>;
  ctx: unknown;
}

export function summary(rec: JobRecord): JobSummary {
  const { log: _log, plan: _plan, ...rest } = rec;
  return rest;
}

export class JobService {
  private planned = new Map<string, Planned>();
  private live = new Map<string, JobRecord>();
  private lastEmit = new Map<string, number>();
  private timers = new Map<string, NodeJS.Timeout>();
  readonly runner: JobRunner;

  constructor(
    private readonly history: JobHistory,
    private readonly events: EventHub,
    opts: { concurrency?: number } = {},
  ) {
    this.runner = new JobRunner({
      history,
      concurrency: opts.concurrency ?? 4,
      onUpdate: (rec) => this.emitUpdate(rec),
      onLog: (jobId, line) => this.events.emit('job.log', { jobId, line }),
    });
  }

  async plan<C>(def: JobDef<C>, ctx: C): Promise<JobRecord> {
    const rec = await this.runner.plan(def, ctx);
    this.planned.set(rec.id, { rec, def: def as JobDef<unknown>, ctx });
    // Plans nobody runs are dropped after an hour.
    setTimeout(() => this.planned.delete(rec.id), 3600_000).unref();
    return rec;
  }

  /** Start a planned job; resolves once it is running (not when it ends). */
  async start(jobId: string, confirmation?: string): Promise<JobSummary> {
    const p = this.planned.get(jobId);
    if (!p) throw new ApiError('NOT_FOUND', 'This plan is no longer available; plan the job again');
    if (p.def.destructive && confirmation !== p.def.clusterName) {
      throw new ApiError('CONFIRMATION_REQUIRED', `Type the cluster name "${p.def.clusterName}" to confirm`);
    }
    const busy = [...this.live.values()].find((r) => r.clusterId === p.rec.clusterId);
    if (busy) throw new ApiError('BUSY', `Job "${busy.title}" is still running on this cluster`);
    this.planned.delete(jobId);
    this.live.set(jobId, p.rec);
    const done = this.runner.run(p.rec, p.def, p.ctx, confirmation).finally(() => {
      this.live.delete(jobId);
      this.flush(p.rec);
    });
    done.catch(() => undefined);
    // Wait until the record says running (the runner persists it first).
    for (let i = 0; i < 50 && p.rec.status === 'planned'; i++) await new Promise((r) => setTimeout(r, 10));
    return summary(p.rec);
  }

  /** Run a planned job to the end (tests, scheduled snapshots). */
  async runToEnd(jobId: string, confirmation?: string): Promise<JobRecord> {
    await this.start(jobId, confirmation);
    const rec = this.live.get(jobId);
    while (rec && this.live.has(jobId)) await new Promise((r) => setTimeout(r, 50));
    return (await this.get(jobId))!;
  }

  cancel(jobId: string): boolean {
    return this.runner.cancel(jobId);
  }

  async get(jobId: string): Promise<JobRecord | null> {
    return this.live.get(jobId) ?? this.planned.get(jobId)?.rec ?? (await this.history.get(jobId));
  }

  async list(clusterId?: string): Promise<JobSummary[]> {
    const stored = await this.history.list(clusterId);
    const liveIds = new Set(this.live.keys());
    return [
      ...[...this.live.values()].filter((r) => !clusterId || r.clusterId === clusterId).map(summary),
      ...stored.filter((s) => !liveIds.has(s.id)),
    ];
  }

  running(clusterId?: string): JobRecord[] {
    return [...this.live.values()].filter((r) => !clusterId || r.clusterId === clusterId);
  }

  private emitUpdate(rec: JobRecord): void {
    const now = Date.now();
    const last = this.lastEmit.get(rec.id) ?? 0;
    if (now - last >= UPDATE_EVERY_MS) {
      this.flush(rec);
      return;
    }
    if (!this.timers.has(rec.id))
      this.timers.set(
        rec.id,
        setTimeout(() => this.flush(rec), UPDATE_EVERY_MS - (now - last)),
      );
  }

  private flush(rec: JobRecord): void {
    const t = this.timers.get(rec.id);
    if (t) clearTimeout(t);
    this.timers.delete(rec.id);
    this.lastEmit.set(rec.id, Date.now());
    this.events.emit('job.update', summary(rec));
  }
}
