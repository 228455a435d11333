// Intent: one step-tree declaration drives the plan and the run; runs log per step, respect
// run-if, bounded parallelism, cancel only at safe points, wrap errors with the step path, keep a
// history that survives restart, and show a job killed mid-run as interrupted.
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { JobHistory } from '../../src/main/jobs/history';
import { flatten, JobRunner } from '../../src/main/jobs/runner';
import { atJobEnd } from '../../src/main/jobs/scope';
import type { JobDef, JobDefExtras, JobRecord, StepDef } from '../../src/main/jobs/types';

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
        await sleep(100);
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
    // faster than one after another (each step transition also waits for its record write)
    expect(Date.now() - t0).toBeLessThan(5 * 100);
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
    await history.flush();
    // A new process opens the same data dir (no save forced: the runner wrote at the transition).
    const reopened = await JobHistory.open(dir);
    const got = await reopened.get(rec.id);
    expect(got!.status).toBe('interrupted');
    expect(got!.outcome).toMatch(/Completed: Stop etcd\./);
    expect(got!.outcome).toMatch(/In progress when it stopped: Restore data\./);
    expect(got!.steps.map((s) => `${s.path}:${s.status}`)).toEqual(['one:done', 'two:interrupted']);
    expect((await reopened.list('c1')).map((j) => j.id)).toContain(rec.id);
  });
});

describe('job record on disk at every step transition (crash in the middle)', () => {
  const onDisk = async (id: string) =>
    JSON.parse(await fs.readFile(join(dir, 'jobs', `${id}.json`), 'utf8')) as JobRecord;
  /** Poll the file (as another process would see it) until `ok`, or give up after `ms`. */
  const until = async (id: string, ok: (r: JobRecord) => boolean, ms = 2000) => {
    const end = Date.now() + ms;
    for (;;) {
      const r = await onDisk(id).catch(() => null);
      if (r && ok(r)) return r;
      if (Date.now() > end) return r;
      await sleep(5);
    }
  };
  const statuses = (r: JobRecord | null) => r?.steps.map((s) => `${s.path}:${s.status}`);

  it('writes the start of a step before the step runs, and its end before the next one starts', async () => {
    const history = await JobHistory.open(dir);
    const runner = new JobRunner({ history });
    const seen: Record<string, string[] | undefined> = {};
    let id = '';
    const def = job([
      { id: 'prep', title: 'Prepare', run: async () => void (seen.prep = statuses(await onDisk(id))) },
      {
        id: 'members',
        title: 'Restore every member',
        parallel: true,
        children: [
          { id: 'm1', title: 'Restore m1', run: async () => void (seen.m1 = statuses(await onDisk(id))) },
          { id: 'm2', title: 'Restore m2', run: async () => void (seen.m2 = statuses(await onDisk(id))) },
        ],
      },
      { id: 'last', title: 'Last', run: async () => void (seen.last = statuses(await onDisk(id))) },
    ]);
    const rec = await runner.plan(def, { trace: [] });
    id = rec.id;
    const done = await runner.run(rec, def, { trace: [] });
    expect(done.status).toBe('succeeded');
    // What each step read from disk as it began: itself running, everything before it done.
    expect(seen.prep).toEqual([
      'prep:running',
      'members:pending',
      'members/m1:pending',
      'members/m2:pending',
      'last:pending',
    ]);
    expect(seen.m1?.slice(0, 3)).toEqual(['prep:done', 'members:running', 'members/m1:running']);
    expect(seen.m2?.slice(0, 2)).toEqual(['prep:done', 'members:running']);
    expect(seen.m2?.[3]).toBe('members/m2:running');
    expect(seen.last).toEqual(['prep:done', 'members:done', 'members/m1:done', 'members/m2:done', 'last:running']);
    expect(statuses(await onDisk(id))).toEqual([
      'prep:done',
      'members:done',
      'members/m1:done',
      'members/m2:done',
      'last:done',
    ]);
    expect((await onDisk(id)).status).toBe('succeeded');
  });

  it('after a crash with parallel steps in flight: the file names them running; the next start says interrupted', async () => {
    const history = await JobHistory.open(dir);
    const runner = new JobRunner({ history });
    const def = job([
      { id: 'stop', title: 'Stop the members', run: async () => undefined },
      {
        id: 'restore',
        title: 'Restore every member',
        parallel: true,
        children: [
          { id: 'm1', title: 'Restore member on m1', run: () => new Promise(() => undefined) },
          { id: 'm2', title: 'Restore member on m2', run: () => new Promise(() => undefined) },
          {
            id: 'm3',
            title: 'Restore member on m3',
            run: async () => {
              throw new Error('disk full');
            },
          },
        ],
      },
      { id: 'start', title: 'Start etcd', run: async () => undefined },
    ]);
    const rec = await runner.plan(def, { trace: [] });
    void runner.run(rec, def, { trace: [] });
    // No flush, no forced save: the file as a crash at this moment would leave it.
    const before = await until(rec.id, (r) => r.steps.find((s) => s.path === 'restore/m3')?.status === 'failed');
    expect(before!.status).toBe('running');
    expect(statuses(before)).toEqual([
      'stop:done',
      'restore:running',
      'restore/m1:running',
      'restore/m2:running',
      'restore/m3:failed',
      'start:pending',
    ]);
    // The next start of the app.
    const reopened = await JobHistory.open(dir);
    const got = (await reopened.get(rec.id))!;
    expect(got.status).toBe('interrupted');
    expect(statuses(got)).toEqual([
      'stop:done',
      'restore:interrupted',
      'restore/m1:interrupted',
      'restore/m2:interrupted',
      'restore/m3:failed',
      'start:cancelled',
    ]);
    expect(got.outcome).toMatch(/The app stopped while this job was running\./);
    expect(got.outcome).toMatch(/Completed: Stop the members\./);
    expect(got.outcome).toMatch(/In progress when it stopped: Restore member on m1; Restore member on m2\./);
    expect(got.outcome).toMatch(/restore the state saved before this job/);
    expect(got.endedAt).toBeTruthy();
    expect(got.steps.find((s) => s.path === 'restore/m1')!.error).toMatch(/app stopped while this step was running/);
    expect((await reopened.list('c1')).find((j) => j.id === rec.id)?.status).toBe('interrupted');
  });

  it('runs what code below the steps registered for the end of the job, on success and on failure', async () => {
    const history = await JobHistory.open(dir);
    const runner = new JobRunner({ history });
    const ended: string[] = [];
    let statusDuringEnd = '';
    const mk = (fail: boolean) =>
      job([
        {
          id: 'upload',
          title: 'Upload',
          children: ['m1', 'm2'].map((n) => ({
            id: n,
            title: `Upload to ${n}`,
            run: async () => {
              // registered twice for m1: runs once
              atJobEnd(`clean ${n}`, async (log) => {
                statusDuringEnd = rec.status;
                ended.push(n);
                log('info', `cleaned ${n}`);
              });
              atJobEnd(`clean ${n}`, async () => void ended.push(`${n} again`));
            },
          })),
        },
        {
          id: 'gate',
          title: 'Gate',
          run: async () => {
            if (fail) throw new Error('gate failed');
          },
        },
      ]);
    let rec = await runner.plan(mk(false), { trace: [] });
    const ok = await runner.run(rec, mk(false), { trace: [] });
    expect(ok.status).toBe('succeeded');
    expect(ended.sort()).toEqual(['m1', 'm2']);
    expect(statusDuringEnd).toBe('running'); // the job ends only after its end tasks
    expect(ok.log.some((l) => l.path === 'tidy-up' && l.text === 'cleaned m2')).toBe(true);
    ended.length = 0;
    rec = await runner.plan(mk(true), { trace: [] });
    const bad = await runner.run(rec, mk(true), { trace: [] });
    expect(bad.status).toBe('failed');
    expect(ended.sort()).toEqual(['m1', 'm2']);
    // Outside a job nothing is registered.
    expect(atJobEnd('x', async () => undefined)).toBe(false);
  });

  it('a failing or hanging end task is logged and does not change the outcome', async () => {
    const history = await JobHistory.open(dir);
    const runner = new JobRunner({ history, endTaskTimeoutMs: 200 });
    const def = job([
      {
        id: 'a',
        title: 'A',
        run: async () => {
          atJobEnd('broken', async () => {
            throw new Error('ssh: connection refused');
          });
          atJobEnd('hangs', () => new Promise(() => undefined));
        },
      },
    ]);
    const done = await runner.run(await runner.plan(def, { trace: [] }), def, { trace: [] });
    expect(done.status).toBe('succeeded');
    const errs = done.log.filter((l) => l.path === 'tidy-up' && l.stream === 'error').map((l) => l.text);
    expect(errs.sort()).toEqual(['broken: ssh: connection refused', 'hangs: no answer within 0.2 s']);
  });
});

describe('re-reading the cluster at the end of a job (refreshAtEnd)', () => {
  type RCtx = { trace: string[]; fail?: string };
  const mk = (steps: StepDef<RCtx>[], trace: string[], statuses: string[], rec: () => JobRecord | undefined) => {
    const def: JobDef<RCtx> & JobDefExtras<RCtx> = {
      kind: 'member-remove',
      title: 'Remove s1',
      destructive: false,
      clusterId: 'c1',
      clusterName: 'prod',
      steps,
      rollback: { title: 'Roll back', when: () => true, run: async () => void trace.push('rollback') },
      refreshAtEnd: async (_c, s) => {
        trace.push('refresh');
        statuses.push(rec()?.status ?? '');
        s.log('info', 'mode is now external-up');
      },
    };
    return def;
  };

  it('runs after the steps (and after a rollback), while the job still shows running, on success and failure', async () => {
    const runner = new JobRunner({ history: await JobHistory.open(dir) });
    const trace: string[] = [];
    const statuses: string[] = [];
    let rec: JobRecord | undefined;
    const steps: StepDef<RCtx>[] = [
      { id: 'remove', title: 'Remove', run: async () => void trace.push('remove') },
      {
        id: 'rewire',
        title: 'Rewire',
        run: async (c) => {
          if (c.fail) throw new Error(c.fail);
        },
      },
    ];
    let def = mk(steps, trace, statuses, () => rec);
    rec = await runner.plan(def, { trace: [] });
    const ok = await runner.run(rec, def, { trace: [] });
    expect(ok.status).toBe('succeeded');
    expect(trace).toEqual(['remove', 'refresh']);
    expect(statuses).toEqual(['running']); // a screen reloading at the end sees the new facts
    expect(ok.log.some((l) => l.path === 'refresh' && l.text === 'mode is now external-up')).toBe(true);

    trace.length = 0;
    statuses.length = 0;
    def = mk(steps, trace, statuses, () => rec);
    rec = await runner.plan(def, { trace: [] });
    const bad = await runner.run(rec, def, { trace: [], fail: 'apiserver not ready' });
    expect(bad.status).toBe('failed');
    expect(trace).toEqual(['remove', 'rollback', 'refresh']);
    expect(statuses).toEqual(['running']);
  });

  it('is skipped when no step was done or when the job refreshed itself; its failure is only logged', async () => {
    const runner = new JobRunner({ history: await JobHistory.open(dir), refreshTimeoutMs: 200 });
    const trace: string[] = [];
    const statuses: string[] = [];
    const nothing = mk(
      [
        {
          id: 'check',
          title: 'Check',
          run: async () => {
            throw new Error('QUORUM_LOST');
          },
        },
      ],
      trace,
      statuses,
      () => undefined,
    );
    delete nothing.rollback;
    await runner.run(await runner.plan(nothing, { trace: [] }), nothing, { trace: [] });
    expect(trace).toEqual([]);

    trace.length = 0;
    const own = mk(
      [{ id: 'refresh', title: 'Refresh', run: async () => void trace.push('own') }],
      trace,
      statuses,
      () => undefined,
    );
    await runner.run(await runner.plan(own, { trace: [] }), own, { trace: [] });
    expect(trace).toEqual(['own']);

    const hangs: JobDef<RCtx> & JobDefExtras<RCtx> = {
      ...mk([{ id: 'a', title: 'A', run: async () => undefined }], trace, statuses, () => undefined),
      refreshAtEnd: () => new Promise(() => undefined),
    };
    const done = await runner.run(await runner.plan(hangs, { trace: [] }), hangs, { trace: [] });
    expect(done.status).toBe('succeeded');
    expect(done.log.filter((l) => l.path === 'refresh' && l.stream === 'error').map((l) => l.text)).toEqual([
      'could not re-read the cluster: no answer within 0.2 s; initialize again to refresh it',
    ]);
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
