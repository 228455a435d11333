// Intent: external etcd members (a Type=notify unit: etcd reports ready only once its cluster has
// quorum) are started and restarted together with `--no-block`, then waited for through cluster
// health — never one `systemctl start` after another, which blocks on the first member until
// systemd's start timeout kills it (a rollback that never brings the cluster back).
import { describe, expect, it } from 'vitest';
import type { ClusterNode } from '../../src/shared/domain';
import type { EtcdDeps } from '../../src/main/etcd/deps';
import { bringBackState, restoreStateSteps, type RestoreStateCtx } from '../../src/main/etcd/state';
import { restoreOntoExternal, type ExternalRestorePlan } from '../../src/main/etcd/external';
import type { SnapshotMeta } from '../../src/main/vault/snapshots';

const node = (name: string, n: number, roles: string[]) =>
  ({ id: `id-${name}`, name, address: `198.18.0.${n}`, user: 'root', roles }) as ClusterNode;
const master = node('m1', 2, ['master']);
const ext = [node('e1', 10, ['etcd']), node('e2', 11, ['etcd']), node('e3', 12, ['etcd'])];

/**
 * Fake nodes whose systemctl behaves like real systemd with a Type=notify etcd: a blocking start
 * returns only once a quorum of members runs, and a member that is not ready within the start
 * timeout is killed (failed). `--no-block` queues the start and returns at once.
 */
function fakeCluster() {
  const running = new Set<string>();
  const recheck: (() => void)[] = [];
  const units: string[] = [];
  const scripts: { node: string; script: string; args: string[] }[] = [];
  const errors: string[] = [];
  const quorum = () => running.size >= 2;
  const deps = {
    inventory: {
      get: () => ({ nodes: [master, ...ext], facts: { masters: [{ nodeId: master.id, name: 'm1' }], mode: 'x' } }),
      node: (_c: string, id: string) => [master, ...ext].find((n) => n.id === id)!,
    },
    targetOf: (_c: string, id: string) => ({ label: id }),
    pool: {
      upload: async () => ({ bytes: 1, sha256: 'sha-1' }),
      writeFile: async () => ({ bytes: 1, sha256: 'sha-1' }),
    },
    states: {
      load: async () => ({
        manifest: {
          id: 's1',
          nodes: ext.map((n) => ({
            name: n.name,
            nodeId: n.id,
            address: n.address,
            roles: n.roles,
            etcdDataDir: '/var/lib/etcd',
            etcdUnitActive: true,
            files: [{ path: '/etc/default/etcd', mode: 0o644, sha256: 'x' }],
          })),
        },
        content: () => Buffer.from('ETCD_NAME="x"\n'),
      }),
      save: async () => ({ id: 's2', nodes: [] }),
    },
    ops: {
      run: async (_c: string, id: string, script: string, args: string[]) => {
        const name = id.replace(/^id-/, '');
        scripts.push({ node: name, script, args });
        if (script === 'transfer-dir.sh') return { stdout: 'KES_DIR=/t\nKES_FREE_KB=1\n' };
        if (script === 'collect-files.sh') return { stdout: '' };
        if (script !== 'systemd-unit.sh') return { stdout: '' };
        units.push(`${name} ${args.join(' ')}`);
        const [action, , mode] = args;
        if (action === 'stop') running.delete(id);
        if (action === 'start' || action === 'restart') {
          running.add(id);
          recheck.forEach((f) => f());
          if (mode !== '--no-block')
            await new Promise<void>((resolve, reject) => {
              const check = () => quorum() && resolve();
              recheck.push(check);
              check();
              setTimeout(() => {
                running.delete(id); // TimeoutStartSec: systemd kills a member that never got ready
                reject(new Error(`Job for etcd.service failed on ${name}: timeout (never ready)`));
              }, 200);
            });
        }
        return { stdout: `KES_ACTIVE=${running.has(id) ? 'active' : 'inactive'}\n` };
      },
      etcdctl: async (_c: string, _id: string, urls: string[]) =>
        JSON.stringify(
          urls.map((u) => ({
            endpoint: u,
            health: quorum() && ext.some((n) => u.includes(n.address) && running.has(n.id)),
          })),
        ),
    },
  } as unknown as EtcdDeps;
  const log = (stream: string, text: string) => void (stream === 'error' && errors.push(text));
  return { deps, units, scripts, errors, running, log };
}

describe('starting external members (Type=notify)', () => {
  it('a rollback restarts them together without blocking, then waits for their health', async () => {
    const f = fakeCluster();
    let healthyAfterStarts = false;
    await bringBackState(f.deps, 'c1', 's1', {
      log: f.log,
      external: async (addresses) => {
        expect(addresses).toEqual(ext.map((n) => n.address));
        healthyAfterStarts = f.running.size === 3;
      },
    });
    expect(f.units).toEqual(ext.map((n) => `${n.name} restart etcd --no-block`));
    expect(f.errors).toEqual([]);
    expect(healthyAfterStarts).toBe(true);
  });

  it('bringing a state back restarts them together and waits for the external cluster', async () => {
    const f = fakeCluster();
    const steps = restoreStateSteps({ deps: f.deps, clusterId: 'c1', stateId: 's1' });
    const ctx = { deps: f.deps, clusterId: 'c1', stateId: 's1' } as RestoreStateCtx;
    const state = await f.deps.states.load('s1');
    Object.assign(ctx, { state: state.manifest, content: state.content });
    const healthChecks: string[][] = [];
    const etcdctl = f.deps.ops.etcdctl.bind(f.deps.ops);
    (f.deps.ops as { etcdctl: unknown }).etcdctl = async (c: string, id: string, urls: string[], args: string[]) => {
      healthChecks.push(urls);
      return etcdctl(c, id, urls, args);
    };
    const files = steps.find((s) => s.id === 'files')!;
    await files.run!(ctx, { log: f.log, signal: new AbortController().signal } as never);
    expect(f.units.sort()).toEqual(ext.map((n) => `${n.name} restart etcd --no-block`));
    expect(healthChecks.at(-1)?.sort()).toEqual(ext.map((n) => `https://${n.address}:2379`).sort());
  });

  it('a restore onto them passes the server version and starts them together', async () => {
    const f = fakeCluster();
    const plans: ExternalRestorePlan[] = ext.map((n) => ({
      node: n,
      oldEnv: '',
      newEnv: 'ETCD_NAME="x"\n',
      newDataDir: '/var/lib/etcd-kes-1',
      serverVersion: '3.6.16',
    }));
    const meta = { id: 'snap-1', sha256: 'sha-1' } as SnapshotMeta;
    (f.deps as unknown as { snapshots: unknown }).snapshots = { filePath: () => '/vault/snap-1' };
    await restoreOntoExternal(f.deps, 'c1', meta, plans, 'tok', 'e1=https://198.18.0.10:2380', f.log);
    expect(f.units.filter((u) => / start /.test(u))).toEqual(ext.map((n) => `${n.name} start etcd --no-block`));
    const restores = f.scripts.filter((s) => s.script === 'restore-member.sh');
    expect(restores.map((r) => r.args[7])).toEqual(['3.6.16', '3.6.16', '3.6.16']);
  });
});
