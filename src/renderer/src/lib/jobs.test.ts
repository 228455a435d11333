// Intent: a succeeded job shows 100 % and says it succeeded (with a switch's unavailable time); a
// failed one names its step, error, rollback and what the job said; its end gives exactly one
// toast, green for success and red otherwise; statuses are coloured by meaning.
import { describe, expect, it } from 'vitest';
import type { JobSummary, StepRecord } from '@shared/jobs';
import { jobEndNotice, jobProgress, outcomeText, progressTone, statusTone } from './jobs';

const step = (path: string, status: StepRecord['status'], depth = 0, extra: Partial<StepRecord> = {}): StepRecord => ({
  path,
  title: `Step ${path}`,
  depth,
  status,
  ...extra,
});

const job = (status: JobSummary['status'], steps: StepRecord[], extra: Partial<JobSummary> = {}): JobSummary => ({
  id: 'j1',
  kind: 'switch-to-external',
  title: 'Switch to the external etcd',
  clusterId: 'c',
  clusterName: 'lab',
  destructive: true,
  status,
  createdAt: '2026-01-01T00:00:00Z',
  startedAt: '2026-01-01T00:00:00Z',
  endedAt: '2026-01-01T00:00:42Z',
  steps,
  ...extra,
});

describe('job display rules', () => {
  it('a succeeded job is at 100 % with every step counted, even steps its records left pending', () => {
    const steps = [step('a', 'done'), step('b', 'skipped'), step('c', 'done'), step('c/x', 'pending', 1)];
    expect(jobProgress(job('succeeded', steps))).toEqual({ done: 3, total: 3, fraction: 1, percent: 100 });
    // Running with every step done (the end-of-job re-read): not yet 100 %.
    const all = [step('a', 'done'), step('b', 'done')];
    expect(jobProgress(job('running', all)).percent).toBe(99);
    expect(jobProgress(job('running', [step('a', 'done'), step('b', 'running', 0, { progress: 0.5 })])).percent).toBe(
      75,
    );
    // The rollback step is not the job's progress.
    const failed = jobProgress(job('failed', [step('a', 'done'), step('b', 'failed'), step('rollback', 'done')]));
    expect([failed.done, failed.total, failed.percent]).toEqual([1, 2, 50]);
  });

  it('the Outcome column says how the job ended', () => {
    expect(outcomeText(job('succeeded', [step('a', 'done'), step('b', 'done')]))).toBe(
      'Succeeded: 2 steps done in 42 s.',
    );
    expect(outcomeText(job('succeeded', [step('a', 'done')], { metrics: { apiserverUnavailableMs: 12_345 } }))).toBe(
      'Succeeded: 1 step done in 42 s; the apiservers were unavailable for 12.3 s.',
    );
    const failed = job('failed', [step('a', 'done'), step('gate', 'failed', 0, { error: 'etcd not healthy' })], {
      error: 'gate: etcd not healthy',
      rollback: { status: 'succeeded' },
      outcome: 'Nothing on the cluster was changed.',
    });
    expect(outcomeText(failed)).toBe(
      'Failed at “Step gate”: etcd not healthy. Rolled back to the state saved before the job. Nothing on the cluster was changed.',
    );
    expect(outcomeText(job('cancelled', [], { outcome: 'Nothing was changed.' }))).toBe(
      'Cancelled by the user. Nothing was changed.',
    );
    expect(outcomeText(job('interrupted', []))).toMatch(/^Interrupted: the app stopped while it ran\. Check/);
    expect(outcomeText(job('running', [step('a', 'done'), step('b', 'running')]))).toBe('Running: Step b');
  });

  it('one toast per job end: green for success, red for failed, cancelled or interrupted', () => {
    expect(jobEndNotice(job('succeeded', []))).toEqual({ kind: 'success', text: 'Switch to the external etcd: done' });
    for (const s of ['failed', 'cancelled', 'interrupted'] as const)
      expect(jobEndNotice(job(s, [], { error: 'boom' }))).toEqual({
        kind: 'error',
        text: `Switch to the external etcd: ${s} — boom`,
      });
  });

  it('colours statuses by meaning', () => {
    expect([statusTone('succeeded'), statusTone('done'), statusTone('failed'), statusTone('running')]).toEqual([
      'ok',
      'ok',
      'danger',
      'info',
    ]);
    expect([
      progressTone('succeeded'),
      progressTone('failed'),
      progressTone('cancelled'),
      progressTone('running'),
    ]).toEqual(['ok', 'danger', 'warn', 'accent']);
  });
});
