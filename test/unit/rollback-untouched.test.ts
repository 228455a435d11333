// Intent: a rollback leaves alone the masters a job never changed — every file as the state saved
// it (content, mode, present or absent), no external unit — so it does not stop their pods again;
// anything else (a parked manifest, another mode, an unreadable node, an external member) is
// brought back as before.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { ClusterNode } from '../../src/shared/domain';
import type { StateNode } from '../../src/shared/vault';
import type { EtcdDeps } from '../../src/main/etcd/deps';
import { STATE_FILES } from '../../src/main/etcd/files';
import { unchangedMasters } from '../../src/main/etcd/state';

const node = (name: string, roles: string[]) => ({ id: `id-${name}`, name, roles }) as ClusterNode;
const ETCD = '/etc/kubernetes/manifests/etcd.yaml';
const API = '/etc/kubernetes/manifests/kube-apiserver.yaml';
const PARKED_ETCD = '/etc/kubernetes/kes-parked/etcd.yaml';
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

/** What the state saved on every node: both manifests active, nothing parked, no unit. */
const saved = (n: ClusterNode, unit: boolean | null = null): StateNode => ({
  name: n.name,
  nodeId: n.id,
  address: '198.18.0.2',
  roles: n.roles,
  etcdDataDir: '/var/lib/etcd',
  etcdUnitActive: unit,
  files: STATE_FILES.map((path) => ({
    path,
    mode: 0o600,
    sha256: path === ETCD ? sha('etcd') : path === API ? sha('api') : null,
  })),
});

/** collect-files.sh output per node: path → [octal mode, content] (absent paths print `-`). */
function deps(now: Record<string, Record<string, [string, string]> | 'unreachable'>, units: string[] = []) {
  const logs: string[] = [];
  const d = {
    ops: {
      run: async (_c: string, id: string, script: string, args: string[]) => {
        expect(script).toBe('collect-files.sh');
        const files = now[id];
        if (files === 'unreachable') throw new Error('ssh: connect timed out');
        const lines = args.map((p) =>
          files[p]
            ? `KES_FILE=${p}|${files[p][0]}|${Buffer.from(files[p][1]).toString('base64')}`
            : `KES_FILE=${p}|0|-`,
        );
        if (units.includes(id)) lines.push('KES_UNIT_ACTIVE=active');
        return { stdout: lines.join('\n') + '\n' };
      },
    },
  } as unknown as EtcdDeps;
  return { d, logs, log: (_s: string, t: string) => void logs.push(t) };
}

const asSaved: Record<string, [string, string]> = { [ETCD]: ['600', 'etcd'], [API]: ['600', 'api'] };

describe('masters a rollback leaves alone', () => {
  it('only those exactly as saved, and says so', async () => {
    const [m1, m2, m3, m4, m5] = ['m1', 'm2', 'm3', 'm4', 'm5'].map((n) => node(n, ['master']));
    const { d, logs, log } = deps({
      [m1.id]: asSaved,
      // its etcd parked by the job
      [m2.id]: { [API]: ['600', 'api'], [PARKED_ETCD]: ['600', 'etcd'] },
      // same bytes, another mode
      [m3.id]: { [ETCD]: ['644', 'etcd'], [API]: ['600', 'api'] },
      [m4.id]: 'unreachable',
      // a manifest rewritten
      [m5.id]: { [ETCD]: ['600', 'etcd --data-dir=/var/lib/etcd-kes-1'], [API]: ['600', 'api'] },
    });
    const same = await unchangedMasters(
      d,
      'c1',
      [m1, m2, m3, m4, m5].map((n) => saved(n)),
      [m1, m2, m3, m4, m5],
      log,
    );
    expect([...same]).toEqual([m1.id]);
    expect(logs).toEqual(['m1: as the saved state has it (its files unchanged, nothing parked): left alone']);
  });

  it('never an etcd node, nor a master with an external unit', async () => {
    const e1 = node('e1', ['etcd']);
    const m1 = node('m1', ['master']);
    const m2 = node('m2', ['master']);
    const { d } = deps({ [e1.id]: asSaved, [m1.id]: asSaved, [m2.id]: asSaved }, [m2.id]);
    const same = await unchangedMasters(d, 'c1', [saved(e1, true), saved(m1, true), saved(m2)], [e1, m1, m2], () => {});
    // m1 had a unit in the state; m2 has one now
    expect([...same]).toEqual([]);
  });
});
