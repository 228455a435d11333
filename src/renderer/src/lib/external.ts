// Pure rules of the external etcd views: which nodes make an external cluster, which etcd the
// apiservers use (node map labels), how many members to allow, which members may be removed or
// added back, and the last known state of each external etcd unit. No state, no API calls.
import type { Cluster, ClusterNode, ModeName } from '@shared/domain';
import type { HealthReport, MemberHealth } from '@shared/health';
import type { JobSummary } from '@shared/jobs';
import type { SnapshotMeta } from '@shared/vault';
import { evenMembersWarning } from '@shared/quorum';

/** Member counts the app provisions (odd, so each size tolerates one more failure). */
export const EXTERNAL_SIZES = [1, 3, 5] as const;
export const ETCD_PORTS = '2379/2380';

/** Host of a URL (`https://198.18.0.5:2379` → `198.18.0.5`), brackets of IPv6 removed. */
export function urlHost(url: string): string | null {
  try {
    return new URL(url).hostname.replace(/^\[|\]$/g, '').toLowerCase();
  } catch {
    return null;
  }
}

const bare = (address: string) => address.toLowerCase().replace(/^\[|\]$/g, '');

/** Ids of the masters: nodes with the master role and masters found by initialize. */
export function masterIds(c: Cluster): Set<string> {
  const ids = new Set(c.nodes.filter((n) => n.roles.includes('master')).map((n) => n.id));
  for (const m of c.facts?.masters ?? []) ids.add(m.nodeId);
  return ids;
}

/** Nodes of the external etcd tier: role etcd and not a master. */
export function externalNodes(c: Cluster): ClusterNode[] {
  const masters = masterIds(c);
  return c.nodes
    .filter((n) => n.roles.includes('etcd') && !masters.has(n.id))
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** The client URL an external member serves on (what `--etcd-servers` lists). */
export function clientUrlOf(n: ClusterNode): string {
  const host = n.address.includes(':') && !n.address.startsWith('[') ? `[${n.address}]` : n.address;
  return `https://${host}:2379`;
}

export type EtcdUse = 'active' | 'parked';

/** Hosts some apiserver's `--etcd-servers` names (facts of the last initialize or job refresh). */
function usedHosts(c: Cluster): Set<string | null> {
  return new Set((c.facts?.masters ?? []).flatMap((m) => (m.etcdServers ?? []).map(urlHost)).filter(Boolean));
}

/**
 * External etcd nodes that carry a member the app set up: recorded by the provision job in the
 * facts, a member of the etcd in use, named by an apiserver, or set up by a provision job of the
 * history (its `nodes/<name>` step done). Every other etcd-role node is only a candidate.
 */
export function provisionedIds(c: Cluster, history: JobSummary[] = []): Set<string> {
  const facts = c.facts;
  const out = new Set<string>();
  if (!facts) return out;
  const used = usedHosts(c);
  const members = new Set(facts.members.map((m) => m.nodeId).filter(Boolean));
  const setUp = new Set(
    history
      .filter((j) => j.kind === 'provision-external')
      .flatMap((j) => j.steps.filter((s) => s.status === 'done' && /^nodes\/[^/]+$/.test(s.path)).map((s) => s.node)),
  );
  for (const n of externalNodes(c))
    if (facts.externalEtcd?.[n.id] || members.has(n.id) || used.has(bare(n.address)) || setUp.has(n.name))
      out.add(n.id);
  return out;
}

/**
 * Which etcd serves the apiservers, per node, from the facts (re-read by initialize and at the
 * end of every job that changes the cluster): a master's stacked member is active while its
 * etcd.yaml is in the manifests folder and parked when moved aside; a provisioned external node
 * is active when some apiserver's `--etcd-servers` names it, parked otherwise. An etcd-role node
 * with nothing provisioned on it gets no label (there is no etcd there to park).
 */
export function etcdUse(c: Cluster, history: JobSummary[] = []): Record<string, EtcdUse> {
  const out: Record<string, EtcdUse> = {};
  const facts = c.facts;
  if (!facts) return out;
  for (const m of facts.masters) {
    if (m.etcdManifest === 'active') out[m.nodeId] = 'active';
    else if (m.etcdManifest === 'parked') out[m.nodeId] = 'parked';
  }
  const used = usedHosts(c);
  const provisioned = provisionedIds(c, history);
  for (const n of externalNodes(c)) {
    if (used.has(bare(n.address))) out[n.id] = 'active';
    else if (provisioned.has(n.id)) out[n.id] = 'parked';
  }
  return out;
}

/** What the External etcd tab offers: before anything is provisioned, only Provision… and what it means. */
export interface ExternalTab {
  /** Nodes with a member the app set up (the table with unit state, Start/Stop). */
  provisioned: ClusterNode[];
  /** etcd-role nodes with nothing set up yet (candidates for Provision…). */
  candidates: ClusterNode[];
  /** Restore onto external, the switch, the member table: only once something is provisioned. */
  showActions: boolean;
  provisionLabel: 'Provision…' | 'Provision again…';
}

export function externalTab(c: Cluster, history: JobSummary[] = []): ExternalTab {
  const ids = provisionedIds(c, history);
  const nodes = externalNodes(c);
  const provisioned = nodes.filter((n) => ids.has(n.id));
  return {
    provisioned,
    candidates: nodes.filter((n) => !ids.has(n.id)),
    showActions: provisioned.length > 0,
    provisionLabel: provisioned.length ? 'Provision again…' : 'Provision…',
  };
}

/** Which tier serves the apiservers according to the mode. */
export function activeTier(mode: ModeName | null): 'embedded' | 'external' | null {
  return mode === 'embedded-up' ? 'embedded' : mode === 'external-up' ? 'external' : null;
}

/** Which etcd the apiservers are configured for, up or down. */
export function configuredTier(mode: ModeName | null): 'embedded' | 'external' | null {
  if (mode === 'embedded-up' || mode === 'down (configured for embedded)') return 'embedded';
  if (mode === 'external-up' || mode === 'down (configured for external)') return 'external';
  return null;
}

/** The switch button's words: back to embedded whenever the apiservers are configured for external. */
export function switchLabel(mode: ModeName | null, short = false): string {
  const back = configuredTier(mode) === 'external';
  if (short) return back ? 'Switch back to embedded…' : 'Switch to external…';
  return back ? 'Switch back to embedded etcd…' : 'Switch to external etcd…';
}

/** The External etcd tab's badge: used by the apiservers (and whether it answers), or not. */
export function externalUseBadge(mode: ModeName | null): { text: string; tone: 'ok' | 'danger' | 'neutral' } {
  if (mode === 'external-up') return { text: 'in use by the apiservers', tone: 'ok' };
  if (mode === 'down (configured for external)') return { text: 'in use by the apiservers — down', tone: 'danger' };
  return { text: 'not in use', tone: 'neutral' };
}

/** The switch the current mode allows. */
export function switchDirection(mode: ModeName | null): 'to-external' | 'to-embedded' | null {
  return mode === 'embedded-up' ? 'to-external' : mode === 'external-up' ? 'to-embedded' : null;
}

export interface SizeCheck {
  ok: boolean;
  tone: 'warn' | 'danger' | null;
  message: string | null;
}

/** 1, 3 or 5 members recommended; 2 or 4 allowed with the quorum spelled out; more than 5 refused. */
export function checkSize(count: number): SizeCheck {
  if (count === 0) return { ok: false, tone: null, message: 'Choose 1, 3 or 5 nodes.' };
  if (count === 1)
    return {
      ok: true,
      tone: 'warn',
      message: 'A single member has no redundancy: fine for a test, not for production.',
    };
  if (count > 5)
    return { ok: false, tone: 'danger', message: 'At most 5 members: larger clusters only slow down writes.' };
  // allowed (the old tool's own example has 2), with the quorum spelled out
  if (count % 2 === 0) return { ok: true, tone: 'warn', message: evenMembersWarning(count) };
  return { ok: true, tone: null, message: null };
}

export interface Candidate {
  node: ClusterNode;
  /** Why it cannot be chosen (a master whose stacked member still runs). */
  blocked: string | null;
  /** Something to know when choosing it. */
  warning: string | null;
}

/** Every inventory node, with masters allowed only once their stacked member is retired. */
export function provisionCandidates(c: Cluster): Candidate[] {
  const masters = masterIds(c);
  const facts = new Map((c.facts?.masters ?? []).map((m) => [m.nodeId, m]));
  const order = (n: ClusterNode) => (masters.has(n.id) ? 1 : 0);
  return [...c.nodes]
    .sort((a, b) => order(a) - order(b) || a.name.localeCompare(b.name))
    .map((node) => {
      if (!masters.has(node.id)) return { node, blocked: null, warning: null };
      const f = facts.get(node.id);
      if (!f || f.etcdManifest === 'active')
        return {
          node,
          blocked: `master: its stacked etcd member is still active on ports ${ETCD_PORTS} — retire it first`,
          warning: null,
        };
      return {
        node,
        blocked: null,
        warning: `master: its stacked member is ${f.etcdManifest}; an external member here takes ports ${ETCD_PORTS}, so the stacked one must stay stopped`,
      };
    });
}

/** The inventory node a member runs on: by peer URL host, else by name. */
export function memberNode(m: MemberHealth, c: Cluster): ClusterNode | undefined {
  const hosts = new Set(m.peerUrls.map(urlHost));
  return c.nodes.find((n) => hosts.has(bare(n.address))) ?? c.nodes.find((n) => n.name === m.name);
}

/** A member outside the masters (the ones a repair may remove). */
export function isExternalMember(m: MemberHealth, c: Cluster): boolean {
  const node = memberNode(m, c);
  return !!node && !masterIds(c).has(node.id);
}

/** External etcd nodes that are not members of the external cluster shown (only when it is shown). */
export function addBackCandidates(c: Cluster, report: HealthReport | null): ClusterNode[] {
  if (!report || !report.members.some((m) => isExternalMember(m, c))) return [];
  const members = new Set(report.members.map((m) => memberNode(m, c)?.id).filter(Boolean));
  return externalNodes(c).filter((n) => !members.has(n.id));
}

/** The newest snapshot taken from this cluster. */
export function latestSnapshot(list: SnapshotMeta[], clusterId: string): SnapshotMeta | undefined {
  return list
    .filter((m) => m.source.clusterId === clusterId)
    .sort((a, b) => Date.parse(b.createdAt) - Date.parse(a.createdAt))[0];
}

/** A refusal for lack of quorum (the API error code, or the explanation in a failed job's error). */
export function isQuorumLoss(codeOrText: string | undefined | null): boolean {
  return !!codeOrText && /QUORUM_LOST|chicken-and-egg|without quorum/i.test(codeOrText);
}

export type UnitState = 'running' | 'stopped' | 'unreachable' | 'not started' | 'unknown';
export interface UnitInfo {
  state: UnitState;
  /** Where this comes from: the live member list, or the last job that changed it. */
  source: string;
}

const nodesOfSteps = (j: JobSummary) => new Set(j.steps.map((s) => s.node).filter((n): n is string => !!n));
const stepDone = (j: JobSummary, id: string) => j.steps.some((s) => s.path === id && s.status === 'done');

/**
 * Last known state of each external node's etcd unit: live from the member list when the
 * external cluster is the one the health report shows, otherwise what the last succeeded job
 * that started or stopped it left behind. `history` is any order; only succeeded jobs count.
 */
export function unitStates(
  nodes: ClusterNode[],
  report: HealthReport | null,
  history: JobSummary[],
): Record<string, UnitInfo> {
  const out: Record<string, UnitInfo> = {};
  for (const n of nodes) out[n.id] = { state: 'unknown', source: 'no job has started it yet' };
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const set = (names: Iterable<string>, state: UnitState, j: JobSummary) => {
    for (const name of names) {
      const n = byName.get(name);
      if (n) out[n.id] = { state, source: `after “${j.title}”` };
    }
  };
  const all = nodes.map((n) => n.name);
  const done = history
    .filter((j) => j.status === 'succeeded')
    .sort((a, b) => (a.endedAt ?? a.createdAt).localeCompare(b.endedAt ?? b.createdAt));
  for (const j of done) {
    switch (j.kind) {
      case 'provision-external':
        set(nodesOfSteps(j), stepDone(j, 'start') ? 'running' : 'stopped', j);
        break;
      case 'external-unit':
        set(nodesOfSteps(j), /^start/i.test(j.title) ? 'running' : 'stopped', j);
        break;
      case 'restore-external':
      case 'switch-to-external':
        set(all, 'running', j);
        break;
      case 'switch-to-embedded':
        if (stepDone(j, 'stop-external')) set(all, 'stopped', j);
        break;
      case 'member-remove':
        set(
          j.steps.filter((s) => s.path === 'retire' && s.node).map((s) => s.node!),
          'stopped',
          j,
        );
        break;
      case 'member-add':
        set(nodesOfSteps(j), 'running', j);
        break;
    }
  }
  if (report) {
    // What systemd says on the node (health reads `systemctl is-active etcd` where the app installed
    // the unit) beats what the job history implies — a unit stopped or started by hand, a state
    // brought back.
    for (const sv of report.services ?? []) {
      const n = byName.get(sv.node);
      if (!n || sv.unit !== 'etcd' || sv.state === 'unknown') continue;
      out[n.id] = {
        state: sv.state === 'active' ? 'running' : 'stopped',
        source: `live: the etcd unit is ${sv.state}`,
      };
    }
    for (const n of nodes) {
      const m = report.members.find((x) => x.peerUrls.some((u) => urlHost(u) === bare(n.address)) || x.name === n.name);
      if (!m) continue;
      const state: UnitState = !m.clientUrls.length ? 'not started' : m.reachable ? 'running' : 'unreachable';
      out[n.id] = { state, source: `live: member ${m.isLearner ? '(learner) ' : ''}of the etcd in use` };
    }
  }
  return out;
}

/**
 * The members to show while etcd cannot answer its member list (lost quorum), so a repair stays
 * possible: the list last seen in this window, else the members the facts recorded (initialize or
 * the re-read at the end of the last job) — all marked unreachable, none the leader. Null when etcd
 * answered, or when nothing is known.
 */
export function membersWhileSilent(
  report: HealthReport | null,
  lastSeen: { at: string; members: MemberHealth[] } | null,
  facts: Cluster['facts'],
): { at: string; from: 'seen' | 'facts'; members: MemberHealth[] } | null {
  if (!report || report.members.length) return null;
  const down = (m: MemberHealth): MemberHealth => ({ ...m, reachable: false, isLeader: false });
  if (lastSeen?.members.length) return { at: lastSeen.at, from: 'seen', members: lastSeen.members.map(down) };
  const recorded = (facts?.members ?? []).filter((m) => m.id);
  if (!facts || !recorded.length) return null;
  return {
    at: facts.initializedAt,
    from: 'facts',
    members: recorded.map((m) =>
      down({
        id: m.id!,
        name: m.name,
        peerUrls: m.peerUrls,
        clientUrls: m.clientUrls,
        isLearner: false,
        reachable: false,
        isLeader: false,
        version: null,
        dbSize: null,
        dbSizeInUse: null,
        raftIndex: null,
        raftTerm: null,
        revision: null,
        alarms: [],
      }),
    ),
  };
}
