// What a plan preview says about a job, derived from the plan itself (never a fixed text per
// kind): the summary counts, and the sentences above the steps, each true for this plan.
import type { PlanEntry, PlanItem } from './jobs';

export interface PlanCounts {
  /** Every step shown (groups included). */
  steps: number;
  /** Distinct nodes the job touches: step nodes and the nodes of its commands, files and uploads. */
  nodes: number;
  nodeNames: string[];
  /** Nodes a plan names by role because the job picks them when it runs ("a ready master"). */
  runTimeNodes: string[];
  /** Commands shown, per node. */
  commands: number;
  /** Distinct files written on nodes (node + path): rewritten (with a diff) or uploaded. */
  files: number;
  /** Of those, uploads (snapshots, certificates…) rather than rewrites shown as a diff. */
  uploads: number;
  /** Steps with no children whose plan shows no command, file or upload (checks, reads, waits). */
  runTime: number;
}

/**
 * Whether a file item's text is a unified diff. Some plans give the whole new file instead (a
 * load balancer config, a kubeadm config: what is on the node now is not read when planned);
 * the preview then says it shows the file as written, not a change of +0 −0.
 */
export function isUnifiedDiff(text: string): boolean {
  return /^(Index: .*\n)?(=+\n)?--- .*\n\+\+\+ /.test(text);
}

const ACTS: PlanItem['kind'][] = ['command', 'file', 'upload'];
const acts = (e: PlanEntry) => e.items.filter((i) => ACTS.includes(i.kind));

/** A node name as the inventory spells them (domain.ts NodeName); anything else is a role ("a ready master"). */
const NODE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export function planCounts(plan: PlanEntry[]): PlanCounts {
  const nodes = new Set<string>();
  const roles = new Set<string>();
  const touch = (n: string) => (NODE_NAME.test(n) ? nodes : roles).add(n);
  const files = new Set<string>();
  let commands = 0;
  let uploads = 0;
  let runTime = 0;
  plan.forEach((e, i) => {
    if (e.node) touch(e.node);
    for (const item of e.items) {
      if (item.kind === 'note') continue;
      touch(item.node);
      if (item.kind === 'command') commands++;
      else {
        const key = `${item.node}\0${item.kind === 'file' ? item.path : item.to}`;
        if (!files.has(key) && item.kind === 'upload') uploads++;
        files.add(key);
      }
    }
    const isGroup = plan[i + 1]?.path.startsWith(`${e.path}/`) ?? false;
    if (!isGroup && acts(e).length === 0) runTime++;
  });
  return {
    steps: plan.length,
    nodes: nodes.size,
    nodeNames: [...nodes].sort(),
    runTimeNodes: [...roles].sort(),
    commands,
    files: files.size,
    uploads,
    runTime,
  };
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** The summary line under the plan's title. */
export function planSummaryText(c: PlanCounts): string {
  return [
    plural(c.steps, 'step'),
    plural(c.nodes, 'node') + (c.runTimeNodes.length ? ` (and ${c.runTimeNodes.join(', ')}, chosen when it runs)` : ''),
    plural(c.commands, 'command'),
    `${plural(c.files, 'file')} written${c.uploads ? ` (${c.uploads} uploaded)` : ''}`,
    // Checks, reads and waits: what they run depends on what they find.
    ...(c.runTime ? [`${plural(c.runTime, 'step')} with no command shown`] : []),
  ].join(' · ');
}

/** The steps that save the current state (the way back). */
export const SAVE_STATE_STEP = /(^|\/)(save-state|save-current)$/;
/** The command that stops an apiserver (files.ts staticPodCommand('park', 'kube-apiserver')). */
const STOPS_APISERVER = /\bstatic-pod\.sh park kube-apiserver\b/;
const STOPS_ETCD = /\bstatic-pod\.sh park etcd\b|\bsystemd-unit\.sh (stop|restart) etcd\b/;

export interface PlanFacts {
  destructive: boolean;
  /** A step saves the current state before any step changes a node. */
  savesStateFirst: boolean;
  /** Nodes whose apiserver the job stops. */
  stopsApiserversOn: string[];
  /** Nodes whose etcd member the job stops (static pod parked or unit stopped/restarted). */
  stopsEtcdOn: string[];
}

export function planFacts(rec: { destructive: boolean; plan: PlanEntry[] }): PlanFacts {
  const save = rec.plan.findIndex((e) => SAVE_STATE_STEP.test(e.path));
  const firstChange = rec.plan.findIndex((e) => e.items.some((i) => i.kind === 'file' || i.kind === 'upload'));
  const commands = rec.plan.flatMap((e) => e.items).filter((i) => i.kind === 'command');
  const on = (re: RegExp) => [...new Set(commands.filter((c) => re.test(c.command)).map((c) => c.node))].sort();
  return {
    destructive: rec.destructive,
    savesStateFirst: save >= 0 && (firstChange < 0 || save < firstChange) && !stopsBefore(rec.plan, save),
    stopsApiserversOn: on(STOPS_APISERVER),
    stopsEtcdOn: on(STOPS_ETCD),
  };
}

/** A stop command in a step before `index`. */
function stopsBefore(plan: PlanEntry[], index: number): boolean {
  return plan
    .slice(0, index)
    .some((e) =>
      e.items.some((i) => i.kind === 'command' && (STOPS_APISERVER.test(i.command) || STOPS_ETCD.test(i.command))),
    );
}

export interface PlanSentence {
  id: 'destructive' | 'saves-state' | 'apiservers-stop' | 'etcd-stop' | 'not-run';
  text: string;
}

const names = (list: string[]) =>
  list.length <= 1 ? list.join('') : `${list.slice(0, -1).join(', ')} and ${list[list.length - 1]}`;

/** The sentences above the steps: each one only when the plan shows it is true. */
export function planSentences(rec: { destructive: boolean; clusterName: string; plan: PlanEntry[] }): PlanSentence[] {
  const f = planFacts(rec);
  const out: PlanSentence[] = [];
  if (f.destructive)
    out.push({
      id: 'destructive',
      text: f.savesStateFirst
        ? `This job changes the cluster ${rec.clusterName}. Read the steps and the file changes below before running it.`
        : `This job changes the cluster ${rec.clusterName} in ways that cannot simply be undone. Read the steps and the file changes below before running it.`,
    });
  else out.push({ id: 'not-run', text: 'Nothing has run yet. Read what the job will do, then run it.' });
  if (f.savesStateFirst)
    out.push({
      id: 'saves-state',
      text: 'The current state is saved first, so it can be brought back (States).',
    });
  if (f.stopsApiserversOn.length)
    out.push({
      id: 'apiservers-stop',
      text: `The apiserver${f.stopsApiserversOn.length === 1 ? '' : 's'} on ${names(f.stopsApiserversOn)} ${f.stopsApiserversOn.length === 1 ? 'is' : 'are'} stopped while it runs: the Kubernetes API through ${f.stopsApiserversOn.length === 1 ? 'it' : 'them'} is unavailable until started again.`,
    });
  if (f.stopsEtcdOn.length)
    out.push({
      id: 'etcd-stop',
      text: `etcd is stopped or restarted on ${names(f.stopsEtcdOn)}.`,
    });
  return out;
}

/**
 * What some Kubernetes jobs do, in words, above their steps; a clause about the load balancer only
 * when the plan has its step (a worker's reset, or a cluster without an LB, leaves it alone).
 */
export function jobNote(rec: { kind: string; plan: PlanEntry[] }): string | undefined {
  const lb = rec.plan.some((e) => /(^|\/)load-balancer$/.test(e.path));
  switch (rec.kind) {
    case 'create-cluster':
      return 'Join new nodes: the master and worker nodes of the inventory that are not in the cluster yet join it; nodes already in the cluster are skipped when the job runs.';
    case 'reset-node':
      return `The node is drained; for a master its etcd member is removed first. Then kubeadm reset runs on it${lb ? ', its Node object is deleted and the load balancer is updated' : ' and its Node object is deleted'}. The node stays in the inventory.`;
    case 'teardown-cluster':
      return `Clean up everything: kubeadm reset runs on every master and worker${lb ? ', and the load balancer is removed' : ''}. The cluster and its workloads are gone afterwards. The inventory keeps the nodes, so the cluster can be created again.`;
    case 'restart-runtime':
      return 'The container runtime restarts on the node; its containers restart with it.';
    default:
      return undefined;
  }
}
