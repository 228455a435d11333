// Intent: jobs that change the cluster carry the end-of-job re-read of the facts (so the mode
// badge, node chips and member lists follow them), seeded from the facts' seed master, unless the
// job stopped before changing anything; jobs that change nothing the facts hold (a snapshot) do not.
import { describe, expect, it } from 'vitest';
import { EtcdService } from '../../src/main/etcd/service';
import type { EtcdDeps } from '../../src/main/etcd/deps';
import type { JobService } from '../../src/main/jobs/service';
import type { JobDef, JobDefExtras } from '../../src/main/jobs/types';
import type { ToolCache } from '../../src/main/etcd/tools';

function make() {
  const node = { id: 's1', name: 's1', address: '198.18.0.9', port: 22, user: 'root', roles: ['etcd'] };
  const discovered: string[] = [];
  const deps = {
    inventory: {
      get: () => ({ id: 'c1', name: 'lab', nodes: [node], facts: { seedNodeId: 'm1' }, creation: null }),
      node: (_c: string, id: string) => (id === 'm1' ? { ...node, id: 'm1', name: 'm1' } : node),
    },
    states: { manifest: async () => ({ createdAt: '2026-01-01T00:00:00Z', mode: 'embedded-up' }) },
    ops: {
      discover: async (_c: string, nodeId: string) => {
        discovered.push(nodeId);
        throw new Error('ssh: unreachable');
      },
    },
  } as unknown as EtcdDeps;
  let planned: (JobDef<unknown> & JobDefExtras<unknown>) | null = null;
  const jobs = {
    plan: async (def: JobDef<unknown>) => {
      planned = def;
      return { id: 'j1' };
    },
  } as unknown as JobService;
  const svc = new EtcdService(deps, jobs, {} as ToolCache, '/nonexistent');
  return { svc, discovered, def: () => planned! };
}

describe('end-of-job re-read of the cluster', () => {
  it('is attached to jobs that change what the facts hold, and re-discovers from the seed master', async () => {
    const { svc, discovered, def } = make();
    await svc.plan('c1', { kind: 'external-unit', nodeIds: ['s1'], action: 'stop' });
    expect(def().refreshAtEnd).toBeTypeOf('function');
    const lines: string[] = [];
    await expect(
      def().refreshAtEnd!(
        {},
        { signal: new AbortController().signal, log: (_s, t) => void lines.push(t), progress: () => undefined },
      ),
    ).rejects.toThrow(/unreachable/);
    expect(discovered).toEqual(['m1']);
    // A restore or switch that stopped before changing anything leaves the facts as they are.
    await def().refreshAtEnd!(
      { changed: false },
      { signal: new AbortController().signal, log: (_s, t) => void lines.push(t), progress: () => undefined },
    );
    expect(discovered).toEqual(['m1']);
    expect(lines).toContain('nothing on the cluster was changed: the facts stand');

    await svc.plan('c1', { kind: 'restore-state', stateId: '00000000-0000-4000-8000-000000000001' });
    expect(def().refreshAtEnd).toBeTypeOf('function');
  });

  it('is not attached to a snapshot (nothing in the facts changes)', async () => {
    const { svc, def } = make();
    await svc.plan('c1', { kind: 'snapshot', note: '', source: 'in-use' });
    expect(def().refreshAtEnd).toBeUndefined();
  });
});
