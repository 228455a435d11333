// Pure rules of how a job is shown: its progress (a succeeded job is at 100 %), the words of the
// Jobs list's Outcome column, the colour of its status, and the one toast its end gives. No state,
// no API calls.
import type { JobStatus, JobSummary, StepRecord, StepStatus } from '@shared/jobs';
import { duration, span } from './format';

export interface Progress {
  done: number;
  total: number;
  /** 0..1 */
  fraction: number;
  /** 0..100, what the bar and its label say. */
  percent: number;
}

/** Leaf steps (the ones that do work) and how many of them are finished. */
export function progressOf(steps: StepRecord[]): { done: number; total: number; fraction: number } {
  const leaves = steps.filter((s, i) => !(steps[i + 1] && steps[i + 1].depth > s.depth));
  let done = 0;
  let partial = 0;
  for (const s of leaves) {
    if (s.status === 'done' || s.status === 'skipped') done++;
    else if (s.status === 'running' && s.progress) partial += Math.min(1, Math.max(0, s.progress));
  }
  const total = leaves.length;
  return { done, total, fraction: total ? Math.min(1, (done + partial) / total) : 0 };
}

/**
 * Progress of a job: a succeeded job is complete (100 %, every step counted), whatever its
 * records say of steps a condition left out; others count their finished leaf steps. The
 * automatic `rollback` step is not part of the job's own progress.
 */
export function jobProgress(j: Pick<JobSummary, 'status' | 'steps'>): Progress {
  const p = progressOf(j.steps.filter((s) => s.path !== 'rollback'));
  if (j.status === 'succeeded') return { done: p.total, total: p.total, fraction: 1, percent: 100 };
  // Not succeeded is not complete: a job ending (its end-of-job re-read) shows at most 99 %.
  return { ...p, percent: Math.min(99, Math.floor(p.fraction * 100)) };
}

export type Tone = 'ok' | 'info' | 'warn' | 'danger' | 'neutral';

const STATUS_TONE: Record<JobStatus | StepStatus, Tone> = {
  planned: 'neutral',
  pending: 'neutral',
  running: 'info',
  succeeded: 'ok',
  done: 'ok',
  skipped: 'neutral',
  failed: 'danger',
  cancelled: 'warn',
  interrupted: 'warn',
};

/** Colour of a job or step status: success green, failure red, cut short amber, running blue. */
export function statusTone(s: JobStatus | StepStatus): Tone {
  return STATUS_TONE[s] ?? 'neutral';
}

/** Tone of the job's progress bar. */
export function progressTone(s: JobStatus): 'accent' | 'ok' | 'danger' | 'warn' {
  const t = statusTone(s);
  return t === 'ok' ? 'ok' : t === 'danger' ? 'danger' : t === 'warn' ? 'warn' : 'accent';
}

/**
 * The Outcome column of the Jobs list: in a few words, how the job ended and what that means —
 * the measured unavailable time of a switch, the failed step and error, the rollback, what the
 * job said about the cluster when it stopped.
 */
export function outcomeText(j: JobSummary): string {
  const unavailable = j.metrics?.apiserverUnavailableMs;
  const apiservers =
    unavailable !== undefined ? `the apiservers were unavailable for ${(unavailable / 1000).toFixed(1)} s` : '';
  const rollback =
    j.rollback?.status === 'succeeded'
      ? 'Rolled back to the state saved before the job.'
      : j.rollback?.status === 'failed'
        ? `Rollback failed${j.rollback.error ? `: ${j.rollback.error}` : ''}.`
        : '';
  const join = (...parts: string[]) => parts.filter(Boolean).join(' ');
  switch (j.status) {
    case 'planned':
      return 'Planned, not run';
    case 'running': {
      const step = j.steps.filter((s) => s.status === 'running').at(-1);
      return step ? `Running: ${step.title}` : 'Running';
    }
    case 'succeeded': {
      const { total } = jobProgress(j);
      const took = span(j.startedAt, j.endedAt);
      return `Succeeded: ${total} step${total === 1 ? '' : 's'} done${took !== null ? ` in ${duration(took)}` : ''}${apiservers ? `; ${apiservers}` : ''}.`;
    }
    case 'failed': {
      const step = j.steps.find((s) => s.status === 'failed' && s.path !== 'rollback');
      // The error names the step path first (runner's StepError): the step's title says it already.
      const why = (j.error ?? step?.error ?? 'unknown error').replace(step ? `${step.path}: ` : /^$/, '');
      return join(`Failed${step ? ` at “${step.title}”` : ''}: ${why.replace(/\.$/, '')}.`, rollback, j.outcome ?? '');
    }
    case 'cancelled':
      return join('Cancelled by the user.', rollback, j.outcome ?? '');
    case 'interrupted':
      return join('Interrupted: the app stopped while it ran.', j.outcome ?? 'Check the cluster health.');
  }
}

/** The one toast a job's end gives: green for success, red otherwise. */
export function jobEndNotice(j: JobSummary): { kind: 'success' | 'error'; text: string } {
  if (j.status === 'succeeded') return { kind: 'success', text: `${j.title}: done` };
  return { kind: 'error', text: `${j.title}: ${j.status}${j.error ? ` — ${j.error}` : ''}` };
}
