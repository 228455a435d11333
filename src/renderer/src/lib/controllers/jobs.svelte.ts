// Jobs as the renderer sees them. Every change to a cluster is a job: plan (shown in the plan
// preview dialog), start (destructive jobs need the cluster name typed), live updates from the
// `job.update` (summary, throttled by main) and `job.log` (batches of lines) events, cancel and
// history. Logs are `$state.raw` arrays replaced once per animation frame at most, never mutated in
// place, and capped: the renderer keeps the last LOG_KEEP lines of a job (a 100 000-line flood
// costs one array copy per frame, not 100 000 reactive updates); the whole log is a download
// (fullLog, read from main in pieces).
import type { Input } from '@shared/contract';
import type { JobRecord, JobStatus, JobSummary, LogChunk, LogLine, PlanEntry } from '@shared/jobs';
import { api } from '../api';
import { progressOf } from '../jobs';

export { progressOf };

export type JobRequestInput = Input<'jobs.plan'>['job'];

/** Lines kept per job in the renderer (the view is virtualised: only the rows on screen are in the DOM). */
export const LOG_KEEP = 20_000;
/** Without animation frames (a hidden page), batches are taken at least this often. */
const FLUSH_MS = 250;

export const FINAL: readonly JobStatus[] = ['succeeded', 'failed', 'cancelled', 'interrupted'];
export const isFinal = (s: JobStatus): boolean => FINAL.includes(s);

function summaryOf(rec: JobRecord): JobSummary {
  const { log: _log, plan: _plan, ...rest } = rec;
  return rest;
}

const lineKey = (l: LogLine) => `${l.t}\u0000${l.path}\u0000${l.stream}\u0000${l.text}`;

/** Append the lines of `extra` that `base` does not already end with (events racing a jobs.get). */
export function mergeLog(base: LogLine[], extra: LogLine[]): LogLine[] {
  if (!base.length) return extra;
  if (!extra.length) return base;
  const last = base[base.length - 1].t;
  // A local lookup, not state.
  // eslint-disable-next-line svelte/prefer-svelte-reactivity
  const sameT = new Set(base.filter((l) => l.t === last).map(lineKey));
  return [...base, ...extra.filter((l) => l.t > last || (l.t === last && !sameT.has(lineKey(l))))];
}

export class JobsController {
  /** id → newest summary (events, starts, lists, gets). */
  summaries = $state.raw<Record<string, JobSummary>>({});
  /** id → log lines (replaced in batches; the last LOG_KEEP). */
  logs = $state.raw<Record<string, LogLine[]>>({});
  /** id → true once older lines were dropped here (the view then holds the last lines only). */
  trimmed = $state.raw<Record<string, boolean>>({});
  /** id → plan of jobs planned here or loaded with jobs.get. */
  plans = $state.raw<Record<string, PlanEntry[]>>({});
  /** The planned job shown in the plan preview dialog. */
  preview = $state.raw<JobRecord | null>(null);
  /** What is being planned right now (button spinners), or null. */
  planning = $state<string | null>(null);
  /** clusterId → whether its history has been loaded. */
  listed = $state.raw<Record<string, boolean>>({});

  // Plumbing, not UI state: plain collections on purpose.
  // eslint-disable-next-line svelte/prefer-svelte-reactivity
  private buffers = new Map<string, LogLine[]>();
  // eslint-disable-next-line svelte/prefer-svelte-reactivity
  private dirty = new Set<string>();
  private flushTimer: ReturnType<typeof setTimeout> | null = null;
  private flushFrame: number | null = null;
  // eslint-disable-next-line svelte/prefer-svelte-reactivity
  private cut = new Set<string>();
  // eslint-disable-next-line svelte/prefer-svelte-reactivity
  private endHooks = new Set<(s: JobSummary) => void>();

  constructor() {
    api.on('job.update', (s) => this.merge(s, true));
    api.on('job.log', ({ jobId, lines }) => this.append(jobId, lines));
  }

  /** Called once per job when it reaches a final status. Returns an unsubscribe function. */
  onEnd(hook: (s: JobSummary) => void): () => void {
    this.endHooks.add(hook);
    return () => this.endHooks.delete(hook);
  }

  /**
   * Take a newer summary; a final status is never replaced by an older running one. End hooks run
   * when a job we saw running ends, or when an event reports the end of one we never saw.
   */
  private merge(s: JobSummary, fromEvent = false): void {
    const prev = this.summaries[s.id];
    if (prev && isFinal(prev.status) && !isFinal(s.status)) return;
    // Main sends a job's lines before its summary: show them together, so the count matches.
    if (this.dirty.has(s.id)) this.flush();
    this.summaries = { ...this.summaries, [s.id]: s };
    const ended = isFinal(s.status) && !(prev && isFinal(prev.status)) && (fromEvent || prev?.status === 'running');
    if (ended) for (const h of this.endHooks) h(s);
  }

  private append(jobId: string, lines: LogLine[]): void {
    let buf = this.buffers.get(jobId);
    if (!buf) this.buffers.set(jobId, (buf = []));
    for (const l of lines) buf.push(l);
    if (buf.length > LOG_KEEP * 1.5) {
      buf.splice(0, buf.length - LOG_KEEP);
      this.cut.add(jobId);
    }
    this.dirty.add(jobId);
    this.schedule();
  }

  /** One flush per animation frame (or FLUSH_MS when frames do not come: a hidden page). */
  private schedule(): void {
    this.flushTimer ??= setTimeout(() => this.flush(), FLUSH_MS);
    if (this.flushFrame === null && typeof requestAnimationFrame === 'function')
      this.flushFrame = requestAnimationFrame(() => this.flush());
  }

  private flush(): void {
    if (this.flushTimer !== null) clearTimeout(this.flushTimer);
    if (this.flushFrame !== null) cancelAnimationFrame(this.flushFrame);
    this.flushTimer = null;
    this.flushFrame = null;
    if (!this.dirty.size) return;
    const next = { ...this.logs };
    let cut: Record<string, boolean> | null = null;
    for (const id of this.dirty) {
      const buf = this.buffers.get(id) ?? [];
      if (buf.length > LOG_KEEP) this.cut.add(id);
      next[id] = buf.length > LOG_KEEP ? buf.slice(-LOG_KEEP) : buf.slice();
      if (this.cut.has(id) && !this.trimmed[id]) (cut ??= { ...this.trimmed })[id] = true;
    }
    this.dirty.clear();
    this.logs = next;
    if (cut) this.trimmed = cut;
  }

  /** How many lines the job logged in all (main counts them; the renderer may keep fewer). */
  logTotal(jobId: string): number {
    return Math.max(this.summaries[jobId]?.logLines ?? 0, this.logs[jobId]?.length ?? 0);
  }

  /**
   * The job's full log from main, as text, read in pieces (each one reply of a bounded size, so
   * neither transport carries one huge message).
   */
  async fullLog(jobId: string): Promise<Blob> {
    const parts: string[] = [];
    let offset: number | null = 0;
    while (offset !== null) {
      const c: LogChunk = await api.invoke('jobs.logChunk', { jobId, offset });
      parts.push(c.text);
      offset = c.next;
    }
    return new Blob(parts, { type: 'text/plain;charset=utf-8' });
  }

  summary(jobId: string): JobSummary | undefined {
    return this.summaries[jobId];
  }

  /** Jobs of a cluster, newest first; plans that were never run are left out. */
  forCluster(clusterId: string): JobSummary[] {
    return Object.values(this.summaries)
      .filter((s) => s.clusterId === clusterId && s.status !== 'planned')
      .sort((a, b) => (b.startedAt ?? b.createdAt).localeCompare(a.startedAt ?? a.createdAt));
  }

  running(clusterId: string): JobSummary | undefined {
    return Object.values(this.summaries).find((s) => s.clusterId === clusterId && s.status === 'running');
  }

  /** Plan a job (nothing runs). */
  async plan(clusterId: string, job: JobRequestInput, label = 'Planning…'): Promise<JobRecord> {
    this.planning = label;
    try {
      const rec = await api.invoke('jobs.plan', { clusterId, job });
      this.plans = { ...this.plans, [rec.id]: rec.plan };
      this.merge(summaryOf(rec));
      return rec;
    } finally {
      this.planning = null;
    }
  }

  /** Plan a job and show it in the plan preview dialog. */
  async planAndPreview(clusterId: string, job: JobRequestInput, label?: string): Promise<JobRecord> {
    const rec = await this.plan(clusterId, job, label);
    this.preview = rec;
    return rec;
  }

  closePreview(): void {
    this.preview = null;
  }

  /** Run a planned job; resolves once it runs. Errors (CONFIRMATION_REQUIRED, BUSY, …) propagate. */
  async start(jobId: string, confirmation?: string): Promise<JobSummary> {
    const s = await api.invoke('jobs.start', confirmation === undefined ? { jobId } : { jobId, confirmation });
    this.merge(s);
    return this.summaries[jobId] ?? s;
  }

  cancel(jobId: string): Promise<boolean> {
    return api.invoke('jobs.cancel', { jobId });
  }

  async list(clusterId: string): Promise<JobSummary[]> {
    const list = await api.invoke('jobs.list', { clusterId });
    for (const s of list) this.merge(s);
    this.listed = { ...this.listed, [clusterId]: true };
    return list;
  }

  /** Load the full record (plan and log so far) and keep following it through events. */
  async load(jobId: string): Promise<JobRecord | null> {
    const rec = await api.invoke('jobs.get', { jobId });
    if (!rec) return null;
    this.plans = { ...this.plans, [rec.id]: rec.plan };
    const merged = mergeLog(rec.log, this.buffers.get(jobId) ?? []);
    if (merged.length > LOG_KEEP) this.cut.add(jobId);
    this.buffers.set(jobId, merged.slice(-LOG_KEEP));
    this.dirty.add(jobId);
    this.flush();
    this.merge(summaryOf(rec));
    return rec;
  }
}
