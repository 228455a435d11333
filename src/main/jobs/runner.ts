// Runs a job's step tree: plan preview from the same declaration, then the run with live log,
// per-step progress, bounded parallelism, cancel at safe points, and a record kept afterwards.
import { randomUUID } from 'node:crypto';
import type { JobHistory } from './history';
import { maskSecrets, newJobScope, runInJobScope, type JobScope } from './scope';
import type {
  JobDef,
  JobDefExtras,
  JobRecord,
  JobStatus,
  LogLine,
  PlanEntry,
  StepContext,
  StepDef,
  StepRecord,
} from './types';

export class JobCancelled extends Error {
  constructor() {
    super('Cancelled by the user');
    this.name = 'JobCancelled';
  }
}

/** An error that already names the step path it came from. */
export class StepError extends Error {
  constructor(
    readonly path: string,
    override readonly cause: unknown,
  ) {
    super(`${path}: ${cause instanceof Error ? cause.message : String(cause)}`);
    this.name = 'StepError';
  }
}

export interface RunnerOptions {
  history: JobHistory;
  /**
   * Called on every state change (throttling is the transport's business). The record on disk is
   * written at every step transition (start, end, failure, skip of each step and sub-step) and
   * the step waits for that write, so a crash leaves a record naming the steps in flight.
   */
  onUpdate?: (rec: JobRecord) => void;
  onLog?: (jobId: string, line: LogLine) => void;
  concurrency?: number;
  /**
   * Caps on the log kept per job (in memory and on disk). Past either, the first half and the
   * newest lines are kept; one marker line in between says how much was dropped.
   */
  maxLogLines?: number;
  maxLogBytes?: number;
  /** Longer log lines are cut, saying how many characters were dropped. */
  maxLogLineChars?: number;
  /** How long an end-of-job task may take (default END_TASK_TIMEOUT_MS). */
  endTaskTimeoutMs?: number;
  /** How long the end-of-job re-read of the cluster may take (default REFRESH_TIMEOUT_MS). */
  refreshTimeoutMs?: number;
}

/** How long an end-of-job task (see jobs/scope.ts) may take before the job ends without it. */
export const END_TASK_TIMEOUT_MS = 20_000;

/** How long a job's re-read of the cluster at its end (refreshAtEnd) may take. */
export const REFRESH_TIMEOUT_MS = 45_000;

/** Defaults: 20 000 lines, 8 MiB of text, 16 Ki characters per line. */
export const LOG_LIMITS = { lines: 20_000, bytes: 8 * 1024 * 1024, lineChars: 16 * 1024 } as const;

/** Where a job's log stands against its caps (kept beside the record, not in it). */
interface LogCap {
  headLines: number;
  headBytes: number;
  /** Index in rec.log where the tail starts (once the head is full). */
  tailStart: number;
  tailBytes: number;
  headFull: boolean;
  droppedLines: number;
  droppedBytes: number;
  marker?: LogLine;
}

interface Active {
  rec: JobRecord;
  cancel: AbortController;
}

/** Flatten a step tree into `parent/child` paths, depth-first, in declaration order. */
export function flatten<C>(
  steps: StepDef<C>[],
  prefix = '',
  depth = 0,
): { path: string; def: StepDef<C>; depth: number }[] {
  const out: { path: string; def: StepDef<C>; depth: number }[] = [];
  for (const s of steps) {
    if (!/^[A-Za-z0-9._-]+$/.test(s.id)) throw new Error(`Bad step id ${JSON.stringify(s.id)}`);
    const path = prefix ? `${prefix}/${s.id}` : s.id;
    if (out.some((o) => o.path === path)) throw new Error(`Duplicate step path ${path}`);
    out.push({ path, def: s, depth });
    if (s.children) out.push(...flatten(s.children, path, depth + 1));
  }
  return out;
}

export class JobRunner {
  private active = new Map<string, Active>();
  /** Each running job's scope: its secrets are masked in everything recorded (jobs/scope.ts). */
  private readonly scopes = new Map<string, JobScope>();
  private readonly concurrency: number;
  private readonly maxLines: number;
  private readonly maxBytes: number;
  private readonly maxLineChars: number;
  private readonly caps = new WeakMap<JobRecord, LogCap>();
  private readonly unsaved = new WeakSet<JobRecord>();

  constructor(private readonly opts: RunnerOptions) {
    this.concurrency = Math.max(1, opts.concurrency ?? 4);
    this.maxLines = Math.max(4, opts.maxLogLines ?? LOG_LIMITS.lines);
    this.maxBytes = Math.max(1024, opts.maxLogBytes ?? LOG_LIMITS.bytes);
    this.maxLineChars = Math.max(64, opts.maxLogLineChars ?? LOG_LIMITS.lineChars);
  }

  /** Build the preview: every step with the exact commands and file diffs it will use. */
  async plan<C>(def: JobDef<C>, ctx: C): Promise<JobRecord> {
    const flat = flatten(def.steps);
    const plan: PlanEntry[] = [];
    for (const f of flat) {
      const items = f.def.plan ? await f.def.plan(ctx) : [];
      plan.push({ path: f.path, title: f.def.title, node: f.def.node, depth: f.depth, items });
    }
    const rec: JobRecord = {
      id: randomUUID(),
      kind: def.kind,
      title: def.title,
      clusterId: def.clusterId,
      clusterName: def.clusterName,
      destructive: def.destructive,
      status: 'planned',
      createdAt: new Date().toISOString(),
      plan,
      steps: flat.map((f) => ({
        path: f.path,
        title: f.def.title,
        node: f.def.node,
        depth: f.depth,
        status: 'pending',
      })),
      log: [],
    };
    return rec;
  }

  /**
   * Run a planned job. Resolves with the final record (never rejects for step failures: those are
   * part of the record). `confirmation` must equal the cluster name for destructive jobs.
   */
  async run<C>(rec: JobRecord, def: JobDef<C>, ctx: C, confirmation?: string): Promise<JobRecord> {
    if (def.destructive && confirmation !== def.clusterName) {
      throw Object.assign(new Error(`Type the cluster name "${def.clusterName}" to confirm this job`), {
        code: 'CONFIRMATION_REQUIRED',
      });
    }
    if (rec.status !== 'planned') throw new Error(`Job ${rec.id} was already run`);
    const cancel = new AbortController();
    this.active.set(rec.id, { rec, cancel });
    rec.status = 'running';
    rec.startedAt = new Date().toISOString();
    await this.persist(rec);
    const byPath = new Map(rec.steps.map((s) => [s.path, s]));
    const scope = newJobScope(rec.id);
    this.scopes.set(rec.id, scope);
    let final: JobStatus = 'failed';
    try {
      await runInJobScope(scope, async () => {
        try {
          await this.runList(def.steps, '', ctx, rec, byPath, cancel.signal);
          final = 'succeeded';
        } catch (e) {
          const cancelled = e instanceof JobCancelled;
          rec.error = maskSecrets(cancelled ? 'Cancelled by the user' : (e as Error).message, scope);
          for (const s of rec.steps) if (s.status === 'pending') s.status = 'cancelled';
          const done = rec.steps.filter((s) => s.status === 'done').map((s) => s.path);
          this.log(rec, '', 'error', rec.error);
          await this.persist(rec);
          if (!cancelled && def.rollback?.when(ctx)) await this.rollback(rec, def, ctx);
          await this.tidyUp(rec, def, ctx);
          // The job's own words about the cluster, plus what the automatic rollback did, if it ran.
          rec.outcome = def.describeStop
            ? [def.describeStop(ctx, done), rollbackOutcome(rec)].filter(Boolean).join(' ')
            : defaultOutcome(rec);
          final = cancelled ? 'cancelled' : 'failed';
        }
      });
      await this.runEndTasks(rec, scope);
      await this.refresh(rec, def, ctx);
    } finally {
      // The final status only now: while the rollback and the end tasks run the job is still
      // running (a poller must not take "failed" or "succeeded" for the end, and a crash during
      // the rollback shows as interrupted).
      rec.status = final;
      rec.endedAt = new Date().toISOString();
      if (rec.outcome) rec.outcome = maskSecrets(rec.outcome, scope);
      this.active.delete(rec.id);
      this.scopes.delete(rec.id);
      await this.persist(rec);
    }
    return rec;
  }

  private async rollback<C>(rec: JobRecord, def: JobDef<C>, ctx: C): Promise<void> {
    const rb = def.rollback!;
    const sr: StepRecord = {
      path: 'rollback',
      title: rb.title,
      depth: 0,
      status: 'running',
      startedAt: new Date().toISOString(),
    };
    rec.steps.push(sr);
    this.log(rec, 'rollback', 'info', `start: ${rb.title}`);
    await this.persist(rec);
    try {
      await rb.run(ctx, {
        // A rollback is not cancellable: it is the way back to a known state.
        signal: new AbortController().signal,
        log: (stream, text) => this.log(rec, 'rollback', stream, text),
        progress: (f) => {
          sr.progress = f;
          this.opts.onUpdate?.(rec);
        },
      });
      sr.status = 'done';
      rec.rollback = { status: 'succeeded' };
      this.log(rec, 'rollback', 'info', `finish: ${rb.title}`);
    } catch (e) {
      sr.status = 'failed';
      sr.error = maskSecrets((e as Error).message, this.scopes.get(rec.id));
      rec.rollback = { status: 'failed', error: sr.error };
      this.log(rec, 'rollback', 'error', `rollback failed: ${sr.error}`);
    } finally {
      sr.endedAt = new Date().toISOString();
      await this.persist(rec);
    }
  }

  private async tidyUp<C>(rec: JobRecord, def: JobDef<C>, ctx: C): Promise<void> {
    const fn = (def as JobDef<C> & JobDefExtras<C>).tidyUp;
    if (!fn) return;
    const log = (stream: LogLine['stream'], text: string) => this.log(rec, 'tidy-up', stream, text);
    try {
      await fn(ctx, { signal: new AbortController().signal, log, progress: () => undefined });
    } catch (e) {
      log('error', `tidy-up failed: ${(e as Error).message}`);
    }
  }

  /** The job's re-read of the cluster (JobDefExtras.refreshAtEnd), bounded like an end task. */
  private async refresh<C>(rec: JobRecord, def: JobDef<C>, ctx: C): Promise<void> {
    const fn = (def as JobDef<C> & JobDefExtras<C>).refreshAtEnd;
    // Nothing done, nothing changed; a job whose own `refresh` step ran has just re-read it.
    const done = (s: StepRecord) => s.status === 'done';
    if (!fn || !rec.steps.some(done) || rec.steps.some((s) => s.path === 'refresh' && done(s))) return;
    const log = (stream: LogLine['stream'], text: string) => this.log(rec, 'refresh', stream, text);
    const limitMs = this.opts.refreshTimeoutMs ?? REFRESH_TIMEOUT_MS;
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<never>((_, rej) => {
      timer = setTimeout(() => rej(new Error(`no answer within ${limitMs / 1000} s`)), limitMs);
    });
    log('info', 'start: re-read the cluster (mode, members, tools)');
    try {
      await Promise.race([
        runInJobScope(this.scopes.get(rec.id) ?? newJobScope(rec.id), () =>
          fn(ctx, { signal: new AbortController().signal, log, progress: () => undefined }),
        ),
        limit,
      ]);
      log('info', 'finish: re-read the cluster');
    } catch (e) {
      log(
        'error',
        `could not re-read the cluster: ${(e as Error).message.split('\n')[0]}; initialize again to refresh it`,
      );
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * What code below the steps registered for the end of the job (e.g. removing the files it put in
   * nodes' transfer folders), on every outcome. Each task is logged under `tidy-up`; its errors are
   * logged and never change the job's status. A task that hangs (a node gone) is given up after
   * `endTaskTimeoutMs` so the job still ends.
   */
  private async runEndTasks(rec: JobRecord, scope: JobScope): Promise<void> {
    scope.closed = true;
    if (!scope.atEnd.size) return;
    const log = (stream: LogLine['stream'], text: string) => this.log(rec, 'tidy-up', stream, text);
    const limitMs = this.opts.endTaskTimeoutMs ?? END_TASK_TIMEOUT_MS;
    await Promise.all(
      [...scope.atEnd].map(async ([key, task]) => {
        let timer: NodeJS.Timeout | undefined;
        const limit = new Promise<never>((_, rej) => {
          timer = setTimeout(() => rej(new Error(`no answer within ${limitMs / 1000} s`)), limitMs);
        });
        try {
          await Promise.race([task(log), limit]);
        } catch (e) {
          log('error', `${key}: ${(e as Error).message.split('\n')[0]}`);
        } finally {
          clearTimeout(timer);
        }
      }),
    );
  }

  /** Ask a running job to stop at its next safe point. */
  cancel(jobId: string): boolean {
    const a = this.active.get(jobId);
    if (!a) return false;
    a.cancel.abort();
    this.log(a.rec, '', 'info', 'Cancel requested: stopping at the next safe point');
    return true;
  }

  isRunning(jobId: string): boolean {
    return this.active.has(jobId);
  }

  private async runList<C>(
    steps: StepDef<C>[],
    prefix: string,
    ctx: C,
    rec: JobRecord,
    byPath: Map<string, StepRecord>,
    cancel: AbortSignal,
    parallel = false,
  ): Promise<void> {
    if (!parallel) {
      for (const s of steps) await this.runStep(s, prefix, ctx, rec, byPath, cancel);
      return;
    }
    // Bounded parallelism; once one sibling fails, no new sibling starts, running ones finish.
    let next = 0;
    let failure: unknown = null;
    const worker = async () => {
      while (next < steps.length && !failure) {
        const s = steps[next++];
        try {
          await this.runStep(s, prefix, ctx, rec, byPath, cancel);
        } catch (e) {
          failure ??= e;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, steps.length) }, worker));
    if (failure) throw failure;
  }

  private async runStep<C>(
    s: StepDef<C>,
    prefix: string,
    ctx: C,
    rec: JobRecord,
    byPath: Map<string, StepRecord>,
    cancel: AbortSignal,
  ): Promise<void> {
    const path = prefix ? `${prefix}/${s.id}` : s.id;
    const sr = byPath.get(path)!;
    if (cancel.aborted && s.safePoint !== false) throw new JobCancelled();
    if (s.runIf && !(await s.runIf(ctx))) {
      this.markTree(rec, path, 'skipped');
      this.log(rec, path, 'info', `skipped: ${s.title}`);
      await this.persist(rec);
      return;
    }
    sr.status = 'running';
    sr.startedAt = new Date().toISOString();
    this.log(rec, path, 'info', `start: ${s.title}${s.node ? ` on ${s.node}` : ''}`);
    // On disk before the step touches anything: a crash from here on leaves it named as running.
    await this.persist(rec);
    const stepCtx: StepContext = {
      // Steps see the cancel signal only for work that is safe to interrupt (transfers, waits).
      signal: cancel,
      log: (stream, text) => this.log(rec, path, stream, text),
      progress: (fraction) => {
        sr.progress = Math.max(0, Math.min(1, fraction));
        this.opts.onUpdate?.(rec);
      },
      metric: (name, value) => {
        rec.metrics = { ...rec.metrics, [name]: value };
        this.opts.onUpdate?.(rec);
      },
    };
    try {
      if (s.run) await s.run(ctx, stepCtx);
      if (s.children) await this.runList(s.children, path, ctx, rec, byPath, cancel, s.parallel);
      sr.status = 'done';
      sr.progress = 1;
      this.log(rec, path, 'info', `finish: ${s.title}`);
    } catch (e) {
      if (e instanceof JobCancelled || (cancel.aborted && isAbortError(e))) {
        sr.status = 'cancelled';
        throw new JobCancelled();
      }
      sr.status = 'failed';
      const err = e instanceof StepError ? e : new StepError(path, e);
      sr.error = maskSecrets((e as Error)?.message ?? String(e), this.scopes.get(rec.id));
      this.log(rec, path, 'error', `failed: ${sr.error}`);
      throw err;
    } finally {
      sr.endedAt = new Date().toISOString();
      await this.persist(rec);
    }
  }

  private markTree(rec: JobRecord, path: string, status: StepRecord['status']): void {
    for (const s of rec.steps) if (s.path === path || s.path.startsWith(path + '/')) s.status = status;
  }

  private log(rec: JobRecord, path: string, stream: LogLine['stream'], text: string): void {
    text = maskSecrets(text, this.scopes.get(rec.id));
    if (text.length > this.maxLineChars)
      text = `${text.slice(0, this.maxLineChars)}… [line truncated: ${text.length - this.maxLineChars} more characters]`;
    const line: LogLine = { t: Date.now(), path, stream, text };
    rec.logLines = (rec.logLines ?? 0) + 1;
    this.keep(rec, line);
    this.opts.onLog?.(rec.id, line);
  }

  /**
   * Append to the kept log within the caps: the first half of the budget fills once (the head: how
   * the job started), then the newest lines are kept (the tail: how it ended). The tail is trimmed
   * in batches of a quarter, so a long flood costs amortised O(1) per line.
   */
  private keep(rec: JobRecord, line: LogLine): void {
    let cap = this.caps.get(rec);
    if (!cap) {
      cap = {
        headLines: 0,
        headBytes: 0,
        tailStart: 0,
        tailBytes: 0,
        headFull: false,
        droppedLines: 0,
        droppedBytes: 0,
      };
      this.caps.set(rec, cap);
    }
    const bytes = line.text.length + line.path.length + 40;
    const headMaxLines = Math.floor(this.maxLines / 2);
    const headMaxBytes = Math.floor(this.maxBytes / 2);
    if (!cap.headFull) {
      if (cap.headLines < headMaxLines && cap.headBytes + bytes <= headMaxBytes) {
        rec.log.push(line);
        cap.headLines++;
        cap.headBytes += bytes;
        return;
      }
      cap.headFull = true;
      cap.tailStart = rec.log.length;
    }
    rec.log.push(line);
    cap.tailBytes += bytes;
    const tailMaxLines = this.maxLines - headMaxLines;
    const tailMaxBytes = this.maxBytes - headMaxBytes;
    if (rec.log.length - cap.tailStart <= tailMaxLines && cap.tailBytes <= tailMaxBytes) return;
    // Drop the oldest tail lines until the tail is at three quarters of its budget.
    let n = 0;
    let freed = 0;
    const tailLen = rec.log.length - cap.tailStart;
    while (
      n < tailLen - 1 &&
      (tailLen - n > Math.floor((tailMaxLines * 3) / 4) || cap.tailBytes - freed > Math.floor((tailMaxBytes * 3) / 4))
    ) {
      const l = rec.log[cap.tailStart + n];
      freed += l.text.length + l.path.length + 40;
      cap.droppedBytes += Buffer.byteLength(l.text);
      n++;
    }
    cap.droppedLines += n;
    cap.tailBytes -= freed;
    if (!cap.marker) {
      cap.marker = { t: rec.log[cap.tailStart].t, path: '', stream: 'info', text: '' };
      rec.log.splice(cap.tailStart, n, cap.marker);
      cap.tailStart++;
    } else rec.log.splice(cap.tailStart, n);
    cap.marker.text = `… ${cap.droppedLines} log lines (${formatBytes(cap.droppedBytes)}) left out here to keep the log bounded; the start and the end of the log are kept …`;
  }

  /**
   * Tell the UI, and write the record now (see JobHistory.save). A record that cannot be written
   * (disk full) does not stop the job half-way: the log says so, once per job.
   */
  private async persist(rec: JobRecord): Promise<void> {
    this.opts.onUpdate?.(rec);
    try {
      await this.opts.history.save(rec);
    } catch (e) {
      if (this.unsaved.has(rec)) return;
      this.unsaved.add(rec);
      this.log(rec, '', 'error', `could not write the job record: ${(e as Error).message}`);
    }
  }
}

function formatBytes(n: number): string {
  if (n >= 1024 * 1024) return `${+(n / (1024 * 1024)).toFixed(1)} MiB`;
  if (n >= 1024) return `${+(n / 1024).toFixed(1)} KiB`;
  return `${n} bytes`;
}

function isAbortError(e: unknown): boolean {
  return e instanceof Error && (e.name === 'AbortError' || (e as { code?: string }).code === 'CANCELLED');
}

function defaultOutcome(rec: JobRecord): string {
  const done = rec.steps.filter((s) => s.status === 'done' && s.path !== 'rollback').map((s) => s.title);
  const failed = rec.steps.find((s) => s.status === 'failed' && s.path !== 'rollback');
  return [
    done.length ? `Completed: ${done.join('; ')}.` : 'No step completed.',
    failed ? `Failed at: ${failed.title}.` : '',
    rollbackOutcome(rec),
    'Check the cluster health before running another job.',
  ]
    .filter(Boolean)
    .join(' ');
}

function rollbackOutcome(rec: JobRecord): string {
  if (rec.rollback?.status === 'succeeded')
    return 'The automatic rollback brought the cluster back to the state saved before the job.';
  if (rec.rollback?.status === 'failed')
    return `The automatic rollback failed too (${rec.rollback.error}); bring back the saved state from the States view.`;
  return '';
}
