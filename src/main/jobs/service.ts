// Jobs as the UI sees them: plan (kept in memory until run), run after confirmation, cancel, and
// history. Updates reach the renderer as events: `job.update` (record without the log, at most
// every 200 ms per job) and `job.log` (new lines, batched every 50 ms or 256 KiB, so a flood of
// 100 000 lines is a few hundred events, not 100 000). Every line also goes to the job's full log
// file (logfile.ts), read back in pieces by jobs.logChunk.
import type { EventHub } from '../api/dispatch';
import { ApiError } from '../api/errors';
import type { JobHistory } from './history';
import { formatLogLine, JobLogFiles, LOG_CHUNK_BYTES } from './logfile';
import { JobRunner } from './runner';
import type { JobDef, JobRecord, JobSummary, LogChunk, LogLine } from './types';

const UPDATE_EVERY_MS = 200;
const LOG_EVERY_MS = 50;
const LOG_BATCH_BYTES = 256 * 1024;

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
  private logQueue = new Map<string, { lines: LogLine[]; bytes: number }>();
  private logTimer: NodeJS.Timeout | null = null;
  private lastLogEmit = 0;
  readonly runner: JobRunner;
  readonly fullLogs: JobLogFiles;

  constructor(
    private readonly history: JobHistory,
    private readonly events: EventHub,
    opts: { concurrency?: number } = {},
  ) {
    this.fullLogs = new JobLogFiles(history.dir);
    this.runner = new JobRunner({
      history,
      concurrency: opts.concurrency ?? 4,
      onUpdate: (rec) => this.emitUpdate(rec),
      onLog: (jobId, line) => {
        this.fullLogs.append(jobId, line);
        this.queueLog(jobId, line);
      },
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
      void this.fullLogs.close(jobId);
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

  /**
   * A piece of the job's full log (see logfile.ts). Jobs recorded before full logs were kept give
   * the log of their record, in pieces of the same size.
   */
  async logChunk(jobId: string, offset: number): Promise<LogChunk> {
    const fromFile = await this.fullLogs.read(jobId, offset);
    if (fromFile) return fromFile;
    const rec = await this.get(jobId);
    if (!rec) throw new ApiError('NOT_FOUND', 'This job is not in the history');
    const text = rec.log.map(formatLogLine).join('');
    const end = Math.min(text.length, offset + LOG_CHUNK_BYTES);
    return { text: text.slice(offset, end), next: end >= text.length ? null : end };
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

  private queueLog(jobId: string, line: LogLine): void {
    let q = this.logQueue.get(jobId);
    if (!q) this.logQueue.set(jobId, (q = { lines: [], bytes: 0 }));
    q.lines.push(line);
    q.bytes += line.text.length + line.path.length + 48;
    // A line after a quiet spell goes at once; lines coming faster wait for the batch.
    if (q.bytes >= LOG_BATCH_BYTES || (!this.logTimer && Date.now() - this.lastLogEmit >= LOG_EVERY_MS))
      this.flushLogs();
    else this.logTimer ??= setTimeout(() => this.flushLogs(), LOG_EVERY_MS);
  }

  private flushLogs(): void {
    if (this.logTimer) clearTimeout(this.logTimer);
    this.logTimer = null;
    this.lastLogEmit = Date.now();
    const queued = [...this.logQueue];
    this.logQueue.clear();
    for (const [jobId, q] of queued) this.events.emit('job.log', { jobId, lines: q.lines });
  }

  private flush(rec: JobRecord): void {
    // Lines first: a summary saying the job ended comes after its last lines.
    this.flushLogs();
    const t = this.timers.get(rec.id);
    if (t) clearTimeout(t);
    this.timers.delete(rec.id);
    this.lastEmit.set(rec.id, Date.now());
    this.events.emit('job.update', summary(rec));
  }
}
