// Intent: after a restore, each master gets the user's etcd.yaml back (initial corruption check
// on) strictly one master at a time — stop, write, start, whole cluster healthy — before the next,
// so quorum holds; only members that started with the check off are touched; and a failure there
// never rolls back a restore whose apiservers already serve the restored data.
import { describe, expect, it } from 'vitest';
import type { ClusterNode } from '../../src/shared/domain';
import type { EtcdDeps } from '../../src/main/etcd/deps';
import { turnCorruptCheckBackOn, type FirstStartMember } from '../../src/main/etcd/first-start';
import { CHECK_BACK_FAILED, restoreEmbeddedJob, type RestoreCtx } from '../../src/main/etcd/restore-embedded';

const node = (name: string) =>
  ({ id: `id-${name}`, name, address: `198.18.0.${name.slice(1)}`, user: 'root', roles: ['master'] }) as ClusterNode;
const masters = ['m1', 'm2', 'm3'].map(node);

/** Fake node operations that record what ran where, in order. */
function fakeDeps(opts: { failUnparkOn?: string } = {}) {
  const events: string[] = [];
  const nameOf = (id: string) => id.replace(/^id-/, '');
  const deps = {
    inventory: { get: () => ({ nodes: masters }) },
    targetOf: (_c: string, id: string) => ({ label: nameOf(id) }),
    pool: { upload: async () => ({ bytes: 1, sha256: 'x' }), writeFile: async () => ({ bytes: 1, sha256: 'x' }) },
    ops: {
      run: async (_c: string, id: string, script: string, args: (string | number)[]) => {
        if (script === 'transfer-dir.sh') return { stdout: 'KES_DIR=/t\nKES_FREE_KB=1\n' };
        if (script === 'static-pod.sh') {
          events.push(`${nameOf(id)} ${args[0]} ${args[1]}`);
          if (args[0] === 'unpark' && nameOf(id) === opts.failUnparkOn)
            throw new Error(`etcd did not start on ${nameOf(id)}`);
        }
        if (script === 'install-file.sh') events.push(`${nameOf(id)} write ${args[1]}`);
        return { stdout: '' };
      },
      etcdctl: async (_c: string, _id: string, _e: string[], args: string[]) => {
        if (args[0] === 'member') {
          events.push('health');
          return JSON.stringify({
            members: masters.map((m, i) => ({
              ID: i + 1,
              name: m.name,
              peerURLs: [`https://${m.address}:2380`],
              clientURLs: [`https://${m.address}:2379`],
            })),
          });
        }
        return JSON.stringify(masters.map(() => ({ health: true })));
      },
      kubeGet: async () => ({ status: 200, body: 'ok' }),
      endpointGet: async () => ({ status: 200, body: 'ok' }),
    },
  } as unknown as EtcdDeps;
  return { deps, events };
}

const members = (withCheckOff: string[]): FirstStartMember[] =>
  masters.map((n) => ({
    node: n,
    finalManifest: `etcd.yaml of ${n.name}`,
    firstStart: withCheckOff.includes(n.name) ? 'check off' : undefined,
  }));

describe('turning the initial corruption check back on', () => {
  it('restarts one master at a time and waits for a healthy cluster before the next', async () => {
    const { deps, events } = fakeDeps();
    await turnCorruptCheckBackOn(deps, 'c1', members(['m1', 'm3']), masters, { timeoutMs: 5000, log: () => undefined });
    expect(events).toEqual([
      'm1 park kube-apiserver', // so the LB passes its connections on instead of serving errors
      'm1 park etcd',
      'm1 write /etc/kubernetes/kes-parked/etcd.yaml',
      'm1 unpark etcd',
      'health',
      'm1 unpark kube-apiserver',
      'm3 park kube-apiserver',
      'm3 park etcd',
      'm3 write /etc/kubernetes/kes-parked/etcd.yaml',
      'm3 unpark etcd',
      'health',
      'm3 unpark kube-apiserver',
    ]);
  });

  it('stops at the first master whose etcd does not come back, leaving the others alone', async () => {
    const { deps, events } = fakeDeps({ failUnparkOn: 'm1' });
    await expect(
      turnCorruptCheckBackOn(deps, 'c1', members(['m1', 'm2', 'm3']), masters, {
        timeoutMs: 5000,
        log: () => undefined,
      }),
    ).rejects.toThrow(/did not start on m1/);
    expect(events.some((e) => e.startsWith('m2') || e.startsWith('m3'))).toBe(false);
    expect(events.at(-1)).toBe('m1 unpark etcd'); // its apiserver stays parked: etcd beside it is down
  });
});

describe('restore job: what a failure late in the job does', () => {
  const job = restoreEmbeddedJob(
    { members: [], changed: false, gateTimeoutMs: 1, meta: { id: 'snap-1234' } } as unknown as RestoreCtx,
    'lab',
  );
  const ctx = (over: Partial<RestoreCtx>) => ({ changed: true, state: {}, ...over }) as RestoreCtx;

  it('rolls back before the apiservers serve the restored data, never after', () => {
    expect(job.rollback!.when!(ctx({}))).toBe(true);
    expect(job.rollback!.when!(ctx({ served: true }))).toBe(false);
  });

  it('says the restore itself succeeded when only putting the check back failed', () => {
    expect(job.describeStop!(ctx({ served: true, checkBackFailed: true }), [])).toBe(CHECK_BACK_FAILED);
  });
});
