// Intent: the external etcd views follow the facts — which etcd is active per node, the member
// counts allowed, masters blocked while their stacked member runs, which members may be removed
// or added back, and the last known unit state from the live member list or the job history.
import { describe, expect, it } from 'vitest';
import type { Cluster, ClusterFacts, ClusterNode, MasterFact } from '@shared/domain';
import type { HealthReport, MemberHealth } from '@shared/health';
import type { JobSummary } from '@shared/jobs';
import {
  addBackCandidates,
  checkSize,
  etcdUse,
  externalNodes,
  externalTab,
  externalUseBadge,
  provisionedIds,
  switchLabel,
  isExternalMember,
  isQuorumLoss,
  membersWhileSilent,
  latestSnapshot,
  provisionCandidates,
  switchDirection,
  unitStates,
} from './external';
import type { SnapshotMeta } from '@shared/vault';

const node = (name: string, n: number, roles: ClusterNode['roles']): ClusterNode => ({
  id: `id-${name}`,
  name,
  address: `198.18.0.${n}`,
  port: 22,
  user: 'root',
  roles,
  auth: { method: 'agent' },
  jumpNodeId: null,
});

const master = (n: ClusterNode, manifest: MasterFact['etcdManifest'], servers: string[]): MasterFact => ({
  nodeId: n.id,
  name: n.name,
  hostname: n.name,
  etcdPkiDir: '/etc/kubernetes/pki/etcd',
  etcdServers: servers,
  etcdDataDir: '/var/lib/etcd',
  etcdManifest: manifest,
  tools: { etcd: null, etcdctl: null, etcdutl: null },
  versions: { etcd: null, etcdctl: null, etcdutl: null },
  problems: [],
});

const m1 = node('m1', 3, ['master', 'etcd']);
const s1 = node('s1', 6, ['etcd']);
const s2 = node('s2', 7, ['etcd']);
const lb = node('lb', 2, ['lb', 'etcd']);
const w1 = node('w1', 9, ['worker']);

const provisioned = (...nodes: ClusterNode[]) =>
  Object.fromEntries(
    nodes.map((n) => [n.id, { provisionedAt: '2026-01-01T00:00:00Z', version: '3.4.23', dataDir: '/var/lib/etcd' }]),
  );

function cluster(mode: 'embedded' | 'external' | 'bare'): Cluster {
  const servers =
    mode === 'external' ? [s1, s2, lb].map((n) => `https://${n.address}:2379`) : ['https://127.0.0.1:2379'];
  const facts = {
    masters: [master(m1, mode === 'external' ? 'parked' : 'active', servers)],
    members: [],
    mode: mode === 'external' ? 'external-up' : 'embedded-up',
    externalEtcd: mode === 'bare' ? {} : provisioned(s1, s2, lb),
  } as Partial<ClusterFacts> as ClusterFacts;
  return { id: 'c', name: 'lab', nodes: [m1, s1, s2, lb, w1], createdAt: '', facts, creation: null };
}

const member = (n: ClusterNode, extra: Partial<MemberHealth> = {}): MemberHealth => ({
  id: `m-${n.name}`,
  name: n.name,
  peerUrls: [`https://${n.address}:2380`],
  clientUrls: [`https://${n.address}:2379`],
  isLearner: false,
  reachable: true,
  isLeader: false,
  version: '3.4.23',
  dbSize: 1,
  dbSizeInUse: 1,
  raftIndex: 1,
  raftTerm: 1,
  revision: 1,
  alarms: [],
  ...extra,
});

const report = (members: MemberHealth[]): HealthReport =>
  ({
    members,
    mode: 'external-up',
    modeDetails: [],
    apiservers: [],
    pods: [],
    errors: [],
  }) as Partial<HealthReport> as HealthReport;

const job = (kind: string, title: string, endedAt: string, steps: JobSummary['steps'] = []): JobSummary => ({
  id: `${kind}-${endedAt}`,
  kind,
  title,
  clusterId: 'c',
  clusterName: 'lab',
  destructive: false,
  status: 'succeeded',
  createdAt: endedAt,
  endedAt,
  steps,
});
const step = (path: string, nodeName: string | undefined, status: JobSummary['steps'][number]['status'] = 'done') => ({
  path,
  title: path,
  depth: 0,
  status,
  ...(nodeName ? { node: nodeName } : {}),
});

describe('external etcd rules', () => {
  it('labels the stacked members active in embedded mode and the external nodes active in external mode', () => {
    expect(etcdUse(cluster('embedded'))).toEqual({
      'id-m1': 'active',
      'id-s1': 'parked',
      'id-s2': 'parked',
      'id-lb': 'parked',
    });
    expect(etcdUse(cluster('external'))).toEqual({
      'id-m1': 'parked',
      'id-s1': 'active',
      'id-s2': 'active',
      'id-lb': 'active',
    });
    expect(externalNodes(cluster('external')).map((n) => n.name)).toEqual(['lb', 's1', 's2']);
    expect(switchDirection('embedded-up')).toBe('to-external');
    expect(switchDirection('external-up')).toBe('to-embedded');
    expect(switchDirection('mixed')).toBeNull();
    expect(switchLabel('external-up')).toBe('Switch back to embedded etcd…');
    expect(switchLabel('down (configured for external)')).toBe('Switch back to embedded etcd…');
    expect(switchLabel('embedded-up', true)).toBe('Switch to external…');
    expect(externalUseBadge('external-up')).toEqual({ text: 'in use by the apiservers', tone: 'ok' });
    expect(externalUseBadge('down (configured for external)').tone).toBe('danger');
    expect(externalUseBadge('embedded-up').text).toBe('not in use');
  });

  it('before anything is provisioned: no etcd label on etcd-role nodes, and the tab offers only Provision…', () => {
    const bare = cluster('bare');
    expect(etcdUse(bare)).toEqual({ 'id-m1': 'active' });
    expect(provisionedIds(bare).size).toBe(0);
    expect(externalTab(bare)).toMatchObject({
      provisioned: [],
      showActions: false,
      provisionLabel: 'Provision…',
    });
    expect(externalTab(bare).candidates.map((n) => n.name)).toEqual(['lb', 's1', 's2']);
    // A provision job of the history set up s1 (its step done) and failed on s2: s1 only.
    const history = [
      {
        ...job('provision-external', 'Provision', '2026-01-01T00:00:01Z', [
          step('nodes', undefined, 'failed'),
          step('nodes/s1', 's1'),
          step('nodes/s2', 's2', 'failed'),
        ]),
        status: 'failed' as const,
      },
    ];
    expect([...provisionedIds(bare, history)]).toEqual(['id-s1']);
    expect(etcdUse(bare, history)).toEqual({ 'id-m1': 'active', 'id-s1': 'parked' });
    expect(externalTab(bare, history)).toMatchObject({ showActions: true, provisionLabel: 'Provision again…' });
    // A member of the etcd in use, or a node an apiserver names, is provisioned whatever the record says.
    const inUse = {
      ...bare,
      facts: {
        ...bare.facts!,
        members: [{ name: 's2', id: '1', peerUrls: [], clientUrls: [], nodeId: 'id-s2', kind: 'external' as const }],
      },
    };
    expect([...provisionedIds(inUse)]).toEqual(['id-s2']);
    const named = { ...cluster('external'), facts: { ...cluster('external').facts!, externalEtcd: {} } };
    expect(etcdUse(named)).toMatchObject({ 'id-s1': 'active', 'id-lb': 'active' });
  });

  it('recommends 1, 3 or 5 members, allows 2 or 4 with the quorum spelled out, and refuses more', () => {
    expect([0, 1, 2, 3, 4, 5, 6].map((n) => checkSize(n).ok)).toEqual([false, true, true, true, true, true, false]);
    expect(checkSize(2)).toMatchObject({ tone: 'warn' });
    expect(checkSize(2).message).toMatch(
      /2 members need 2 for quorum: when any one of them stops, the external etcd stops serving/,
    );
    expect(checkSize(4).message).toMatch(
      /4 members need 3 for quorum: they tolerate 1 failed member, no more than 3 would/,
    );
    expect(checkSize(3).tone).toBeNull();
    expect(checkSize(7).tone).toBe('danger');
  });

  it('blocks masters whose stacked member is active, and warns about ports once it is parked', () => {
    const embedded = provisionCandidates(cluster('embedded')).find((c) => c.node.name === 'm1')!;
    expect(embedded.blocked).toMatch(/2379\/2380/);
    const external = provisionCandidates(cluster('external')).find((c) => c.node.name === 'm1')!;
    expect(external.blocked).toBeNull();
    expect(external.warning).toMatch(/2379\/2380/);
    expect(provisionCandidates(cluster('external')).find((c) => c.node.name === 'w1')!.blocked).toBeNull();
  });

  it('removes only external members and offers only missing external nodes back', () => {
    const c = cluster('external');
    expect(isExternalMember(member(s1), c)).toBe(true);
    expect(isExternalMember(member(m1), c)).toBe(false);
    expect(addBackCandidates(c, report([member(s1), member(lb)])).map((n) => n.name)).toEqual(['s2']);
    // The stacked cluster is shown: nothing to add back to it.
    expect(addBackCandidates(c, report([member(m1)]))).toEqual([]);
  });

  it('knows the units from the live member list, else from the last job that changed them', () => {
    const c = cluster('embedded');
    const nodes = externalNodes(c);
    const history = [
      job('provision-external', 'Provision', '2026-01-01T00:00:01Z', [
        step('nodes/s1', 's1'),
        step('nodes/s2', 's2'),
        step('nodes/lb', 'lb'),
        step('start', undefined, 'skipped'),
      ]),
      job('external-unit', 'Start etcd on s1', '2026-01-01T00:00:02Z', [step('s1', 's1')]),
    ];
    const u = unitStates(nodes, null, history);
    expect([u['id-s1'].state, u['id-s2'].state, u['id-lb'].state]).toEqual(['running', 'stopped', 'stopped']);
    const live = unitStates(nodes, report([member(s2, { reachable: false }), member(lb, { clientUrls: [] })]), history);
    expect([live['id-s1'].state, live['id-s2'].state, live['id-lb'].state]).toEqual([
      'running',
      'unreachable',
      'not started',
    ]);
    const removed = unitStates(nodes, null, [
      ...history,
      job('member-remove', 'Remove s1', '2026-01-01T00:00:03Z', [step('check', undefined), step('retire', 's1')]),
    ]);
    expect(removed['id-s1'].state).toBe('stopped');
  });

  it('takes the etcd unit state systemd reports on the node over what the job history implies', () => {
    const c = cluster('external');
    const nodes = externalNodes(c);
    // the history says "stopped" (a switch back), but a state brought back started them again
    const history = [
      job('switch-to-embedded', 'Switch back', '2026-01-01T00:00:01Z', [step('stop-external', undefined)]),
    ];
    expect(unitStates(nodes, null, history)['id-s1'].state).toBe('stopped');
    const r = {
      ...report([]),
      services: [
        { node: 's1', unit: 'etcd', state: 'active' },
        { node: 's2', unit: 'etcd', state: 'inactive' },
        { node: 'lb', unit: 'etcd', state: 'unknown' },
        { node: 'lb', unit: 'haproxy', state: 'active' },
      ],
    };
    const u = unitStates(nodes, r, history);
    expect([u['id-s1'].state, u['id-s2'].state, u['id-lb'].state]).toEqual(['running', 'stopped', 'stopped']);
    expect(u['id-s1'].source).toBe('live: the etcd unit is active');
  });

  it('shows the members last seen, else the ones recorded, while etcd cannot list them (lost quorum)', () => {
    const c = cluster('external');
    c.facts = {
      ...c.facts!,
      initializedAt: '2026-01-01T00:00:00Z',
      members: [s1, s2].map((n) => ({
        name: n.name,
        id: `id-of-${n.name}`,
        peerUrls: [`https://${n.address}:2380`],
        clientUrls: [`https://${n.address}:2379`],
        nodeId: n.id,
        kind: 'external' as const,
      })),
    };
    // etcd answered: nothing to stand in for it
    expect(membersWhileSilent(report([member(s1)]), null, c.facts)).toBeNull();
    // never seen in this window: the recorded members, unreachable
    const recorded = membersWhileSilent(report([]), null, c.facts)!;
    expect(recorded.from).toBe('facts');
    expect(recorded.members.map((m) => [m.name, m.id, m.reachable, m.isLeader])).toEqual([
      ['s1', 'id-of-s1', false, false],
      ['s2', 'id-of-s2', false, false],
    ]);
    // seen earlier: that list wins
    const seen = membersWhileSilent(report([]), { at: 't', members: [member(lb, { isLeader: true })] }, c.facts)!;
    expect(seen.from).toBe('seen');
    expect(seen.members.map((m) => [m.name, m.reachable, m.isLeader])).toEqual([['lb', false, false]]);
    // nothing known at all
    expect(membersWhileSilent(report([]), null, { ...c.facts, members: [] })).toBeNull();
  });

  it('finds the newest snapshot of the cluster and recognises a loss of quorum', () => {
    const snap = (id: string, createdAt: string, clusterId: string | null) =>
      ({ id, createdAt, source: { clusterId } }) as Partial<SnapshotMeta> as SnapshotMeta;
    const list = [
      snap('a', '2026-01-01T00:00:00Z', 'c'),
      snap('b', '2026-01-02T00:00:00Z', 'c'),
      snap('x', '2026-01-03T00:00:00Z', null),
    ];
    expect(latestSnapshot(list, 'c')?.id).toBe('b');
    expect(isQuorumLoss('QUORUM_LOST')).toBe(true);
    expect(isQuorumLoss('check: … (the chicken-and-egg of a sick cluster) …')).toBe(true);
    expect(isQuorumLoss('NOT_A_MEMBER: s1 is not a member')).toBe(false);
  });
});
