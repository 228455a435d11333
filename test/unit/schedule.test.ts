// Intent: scheduled snapshots run while the app is open when due, never on top of another job on
// the same cluster, and keep only the newest N scheduled snapshots.
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EtcdService } from '../../src/main/etcd/service';
import type { EtcdDeps } from '../../src/main/etcd/deps';
import type { JobService } from '../../src/main/jobs/service';
import type { ToolCache } from '../../src/main/etcd/tools';

let dir: string;
beforeEach(async () => {
  dir = await fs.mkdtemp(join(tmpdir(), 'kes-sched-'));
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

function make(running = false) {
  const calls: string[] = [];
  const deps = {
    inventory: { get: () => ({ id: 'c1', name: 'lab', facts: {} }) },
    snapshots: { prune: async (_c: string, keep: number) => void calls.push(`prune keep=${keep}`) },
  } as unknown as EtcdDeps;
  const jobs = {
    running: () => (running ? [{}] : []),
    runToEnd: async () => {
      calls.push('run');
      return { status: 'succeeded' };
    },
  } as unknown as JobService;
  const svc = new EtcdService(deps, jobs, {} as ToolCache, dir);
  // planning needs a real cluster; the schedule only needs "a snapshot job"
  (svc as unknown as { plan: () => Promise<{ id: string }> }).plan = async () => {
    calls.push('plan');
    return { id: 'j1' };
  };
  return { svc, calls };
}

describe('snapshot schedule', () => {
  it('runs when due, prunes to the retention, and persists lastRunAt', async () => {
    const { svc, calls } = make();
    await svc.setSchedule({ clusterId: 'c1', everyHours: 1, keep: 3, enabled: true });
    await svc.tick();
    expect(calls).toEqual(['plan', 'run', 'prune keep=3']);
    await svc.tick(); // not due again within the hour
    expect(calls).toHaveLength(3);
    const saved = JSON.parse(await fs.readFile(join(dir, 'schedules.json'), 'utf8'));
    expect(saved[0].lastRunAt).toBeTruthy();
    const again = make().svc;
    await again.loadSchedules();
    expect(again.getSchedule('c1')?.lastRunAt).toBe(saved[0].lastRunAt);
  });

  it('skips disabled schedules and clusters with a running job', async () => {
    const a = make();
    await a.svc.setSchedule({ clusterId: 'c1', everyHours: 1, keep: 3, enabled: false });
    await a.svc.tick();
    expect(a.calls).toEqual([]);
    const b = make(true);
    await b.svc.setSchedule({ clusterId: 'c1', everyHours: 1, keep: 3, enabled: true });
    await b.svc.tick();
    expect(b.calls).toEqual([]);
  });
});
