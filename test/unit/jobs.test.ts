// Intent: one step-tree declaration drives the plan and the run; runs log per step, respect
// run-if, bounded parallelism, cancel only at safe points, wrap errors with the step path, keep a
// history that survives restart, and show a job killed mid-run as interrupted.
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { JobHistory } from '../../src/main/jobs/history';
import { flatten, JobRunner } from '../../src/main/jobs/runner';
import type { JobDef, StepDef } from '../../src/main/jobs/types';

let dir: string;
beforeEach(async () => {
  dir = await fs.mkdtemp(join(tmpdir(), 'kes-jobs-'));
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
type Ctx = { trace: string[]; skipB?: boolean };

function job(steps: StepDef<Ctx>[], destructive = false): JobDef<Ctx> {
  return { kind: 'test', title: 'Test job', destructive, clusterId: 'c1', clusterName: 'prod', steps };
}

describe('job runner', () => {
  it('flattens the tree into paths and rejects duplicates', () => {
    const paths = flatten([
      { id: 'a', title: 'A', children: [{ id: 'x', title: 'X' }] },
      { id: 'b', title: 'B' },
    ]).map((f) => f.path);
    expect(paths).toEqual(['a', 'a/x', 'b']);
    expect(() =>
      flatten([
        { id: 'a', title: '' },
        { id: 'a', title: '' },
      ]),
    ).toThrow(/Duplicate/);
    expect(() => flatten([{ id: 'a b', title: '' }])).toThrow(/Bad step id/);
  });

  it('plans from the same declaration, then runs in order with run-if', async () => {
    const history = await JobHistory.open(dir);
    const runner = new JobRunner({ history });
    const ctx: Ctx = { trace: [], skipB: true };
    const def = job([
      {
        id: 'a',
        title: 'A',
        node: 'm1',
        plan: () => [{ kind: 'command', node: 'm1', command: 'echo a' }],
        run: async (c, s) => {
          c.trace.push('a');
          s.log('stdout', 'hello');
        },
      },
      {
        id: 'b',
        title: 'B',
        runIf: (c) => !c.skipB,
        run: async (c) => void c.trace.push('b'),
        children: [{ id: 'b1', title: 'B1' }],
      },
      { id: 'c', title: 'C', run: async (c) => void c.trace.push('c') },
    ]);
    const rec = await runner.plan(def, ctx);
    expect(rec.plan[0]).toMatchObject({ path: 'a', node: 'm1', items: [{ kind: 'command', command: 'echo a' }] });
    expect(ctx.trace).toEqual([]); // planning runs nothing
    const done = await runner.run(rec, def, ctx);
    expect(done.status).toBe('succeeded');
    expect(ctx.trace).toEqual(['a', 'c']);
    expect(done.steps.map((s) => `${s.path}:${s.status}`)).toEqual(['a:done', 'b:skipped', 'b/b1:skipped', 'c:done']);
    expect(done.log).toContainEqual(expect.objectContaining({ path: 'a', stream: 'stdout', text: 'hello' }));
  });

  it('requires the typed cluster name for destructive jobs', async () => {
    const runner = new JobRunner({ history: await JobHistory.open(dir) });
    const def = job([{ id: 'a', title: 'A' }], true);
    const rec = await runner.plan(def, { trace: [] });
    await expect(runner.run(rec, def, { trace: [] }, 'wrong')).rejects.toMatchObject({ code: 'CONFIRMATION_REQUIRED' });
    expect((await runner.run(rec, def, { trace: [] }, 'prod')).status).toBe('succeeded');
  });

  it('runs parallel children with bounded concurrency', async () => {
    const runner = new JobRunner({ history: await JobHistory.open(dir), concurrency: 2 });
    let now = 0;
    let peak = 0;
    const child = (id: string): StepDef<Ctx> => ({
      id,
      title: id,
      run: async () => {
        peak = Math.max(peak, ++now);
        await sleep(30);
        now--;
      },
    });
    const def = job([
      { id: 'fan', title: 'Fan out', parallel: true, children: ['m1', 'm2', 'm3', 'm4', 'm5'].map(child) },
    ]);
    const t0 = Date.now();
    const rec = await runner.run(await runner.plan(def, { trace: [] }), def, { trace: [] });
    expect(rec.status).toBe('succeeded');
    expect(peak).toBe(2);
    expect(Date.now() - t0).toBeLessThan(5 * 30); // faster than one after another
  });

  it('wraps errors with the step path and says what was done', async () => {
    const runner = new JobRunner({ history: await JobHistory.open(dir) });
    const def = job([
      { id: 'prep', title: 'Prepare', run: async () => undefined },
      {
        id: 'restore',
        title: 'Restore',
        children: [
          {
            id: 'm2',
            title: 'Restore m2',
            run: async () => {
              throw new Error('etcdctl: exit 1');
            },
          },
        ],
      },
      { id: 'after', title: 'After' },
    ]);
    const rec = await runner.run(await runner.plan(def, { trace: [] }), def, { trace: [] });
    expect(rec.status).toBe('failed');
    expect(rec.error).toBe('restore/m2: etcdctl: exit 1');
    expect(rec.steps.find((s) => s.path === 'after')!.status).toBe('cancelled');
    expect(rec.outcome).toMatch(/Completed: Prepare\./);
  });

  it('cancels at the next safe point, letting the running step finish', async () => {
    const runner = new JobRunner({ history: await JobHistory.open(dir) });
    const ctx: Ctx = { trace: [] };
    const def = job([
      {
        id: 'long',
        title: 'Long',
        run: async (c) => {
          await sleep(80);
          c.trace.push('long');
        },
      },
      { id: 'tied', title: 'Tied to long', safePoint: false, run: async (c) => void c.trace.push('tied') },
      { id: 'next', title: 'Next', run: async (c) => void c.trace.push('next') },
    ]);
    const rec = await runner.plan(def, ctx);
    const p = runner.run(rec, def, ctx);
    await sleep(20);
    expect(runner.cancel(rec.id)).toBe(true);
    const done = await p;
    expect(done.status).toBe('cancelled');
    expect(ctx.trace).toEqual(['long', 'tied']);
    expect(done.steps.map((s) => s.status)).toEqual(['done', 'done', 'cancelled']);
  });

  it('keeps history across restart and marks a job that was running as interrupted', async () => {
    const history = await JobHistory.open(dir);
    const runner = new JobRunner({ history });
    const def = job([
      { id: 'one', title: 'Stop etcd', run: async () => undefined },
      { id: 'two', title: 'Restore data', run: () => new Promise(() => undefined) }, // never ends: the "crash"
    ]);
    const rec = await runner.plan(def, { trace: [] });
    void runner.run(rec, def, { trace: [] });
    await sleep(50);
    await history.save(rec, true);
    await history.flush();
    // A new process opens the same data dir.
    const reopened = await JobHistory.open(dir);
    const got = await reopened.get(rec.id);
    expect(got!.status).toBe('interrupted');
    expect(got!.outcome).toMatch(/Completed: Stop etcd\./);
    expect(got!.outcome).toMatch(/In progress when it stopped: Restore data\./);
    expect((await reopened.list('c1')).map((j) => j.id)).toContain(rec.id);
  });
});

describe('automatic rollback', () => {
  it('runs after a failure once the cluster was changed, and reports both', async () => {
    const runner = new JobRunner({ history: await JobHistory.open(dir) });
    const ctx = { trace: [] as string[], changed: false };
    const def: JobDef<typeof ctx> = {
      kind: 'restore',
      title: 'Restore',
      destructive: false,
      clusterId: 'c1',
      clusterName: 'prod',
      steps: [
        { id: 'stop', title: 'Stop', run: async (c) => void (c.changed = true) },
        {
          id: 'gate',
          title: 'Health gate',
          run: async () => {
            throw new Error('etcd not healthy after 120 s');
          },
        },
      ],
      rollback: {
        title: 'Bring back the saved state',
        when: (c) => c.changed,
        run: async (c, s) => {
          c.trace.push('rolled back');
          s.log('info', 'files restored');
        },
      },
    };
    const rec = await runner.run(await runner.plan(def, ctx), def, ctx);
    expect(rec.status).toBe('failed');
    expect(rec.error).toBe('gate: etcd not healthy after 120 s');
    expect(rec.rollback).toEqual({ status: 'succeeded' });
    expect(ctx.trace).toEqual(['rolled back']);
    expect(rec.steps.at(-1)).toMatchObject({ path: 'rollback', status: 'done' });
    expect(rec.outcome).toMatch(/automatic rollback brought the cluster back/);
  });

  it('does not roll back when nothing was changed, and reports a failed rollback', async () => {
    const runner = new JobRunner({ history: await JobHistory.open(dir) });
    const mk = (_changed: boolean): JobDef<{ changed: boolean }> => ({
      kind: 'x',
      title: 'x',
      destructive: false,
      clusterId: 'c1',
      clusterName: 'prod',
      steps: [
        {
          id: 'a',
          title: 'A',
          run: async () => {
            throw new Error('boom');
          },
        },
      ],
      rollback: {
        title: 'rb',
        when: (c) => c.changed,
        run: async () => {
          throw new Error('node gone');
        },
      },
    });
    const a = await runner.run(await runner.plan(mk(false), { changed: false }), mk(false), { changed: false });
    expect(a.rollback).toBeUndefined();
    const b = await runner.run(await runner.plan(mk(true), { changed: true }), mk(true), { changed: true });
    expect(b.rollback).toEqual({ status: 'failed', error: 'node gone' });
    expect(b.outcome).toMatch(/rollback failed too \(node gone\)/);
  });
});
