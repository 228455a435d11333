// Intent: a plan preview says only what is true of its plan. The counts (steps, distinct nodes,
// commands, files written, steps decided at run time) and the sentences above the steps (changes
// that cannot be undone, state saved first, apiservers or etcd stopped) are derived from the plan,
// checked on hand-made shapes and on the real plans of every job kind, built by the service
// against a fake cluster (files, etcd, API answered from memory; nothing runs). Member add/remove
// and "bring back a state" show their exact commands per node and their file diffs.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ClusterNode } from '../../src/shared/domain';
import type { JobRecord, JobRequest, PlanEntry } from '../../src/shared/jobs';
import {
  isUnifiedDiff,
  jobNote,
  planCounts,
  planFacts,
  planSentences,
  planSummaryText,
} from '../../src/shared/plan-summary';
import { unifiedDiff } from '../../src/main/util/diff';
import type { EtcdDeps } from '../../src/main/etcd/deps';
import { EtcdService } from '../../src/main/etcd/service';
import { JobRunner } from '../../src/main/jobs/runner';
import type { JobHistory } from '../../src/main/jobs/history';
import type { JobService } from '../../src/main/jobs/service';
import type { ToolCache } from '../../src/main/etcd/tools';
import { stackedEtcdTls } from '../../src/main/cluster/ops';
import { KUBEADM_CONFIG_API_PATH } from '../../src/main/cluster/kubeadm-config';
import { renderEtcdEnv, renderEtcdUnit } from '../../src/main/etcd/external-config';
import { shQuote } from '../../src/main/remote/quote';

const e = (path: string, items: PlanEntry['items'] = [], node?: string): PlanEntry => ({
  path,
  title: path,
  node,
  depth: path.split('/').length - 1,
  items,
});
const cmd = (node: string, command: string) => ({ kind: 'command' as const, node, command });
const file = (node: string, path: string) => ({
  kind: 'file' as const,
  node,
  path,
  diff: `--- a${path}\n+++ b${path}`,
});

describe('planCounts', () => {
  it('counts distinct nodes from steps and items, files by node and path, uploads as files, run-time steps', () => {
    const plan = [
      e('check'),
      e('upload', []),
      e('upload/m1', [{ kind: 'upload', node: 'm1', from: 'vault/x', to: '/t/x.db', bytes: 3 }], 'm1'),
      e('upload/m2', [{ kind: 'upload', node: 'm2', from: 'vault/x', to: '/t/x.db', bytes: 3 }], 'm2'),
      e('stop', [cmd('m1', 'bash static-pod.sh park kube-apiserver secure-port'), cmd('m3', 'x')]),
      e('write', [file('m1', '/a'), file('m1', '/a'), file('m2', '/a'), { kind: 'note', text: 'n' }]),
      e('wipe', [cmd('a ready master', 'DELETE /api/v1/namespaces/x/pods')]),
      e('wait', [{ kind: 'note', text: 'waits' }], 'e1'),
    ];
    const c = planCounts(plan);
    expect(c).toMatchObject({ steps: 8, nodes: 4, commands: 3, files: 4, uploads: 2, runTime: 2 });
    expect(c.nodeNames).toEqual(['e1', 'm1', 'm2', 'm3']);
    expect(c.runTimeNodes).toEqual(['a ready master']);
    expect(planSummaryText(c)).toBe(
      '8 steps · 4 nodes (and a ready master, chosen when it runs) · 3 commands · 4 files written (2 uploaded) · 2 steps with no command shown',
    );
    expect(planSummaryText(planCounts([e('only', [cmd('m1', 'x')], 'm1')]))).toBe(
      '1 step · 1 node · 1 command · 0 files written',
    );
  });
});

describe('isUnifiedDiff', () => {
  it('tells a diff from a whole file given instead (shown as the file written, not as +0 −0)', () => {
    expect(isUnifiedDiff(unifiedDiff('/etc/x', 'a\n', 'b\n'))).toBe(true);
    expect(isUnifiedDiff('--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n')).toBe(true);
    expect(isUnifiedDiff('global\n    log /dev/log local0\n')).toBe(false);
    expect(isUnifiedDiff('--- a yaml document marker\nkind: InitConfiguration\n')).toBe(false);
  });
});

describe('planSentences', () => {
  const rec = (destructive: boolean, plan: PlanEntry[]) => ({ destructive, clusterName: 'prod', plan });
  it('says the state is saved first only when a save step comes before any change', () => {
    const saved = [e('save-state'), e('stop', [cmd('m1', 'bash static-pod.sh park kube-apiserver secure-port')])];
    expect(planFacts(rec(true, saved))).toEqual({
      destructive: true,
      savesStateFirst: true,
      stopsApiserversOn: ['m1'],
      stopsEtcdOn: [],
    });
    const late = [e('stop', [cmd('m1', 'bash static-pod.sh park etcd 2379,2380')]), e('save-state')];
    expect(planFacts(rec(true, late)).savesStateFirst).toBe(false);
    const afterWrite = [e('w', [file('m1', '/x')]), e('save-current')];
    expect(planFacts(rec(true, afterWrite)).savesStateFirst).toBe(false);
    const ids = (r: ReturnType<typeof rec>) => planSentences(r).map((s) => s.id);
    expect(ids(rec(true, saved))).toEqual(['destructive', 'saves-state', 'apiservers-stop']);
    expect(planSentences(rec(true, saved))[0].text).not.toContain('cannot simply be undone');
    expect(ids(rec(true, late))).toEqual(['destructive', 'etcd-stop']);
    expect(planSentences(rec(true, late))[0].text).toContain('cannot simply be undone');
    expect(ids(rec(false, [e('x', [cmd('m1', 'bash systemd-unit.sh restart etcd --no-block')])]))).toEqual([
      'not-run',
      'etcd-stop',
    ]);
  });
});

// ---------- a fake cluster: 2 masters (stacked), 3 external etcd nodes, a worker, an LB ----------

const fixture = (f: string) => readFileSync(join(__dirname, 'fixtures', f), 'utf8');
const M = '/etc/kubernetes/manifests';
const P = '/etc/kubernetes/kes-parked';
const ENV = '/etc/default/etcd';
const UNIT = '/etc/systemd/system/etcd.service';
const CC = `apiVersion: kubeadm.k8s.io/v1beta4
etcd:
  local:
    dataDir: /var/lib/etcd
kind: ClusterConfiguration
`;

const node = (name: string, address: string, roles: string[]): ClusterNode =>
  ({ id: `id-${name}`, name, address, port: 22, user: 'root', roles, auth: { method: 'agent' } }) as ClusterNode;
const M1 = node('m1', '198.18.0.2', ['master']);
const M2 = node('m2', '198.18.0.3', ['master']);
const E = [node('e1', '198.18.0.7', ['etcd']), node('e2', '198.18.0.8', ['etcd']), node('e3', '198.18.0.9', ['etcd'])];
const W1 = node('w1', '198.18.0.4', ['worker']);
const LB = node('lb', '198.18.0.5', ['lb']);
const NODES = [M1, M2, ...E, W1, LB];
const EXT_URLS = E.map((n) => `https://${n.address}:2379`).join(',');

const stackedEtcd = (n: ClusterNode) =>
  fixture('etcd.yaml').replaceAll('198.18.0.2', n.address).replace('--name=m1', `--name=${n.name}`);
const envOf = (n: ClusterNode, dataDir = '/var/lib/etcd-ext') =>
  renderEtcdEnv(
    { name: n.name, address: n.address, dataDir },
    { initialCluster: E.map((x) => `${x.name}=https://${x.address}:2380`).join(','), token: 'kes-t1', state: 'new' },
    '3.6.16',
  );

function fakeCluster(mode: 'embedded-up' | 'external-up') {
  const apiserver =
    mode === 'embedded-up'
      ? fixture('kube-apiserver.yaml')
      : fixture('kube-apiserver.yaml').replace('--etcd-servers=https://127.0.0.1:2379', `--etcd-servers=${EXT_URLS}`);
  const files: Record<string, Record<string, string>> = {};
  for (const m of [M1, M2])
    files[m.id] = {
      [`${M}/kube-apiserver.yaml`]: apiserver,
      [mode === 'embedded-up' ? `${M}/etcd.yaml` : `${P}/etcd.yaml`]: stackedEtcd(m),
    };
  for (const n of E) files[n.id] = { [ENV]: envOf(n), [UNIT]: renderEtcdUnit('/usr/local/bin/etcd') };
  const cluster = {
    id: 'c1',
    name: 'prod',
    createdAt: '2026-01-01T00:00:00.000Z',
    creation: {
      lb: { kind: 'haproxy', port: 6443 },
      kubernetesMinor: '1.36',
      podCidr: '10.244.0.0/16',
      serviceCidr: '10.96.0.0/12',
      cni: 'flannel',
      cniManifest: { source: 'file', path: '/tmp/f.yml' },
      ignorePreflightErrors: [],
      demo: true,
    },
    nodes: NODES,
    facts: {
      initializedAt: '2026-01-01T00:00:00.000Z',
      seedNodeId: M1.id,
      controlPlaneEndpoint: '198.18.0.5:6443',
      etcdCaCert: null,
      etcdCaKeyOn: ['m1'],
      etcdVersion: '3.6.16',
      masters: [M1, M2].map((m) => ({ nodeId: m.id, name: m.name, address: m.address })),
      members: [],
      mode,
      modeDetails: [],
      nodeTools: {},
    },
  };
  // External members as etcd lists them (e3 is missing for member-add).
  let external = E;
  const memberList = () =>
    JSON.stringify({
      members: external.map((n, i) => ({
        ID: 0x1000 + i,
        name: n.name,
        peerURLs: [`https://${n.address}:2380`],
        clientURLs: [`https://${n.address}:2379`],
      })),
    });
  const state = {
    format: 1,
    id: '00000000-0000-4000-8000-000000000001',
    clusterId: 'c1',
    clusterName: 'prod',
    mode: 'embedded-up',
    reason: 'before switching to external',
    createdAt: '2026-01-02T00:00:00.000Z',
    nodes: [
      ...[M1, M2].map((m) => ({
        name: m.name,
        nodeId: m.id,
        address: m.address,
        roles: m.roles,
        etcdDataDir: '/var/lib/etcd',
        etcdUnitActive: null,
        files: [
          { path: `${M}/etcd.yaml`, mode: 0o600, sha256: 'a'.repeat(64) },
          { path: `${M}/kube-apiserver.yaml`, mode: 0o600, sha256: 'b'.repeat(64) },
          { path: `${P}/etcd.yaml`, mode: 0o600, sha256: null },
        ],
      })),
      ...E.map((n) => ({
        name: n.name,
        nodeId: n.id,
        address: n.address,
        roles: n.roles,
        etcdDataDir: '/var/lib/etcd-ext',
        etcdUnitActive: false,
        files: [
          { path: ENV, mode: 0o644, sha256: 'c'.repeat(64) },
          { path: UNIT, mode: 0o644, sha256: 'd'.repeat(64) },
        ],
      })),
    ],
  };
  const stateContent = (nodeName: string, path: string): Buffer | null => {
    const n = NODES.find((x) => x.name === nodeName)!;
    if (path === `${M}/etcd.yaml`) return Buffer.from(stackedEtcd(n));
    if (path === `${M}/kube-apiserver.yaml`) return Buffer.from(fixture('kube-apiserver.yaml'));
    if (path === ENV) return Buffer.from(envOf(n, '/var/lib/etcd-ext-old'));
    if (path === UNIT) return Buffer.from(renderEtcdUnit('/usr/local/bin/etcd'));
    return null;
  };
  const snapshot = {
    id: '00000000-0000-4000-8000-0000000000aa',
    clusterId: 'c1',
    createdAt: '2026-01-03T00:00:00.000Z',
    size: 4096,
    sha256: 'e'.repeat(64),
    revision: 42,
    totalKeys: 300,
  };
  const deps = {
    inventory: {
      get: () => cluster,
      node: (_c: string, id: string) => NODES.find((n) => n.id === id)!,
      upsertNode: async () => undefined,
    },
    ops: {
      run: async (_c: string, nodeId: string, script: string, args: string[]) => {
        if (script !== 'collect-files.sh') throw new Error(`nothing runs while planning (${script})`);
        const mine = files[nodeId] ?? {};
        const sep = args.indexOf('--');
        const paths = sep < 0 ? args : args.slice(0, sep);
        const dirs = sep < 0 ? [] : args.slice(sep + 1);
        const lines = paths.map((p) => `KES_FILE=${p}|600|${mine[p] ? Buffer.from(mine[p]).toString('base64') : '-'}`);
        for (const d of dirs) lines.push(`KES_DIR=${d}|1`);
        if (mine[UNIT]) lines.push('KES_UNIT_ACTIVE=active');
        return { code: 0, stdout: lines.join('\n'), stderr: '' };
      },
      etcdctl: async (_c: string, _n: string, _urls: string[], args: string[]) => {
        if (args[0] === 'member' && args[1] === 'list') return memberList();
        if (args[0] === 'get') return JSON.stringify({ header: { revision: 42 }, count: 300 });
        throw new Error(`nothing changes while planning (etcdctl ${args.join(' ')})`);
      },
      stackedTls: () => stackedEtcdTls('/etc/kubernetes/pki/etcd'),
      discover: async (_c: string, nodeId: string) => ({
        hostname: NODES.find((n) => n.id === nodeId)!.name,
        tools: { etcd: '/usr/local/bin/etcd', etcdctl: '/usr/local/bin/etcdctl', etcdutl: '/usr/local/bin/etcdutl' },
        versions: { etcd: '3.6.16', etcdctl: '3.6.16', etcdutl: '3.6.16' },
      }),
      kubeGet: async (_c: string, _n: string, path: string) =>
        path === KUBEADM_CONFIG_API_PATH
          ? {
              status: 200,
              body: JSON.stringify({
                apiVersion: 'v1',
                kind: 'ConfigMap',
                metadata: { name: 'kubeadm-config', namespace: 'kube-system', resourceVersion: '1' },
                data: { ClusterConfiguration: CC },
              }),
            }
          : { status: 404, body: '{}' },
    },
    states: {
      manifest: async () => state,
      load: async () => ({ manifest: state, content: stateContent }),
    },
    snapshots: { get: async () => snapshot },
  } as unknown as EtcdDeps;
  const runner = new JobRunner({ history: {} as JobHistory });
  const jobs = { plan: (def: never, ctx: never) => runner.plan(def, ctx) } as unknown as JobService;
  const tools = { list: async () => [{ name: 'etcd-v3.6.16-linux-amd64.tar.gz', version: '3.6.16' }] } as ToolCache;
  const service = new EtcdService(deps, jobs, tools, '/nonexistent');
  return {
    plan: (req: JobRequest) => service.plan('c1', req),
    /** A member removed earlier: etcd no longer lists it and the apiservers no longer name it. */
    dropMember: (name: string) => {
      external = E.filter((n) => n.name !== name);
      const urls = external.map((n) => `https://${n.address}:2379`).join(',');
      for (const m of [M1, M2])
        files[m.id][`${M}/kube-apiserver.yaml`] = files[m.id][`${M}/kube-apiserver.yaml`].replace(EXT_URLS, urls);
    },
  };
}

const items = (rec: JobRecord, path: string) => rec.plan.find((p) => p.path === path)?.items ?? [];
const commandsOf = (rec: JobRecord, path: string) =>
  items(rec, path).flatMap((i) => (i.kind === 'command' ? [`${i.node}: ${i.command}`] : []));
const filesOf = (rec: JobRecord, path: string) =>
  items(rec, path).flatMap((i) => (i.kind === 'file' ? [`${i.node}:${i.path}`] : []));
const sentenceIds = (rec: JobRecord) => planSentences(rec).map((s) => s.id);
const TLS =
  '/etc/kubernetes/pki/etcd/ca.crt /etc/kubernetes/pki/etcd/healthcheck-client.crt /etc/kubernetes/pki/etcd/healthcheck-client.key';

describe('real plans of every job kind', () => {
  it('member-remove: etcdctl commands on the master, the member ID, apiserver diffs, retire on the node', async () => {
    const rec = await fakeCluster('external-up').plan({ kind: 'member-remove', nodeId: 'id-e3' });
    const rest = 'https://198.18.0.7:2379,https://198.18.0.8:2379';
    expect(commandsOf(rec, 'check')).toEqual([
      `m1: bash etcdctl.sh ${EXT_URLS} ${TLS} member list -w json`,
      `m1: bash etcdctl.sh ${rest} ${TLS} endpoint health -w json`,
    ]);
    expect(commandsOf(rec, 'remove')).toEqual([`m1: bash etcdctl.sh ${rest} ${TLS} member remove 1002`]);
    expect(filesOf(rec, 'rewire')).toEqual([`m1:${M}/kube-apiserver.yaml`, `m2:${M}/kube-apiserver.yaml`]);
    const diff = items(rec, 'rewire').find((i) => i.kind === 'file')!;
    expect(diff.kind === 'file' && diff.diff).toMatch(
      /^- {4}- --etcd-servers=https:\/\/198\.18\.0\.7:2379,https:\/\/198\.18\.0\.8:2379,https:\/\/198\.18\.0\.9:2379$/m,
    );
    expect(diff.kind === 'file' && diff.diff).toMatch(
      /^\+ {4}- --etcd-servers=https:\/\/198\.18\.0\.7:2379,https:\/\/198\.18\.0\.8:2379$/m,
    );
    expect(commandsOf(rec, 'retire')).toEqual([
      'e3: bash systemd-unit.sh stop etcd',
      'e3: bash systemd-unit.sh disable etcd',
      'e3: bash move-aside.sh /var/lib/etcd-ext',
    ]);
    expect(planCounts(rec.plan)).toMatchObject({ steps: 4, nodes: 3, commands: 6, files: 2, runTime: 0 });
    expect(planCounts(rec.plan).nodeNames).toEqual(['e3', 'm1', 'm2']);
    // destructive, no state saved, the apiservers are restarted one at a time (not stopped together)
    expect(sentenceIds(rec)).toEqual(['destructive', 'etcd-stop']);
    expect(planSentences(rec)[0].text).toContain('cannot simply be undone');
  });

  it('member-add: data dir, certificates uploaded, member add, /etc/default/etcd and unit diffs, promote, rewire', async () => {
    const c = fakeCluster('external-up');
    c.dropMember('e3');
    const rec = await c.plan({ kind: 'member-add', nodeId: 'id-e3' });
    const prepare = commandsOf(rec, 'prepare');
    expect(prepare[0]).toMatch(/^e3: bash prepare-external\.sh \/var\/lib\/etcd-kes-\d{8}-\d{6}-[0-9a-f]{4}$/);
    expect(prepare.slice(1)).toEqual([
      `m1: bash etcdctl.sh https://198.18.0.7:2379,https://198.18.0.8:2379 ${TLS} member add e3 --peer-urls=https://198.18.0.9:2380 --learner`,
      'e3: bash systemd-unit.sh enable etcd',
      'e3: bash systemd-unit.sh start etcd',
    ]);
    const uploads = items(rec, 'prepare').flatMap((i) => (i.kind === 'upload' ? [i.to] : []));
    expect(uploads).toHaveLength(7);
    expect(uploads).toContain('/etc/etcd/pki/server.key');
    // e3 keeps the unit it had (same etcd binary): no diff, a note says so
    expect(filesOf(rec, 'prepare')).toEqual([`e3:${ENV}`]);
    expect(items(rec, 'prepare')).toContainEqual({ kind: 'note', text: `${UNIT} on e3 stays as it is.` });
    const env = items(rec, 'prepare').find((i) => i.kind === 'file' && i.path === ENV)!;
    const dataDir = prepare[0].split(' ').pop()!;
    expect(env.kind === 'file' && env.diff).toContain(`+ETCD_DATA_DIR="${dataDir}"`);
    expect(env.kind === 'file' && env.diff).toContain('ETCD_INITIAL_CLUSTER_STATE="existing"');
    expect(commandsOf(rec, 'promote')[0]).toContain('member promote');
    // the apiservers gain e3
    expect(filesOf(rec, 'rewire')).toEqual([`m1:${M}/kube-apiserver.yaml`, `m2:${M}/kube-apiserver.yaml`]);
    expect(planCounts(rec.plan)).toMatchObject({ steps: 4, nodes: 3, commands: 6, files: 10, uploads: 7, runTime: 0 });
    expect(rec.destructive).toBe(false);
    expect(sentenceIds(rec)).toEqual(['not-run']);
  });

  it('restore-state: stops and starts per master, file diffs per node, external units, state saved first', async () => {
    const rec = await fakeCluster('external-up').plan({
      kind: 'restore-state',
      stateId: '00000000-0000-4000-8000-000000000001',
    });
    expect(commandsOf(rec, 'stop')).toEqual([
      'm1: bash static-pod.sh park kube-apiserver secure-port',
      'm1: bash static-pod.sh park etcd 2379,2380',
      'm2: bash static-pod.sh park kube-apiserver secure-port',
      'm2: bash static-pod.sh park etcd 2379,2380',
    ]);
    // masters: etcd.yaml back into the manifests (its parked copy gone), the apiserver back to the stacked etcd
    expect(filesOf(rec, 'files')).toEqual([
      `m1:${M}/etcd.yaml`,
      `m1:${M}/kube-apiserver.yaml`,
      `m1:${P}/etcd.yaml`,
      `m2:${M}/etcd.yaml`,
      `m2:${M}/kube-apiserver.yaml`,
      `m2:${P}/etcd.yaml`,
      `e1:${ENV}`,
      `e2:${ENV}`,
      `e3:${ENV}`,
    ]);
    expect(commandsOf(rec, 'files')).toEqual(E.map((n) => `${n.name}: bash systemd-unit.sh stop etcd`));
    expect(commandsOf(rec, 'start-etcd')).toEqual([
      'm1: bash static-pod.sh unpark etcd 2379,2380',
      'm2: bash static-pod.sh unpark etcd 2379,2380',
    ]);
    expect(commandsOf(rec, 'start-apiservers')).toHaveLength(2);
    const c = planCounts(rec.plan);
    // check, save-current and refresh only read; kubeadm-config already says /var/lib/etcd
    expect(c).toMatchObject({ nodes: 5, commands: 11, files: 9, runTime: 4 });
    const parked = items(rec, 'files').find((i) => i.kind === 'file' && i.path === `${P}/etcd.yaml`)!;
    expect(parked.kind === 'file' && parked.diff).toMatch(/^- {4}- --data-dir=\/var\/lib\/etcd$/m);
    expect(sentenceIds(rec)).toEqual(['destructive', 'saves-state', 'apiservers-stop', 'etcd-stop']);
    expect(planSentences(rec)[0].text).not.toContain('cannot simply be undone');
  });

  it('restore-embedded, switch, restore-external: counts match their commands, diffs and uploads', async () => {
    const emb = fakeCluster('embedded-up');
    const restore = await emb.plan({ kind: 'restore-embedded', snapshotId: '00000000-0000-4000-8000-0000000000aa' });
    const r = planCounts(restore.plan);
    expect(r.nodeNames).toEqual(['m1', 'm2']);
    expect(r.uploads).toBe(2);
    expect(r.commands).toBe(restore.plan.flatMap((p) => p.items).filter((i) => i.kind === 'command').length);
    expect(r.commands).toBeGreaterThanOrEqual(2 * 5); // park ×2, restore-member, unpark ×2 per master
    expect(sentenceIds(restore)).toEqual(['destructive', 'saves-state', 'apiservers-stop', 'etcd-stop']);

    const sw = await emb.plan({
      kind: 'switch',
      direction: 'to-external',
      keepExternalRunning: false,
      data: 'fresh-snapshot',
    });
    const s = planCounts(sw.plan);
    // nodes: masters (stop, rewire, retire) and every external member (stop, /etc/default/etcd)
    expect(s.nodeNames).toEqual(['e1', 'e2', 'e3', 'm1', 'm2']);
    expect(filesOf(sw, 'restore-external')).toEqual(E.map((n) => `${n.name}:${ENV}`));
    expect(sentenceIds(sw)).toEqual(['destructive', 'saves-state', 'apiservers-stop', 'etcd-stop']);

    const ext = await fakeCluster('external-up').plan({
      kind: 'restore-external',
      snapshotId: '00000000-0000-4000-8000-0000000000aa',
    });
    expect(planCounts(ext.plan).nodeNames).toEqual(expect.arrayContaining(['e1', 'e2', 'e3']));
    expect(sentenceIds(ext)).toContain('destructive');
  });

  it('jobs that neither save a state nor stop anything say neither', async () => {
    const c = fakeCluster('embedded-up');
    for (const req of [
      { kind: 'snapshot', note: '', source: 'in-use' },
      { kind: 'capture-state', note: '' },
      { kind: 'external-unit', nodeIds: ['id-e1'], action: 'start' },
      { kind: 'restart-runtime', nodeIds: ['id-w1'] },
      { kind: 'drill', namespaces: ['demo'], allNamespaces: false, kinds: ['pods'] },
    ] as JobRequest[]) {
      const rec = await c.plan(req);
      const ids = sentenceIds(rec);
      expect(ids, req.kind).not.toContain('saves-state');
      expect(ids, req.kind).not.toContain('apiservers-stop');
      expect(ids[0], req.kind).toBe(rec.destructive ? 'destructive' : 'not-run');
      const n = planCounts(rec.plan);
      expect(n.steps, req.kind).toBe(rec.plan.length);
    }
    const snap = await c.plan({ kind: 'snapshot', note: '', source: 'in-use' });
    expect(planCounts(snap.plan)).toMatchObject({ commands: 0, files: 0, runTime: 1 });
    const unit = await c.plan({ kind: 'external-unit', nodeIds: ['id-e1'], action: 'stop' });
    expect(planCounts(unit.plan)).toMatchObject({ nodes: 1, commands: 1 });
    expect(sentenceIds(unit)).toEqual(['destructive', 'etcd-stop']);
    const drill = await c.plan({ kind: 'drill', namespaces: ['demo'], allNamespaces: false, kinds: ['pods'] });
    expect(planCounts(drill.plan).runTimeNodes).toEqual(['a ready master']);
  });

  it('reset-node and teardown-cluster: the nodes they act on are counted', async () => {
    const c = fakeCluster('embedded-up');
    const reset = await c.plan({ kind: 'reset-node', nodeId: 'id-m2' });
    expect(planCounts(reset.plan).nodeNames).toEqual(expect.arrayContaining(['m2', 'lb']));
    const teardown = await c.plan({ kind: 'teardown-cluster' });
    expect(planCounts(teardown.plan).nodeNames).toEqual(expect.arrayContaining(['m1', 'm2', 'w1']));
    for (const rec of [reset, teardown]) expect(sentenceIds(rec)).not.toContain('saves-state');
    // the load balancer is mentioned only when the plan changes it: a worker's reset leaves it alone
    expect(jobNote(reset)).toContain('the load balancer is updated');
    const worker = await c.plan({ kind: 'reset-node', nodeId: 'id-w1' });
    expect(jobNote(worker)).not.toContain('load balancer');
    expect(jobNote(worker)).toContain('kubeadm reset runs on it and its Node object is deleted');
    expect(jobNote(teardown)).toContain('the load balancer is removed');
  });

  it('every command shown is quoted by the one quoting function', async () => {
    const rec = await fakeCluster('external-up').plan({ kind: 'member-remove', nodeId: 'id-e3' });
    for (const i of rec.plan.flatMap((p) => p.items))
      if (i.kind === 'command')
        for (const word of i.command.split(' ').filter((w) => !w.startsWith('<') && !w.endsWith('>')))
          expect(shQuote(word)).toBe(word);
  });
});
