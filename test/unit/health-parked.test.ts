// Intent: the health view names the manifests the app parked (which master, which component) and
// answers at once when a job was cut short with every etcd and apiserver parked — instead of
// "no kube-apiserver manifest" after waiting for etcdctl's timeouts on every master (~45 s) — while
// the stacked etcd parked on purpose in external mode is not reported as a problem.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { clusterHealth } from '../../src/main/cluster/health';
import { parseDiscovery } from '../../src/main/cluster/facts';
import type { ClusterOps } from '../../src/main/cluster/ops';
import type { InventoryStore } from '../../src/main/inventory/store';

const fixture = (f: string) => readFileSync(join(__dirname, 'fixtures', f), 'utf8');
const b64 = (s: string) => Buffer.from(s).toString('base64');
const EXTERNAL = 'https://198.18.0.50:2379';

interface NodeFiles {
  etcd?: 'active' | 'parked';
  apiserver?: 'active' | 'parked';
  apiserverText?: string;
  listening: string;
}

function discovery(n: NodeFiles): string {
  const api = n.apiserverText ?? fixture('kube-apiserver.yaml');
  const parked = [n.etcd === 'parked' ? 'etcd.yaml' : '', n.apiserver === 'parked' ? 'kube-apiserver.yaml' : '']
    .filter(Boolean)
    .join(' ');
  return [
    'KES_BEGIN',
    'hostname=x',
    `etcd_manifest=${n.etcd === 'active' ? b64(fixture('etcd.yaml')) : ''}`,
    `apiserver_manifest=${n.apiserver === 'active' ? b64(api) : ''}`,
    `parked_manifests=${parked}`,
    `parked_apiserver_manifest=${n.apiserver === 'parked' ? b64(api) : ''}`,
    `listening=${n.listening}`,
    'KES_END',
  ].join('\n');
}

function fake(
  files: Record<string, NodeFiles>,
  etcdAnswers = true,
  externalUnits: Record<string, string> = {},
  quorumLost = false,
) {
  const names = Object.keys(files);
  const nodes = [
    ...names.map((name, i) => ({ id: `id-${name}`, name, address: `198.18.0.${10 + i}`, roles: ['master'] })),
    // external etcd nodes: their discover.sh says whether the app's etcd unit runs
    ...Object.keys(externalUnits).map((name, i) => ({
      id: `id-${name}`,
      name,
      address: `198.18.0.${50 + i}`,
      roles: ['etcd'],
    })),
  ];
  const facts = {
    masters: names.map((name) => ({ nodeId: `id-${name}`, name, etcdServers: ['https://127.0.0.1:2379'] })),
  };
  const inventory = {
    get: () => ({ facts, nodes }),
    node: (_c: string, id: string) => nodes.find((n) => n.id === id)!,
  } as unknown as InventoryStore;
  const calls: string[] = [];
  const runs: string[] = []; // SSH round trips, by node
  const discover = async (_c: string, id: string) => {
    const name = id.slice(3);
    runs.push(name);
    if (name in externalUnits) {
      if (externalUnits[name] === 'no answer') throw new Error('connect ECONNREFUSED');
      return parseDiscovery(
        [
          'KES_BEGIN',
          'hostname=x',
          `etcd_unit=${b64('[Unit]')}`,
          `etcd_unit_active=${externalUnits[name]}`,
          'KES_END',
        ].join('\n'),
      );
    }
    return parseDiscovery(discovery(files[name]));
  };
  const ok = (stdout: string, code = 0) => ({ code, stdout, stderr: '', durationMs: 1 });
  const gets = (id: string, paths: string[]) => {
    calls.push(
      paths.length === 1 ? `kubeGet ${id.slice(3)} ${paths[0]}` : `kubeGetMany ${id.slice(3)} ${paths.length}`,
    );
    return ok(paths.map((_, i) => `KES_HTTP_${i}=200\nKES_BODY_${i}=${b64('{"items":[]}')}`).join('\n'));
  };
  // etcdctl.sh as it behaves: its own member with nothing listening is refused at once (exit 3);
  // else it waits for its timeout when etcd does not answer
  const etcdctl = async (id: string, endpoints: string[], args: string[]) => {
    const name = id.slice(3);
    const local = endpoints.every((e) => e.includes('127.0.0.1'));
    if (local && !files[name]?.listening.split(' ').includes('2379'))
      return { code: 3, stdout: '', stderr: 'nothing listens on 127.0.0.1:2379', durationMs: 1 };
    calls.push(`etcdctl ${name} ${endpoints.join(',')} ${args[0]}`);
    if (quorumLost && !local) return { code: 1, stdout: '', stderr: 'context deadline exceeded', durationMs: 15_000 };
    if (!etcdAnswers) {
      await new Promise((r) => setTimeout(r, 15_000));
      return { code: 1, stdout: '', stderr: 'context deadline exceeded', durationMs: 15_000 };
    }
    if (args[0] === 'member')
      return ok(
        JSON.stringify({
          header: { cluster_id: 1 },
          members: [{ ID: 1, name: 'e1', peerURLs: ['https://198.18.0.50:2380'], clientURLs: [EXTERNAL] }],
        }),
      );
    return ok('[]');
  };
  const ops = {
    discover,
    discovered: async (_c: string, _id: string, stdout: string) => parseDiscovery(stdout),
    etcdctlCall: (_c: string, _id: string, endpoints: string[], args: string[]) => ({
      name: 'etcdctl.sh',
      args: [endpoints.join(','), 'ca', 'cert', 'key', ...args],
    }),
    // in order, as the batch runs them; a part whose `needs` failed is skipped (code 125)
    runMany: async (_c: string, id: string, list: { name: string; args: string[]; needs?: number }[]) => {
      runs.push(id.slice(3));
      const out: { code: number | null; stdout: string; stderr: string; durationMs: number }[] = [];
      for (const c of list) {
        if (c.needs !== undefined && out[c.needs].code !== 0)
          out.push({ code: 125, stdout: '', stderr: 'skipped', durationMs: 0 });
        else if (c.name === 'discover.sh') out.push(ok(discovery(files[id.slice(3)])));
        else if (c.name === 'kube-api.sh') out.push(gets(id, c.args.slice(2)));
        else out.push(await etcdctl(id, c.args[0].split(','), c.args.slice(4)));
      }
      return out;
    },
    kubeGetMany: async (_c: string, id: string, paths: string[]) => {
      calls.push(`kubeGetMany ${id.slice(3)} ${paths.length}`);
      return paths.map(() => ({ status: 200, body: '{"items":[]}' }));
    },
  } as unknown as ClusterOps;
  return { deps: { ops, inventory }, calls, runs };
}

describe('health with manifests the app parked', () => {
  it('a restore cut short on every master: parked apiservers and etcd named per master, answered at once', async () => {
    const files: Record<string, NodeFiles> = {
      m1: { etcd: 'parked', apiserver: 'parked', listening: '22 10248' },
      m2: { etcd: 'parked', apiserver: 'parked', listening: '22 10248' },
    };
    const { deps, calls } = fake(files, false);
    const t0 = Date.now();
    const r = await clusterHealth(deps, 'c1');
    expect(Date.now() - t0).toBeLessThan(2000);
    // no etcdctl waiting on closed ports (refused at once), no readyz of a parked apiserver used
    expect(calls.filter((c) => c.startsWith('etcdctl'))).toEqual([]);
    expect(r.apiservers.map((a) => [a.name, a.ready, a.parked, a.etcdServers])).toEqual([
      ['m1', false, true, ['https://127.0.0.1:2379']],
      ['m2', false, true, ['https://127.0.0.1:2379']],
    ]);
    expect(r.apiservers[0].error).toMatch(/kube-apiserver\.yaml is parked by the app in \/etc\/kubernetes\/kes-parked/);
    expect(r.parked.map((p) => `${p.node} ${p.component} ${p.expected}`)).toEqual([
      'm1 kube-apiserver false',
      'm1 etcd false',
      'm2 kube-apiserver false',
      'm2 etcd false',
    ]);
    expect(r.parked[0].path).toBe('/etc/kubernetes/kes-parked/kube-apiserver.yaml');
    const said = r.errors.join('\n');
    expect(said).toMatch(
      /^m1: kube-apiserver and etcd stopped by the app \(manifests parked in \/etc\/kubernetes\/kes-parked\)/m,
    );
    expect(said).toMatch(/^m2: kube-apiserver and etcd stopped by the app/m);
    expect(said).toMatch(/bring back a state/);
    expect(said).toMatch(/etcd via m1: nothing listens on m1:2379: its etcd\.yaml is parked/);
    expect(said).not.toMatch(/no kube-apiserver manifest/);
    // configured for the stacked etcd, nothing serves: down, not "mixed"
    expect(r.mode).toBe('down (configured for embedded)');
    expect(r.modeDetails).toContain('m1: kube-apiserver stopped by the app (manifest parked)');
  });

  it('external mode: the stacked etcd parked on purpose is reported as expected, not as a problem', async () => {
    const api = fixture('kube-apiserver.yaml').replace('https://127.0.0.1:2379', EXTERNAL);
    const files: Record<string, NodeFiles> = {
      m1: { etcd: 'parked', apiserver: 'active', apiserverText: api, listening: '22 6443' },
    };
    const { deps, calls } = fake(files);
    const r = await clusterHealth(deps, 'c1');
    expect(r.parked).toEqual([
      { nodeId: 'id-m1', node: 'm1', component: 'etcd', path: '/etc/kubernetes/kes-parked/etcd.yaml', expected: true },
    ]);
    expect(r.errors.join('\n')).not.toMatch(/stopped by the app/);
    expect(r.apiservers[0]).toMatchObject({ ready: true, etcdServers: [EXTERNAL] });
    expect(r.apiservers[0].parked).toBeUndefined();
    // the external etcd is asked through m1 even though nothing listens on m1:2379
    expect(calls).toContain(`etcdctl m1 ${EXTERNAL} member`);
    expect(r.members.map((m) => m.name)).toEqual(['e1']);
    expect(r.mode).toBe('external-up');
  });

  it('asks etcd through the next master when the first one’s member is parked', async () => {
    const files: Record<string, NodeFiles> = {
      m1: { etcd: 'parked', apiserver: 'parked', listening: '22' },
      m2: { etcd: 'active', apiserver: 'active', listening: '22 2379 2380 6443' },
    };
    const { deps, calls } = fake(files);
    const r = await clusterHealth(deps, 'c1');
    expect(calls.filter((c) => c.startsWith('etcdctl m1'))).toEqual([]);
    expect(calls).toContain('etcdctl m2 https://127.0.0.1:2379 member');
    expect(r.members).toHaveLength(1);
    // passed-over masters are not an error once etcd answered through another one
    expect(r.errors.join('\n')).not.toMatch(/nothing listens/);
    expect(r.parked.filter((p) => !p.expected).map((p) => `${p.node} ${p.component}`)).toEqual([
      'm1 kube-apiserver',
      'm1 etcd',
    ]);
  });

  it('reports the external etcd units as systemd sees them (the External tab shows them live)', async () => {
    const { deps } = fake(
      {
        m1: {
          etcd: 'parked',
          apiserver: 'active',
          apiserverText: fixture('kube-apiserver.yaml').replace('https://127.0.0.1:2379', EXTERNAL),
          listening: '6443',
        },
      },
      true,
      {
        e1: 'active',
        e2: 'inactive',
        e3: 'no answer',
      },
    );
    const h = await clusterHealth(deps, 'c');
    expect(h.services.filter((s) => s.unit === 'etcd')).toEqual([
      { node: 'e1', unit: 'etcd', state: 'active' },
      { node: 'e2', unit: 'etcd', state: 'inactive' },
      { node: 'e3', unit: 'etcd', state: 'unknown' },
    ]);
  });

  it('one refresh costs one SSH round trip per node: 5 masters, 5 external members', async () => {
    const api = fixture('kube-apiserver.yaml').replace('https://127.0.0.1:2379', EXTERNAL);
    const files: Record<string, NodeFiles> = Object.fromEntries(
      ['m1', 'm2', 'm3', 'm4', 'm5'].map((m) => [
        m,
        { etcd: 'parked', apiserver: 'active', apiserverText: api, listening: '22 6443' } as NodeFiles,
      ]),
    );
    const { deps, runs, calls } = fake(files, true, {
      e1: 'active',
      e2: 'active',
      e3: 'active',
      e4: 'active',
      e5: 'active',
    });
    // the facts remember the endpoints the apiservers used when last seen
    for (const m of deps.inventory.get('c').facts!.masters) m.etcdServers = [EXTERNAL];
    const h = await clusterHealth(deps, 'c');
    expect(h.mode).toBe('external-up');
    expect(h.members).toHaveLength(1);
    expect(h.apiservers.every((a) => a.ready)).toBe(true);
    expect([...runs].sort()).toEqual(['e1', 'e2', 'e3', 'e4', 'e5', 'm1', 'm2', 'm3', 'm4', 'm5']);
    // etcd and the pods were asked once, in m1's run
    expect(calls.filter((c) => c.startsWith('etcdctl')).map((c) => c.split(' ')[1])).toEqual(['m1', 'm1', 'm1']);
    expect(calls.filter((c) => c.startsWith('kubeGetMany'))).toHaveLength(1);
    expect(calls.find((c) => c.startsWith('kubeGetMany'))).toMatch(/^kubeGetMany m1 /);
  });

  it('when the apiservers moved since last seen, etcd is asked again through the endpoints discovered', async () => {
    const api = fixture('kube-apiserver.yaml').replace('https://127.0.0.1:2379', EXTERNAL);
    const { deps, runs, calls } = fake({
      m1: { etcd: 'parked', apiserver: 'active', apiserverText: api, listening: '22 6443' },
    });
    // facts still say the stacked etcd (127.0.0.1): m1's run asked it, and nothing listens there
    const h = await clusterHealth(deps, 'c');
    expect(h.members.map((m) => m.name)).toEqual(['e1']);
    expect(runs).toEqual(['m1', 'm1']);
    expect(calls).toContain(`etcdctl m1 ${EXTERNAL} member`);
  });

  it('an external etcd without quorum: asked through two masters at most, nothing asked after a failed member list', async () => {
    const api = fixture('kube-apiserver.yaml').replace('https://127.0.0.1:2379', EXTERNAL);
    const files: Record<string, NodeFiles> = Object.fromEntries(
      ['m1', 'm2', 'm3'].map((m) => [
        m,
        { etcd: 'parked', apiserver: 'active', apiserverText: api, listening: '22 6443' } as NodeFiles,
      ]),
    );
    const { deps, calls } = fake(files, true, {}, true);
    for (const m of deps.inventory.get('c').facts!.masters) m.etcdServers = [EXTERNAL];
    const h = await clusterHealth(deps, 'c');
    const etcd = calls.filter((c) => c.startsWith('etcdctl'));
    // m1's own run (member list only: status and alarms were skipped), then once more through m2
    expect(etcd).toEqual([`etcdctl m1 ${EXTERNAL} member`, `etcdctl m2 ${EXTERNAL} member`]);
    expect(h.members).toEqual([]);
    expect(h.errors.join('\n')).toMatch(/etcd via m1: .*context deadline exceeded/);
    // the masters' own answers are not lost behind etcd's failure
    expect(h.apiservers.every((a) => a.ready)).toBe(true);
    expect(h.pods).toEqual([]);
    expect(h.errors.join('\n')).not.toMatch(/kube-system pods/);
  });
});
