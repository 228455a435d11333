// Pre-flight checks for creating a kubeadm cluster: resources/scripts/preflight.sh runs on every
// node of the spec (through the script runner and the SSH pool, elevated like every script), its
// lines become table rows, and what only the app can see is added: SSH and sudo failures,
// hostnames that clash across nodes, clocks that disagree, an LB port that collides with kubeadm's.
// Every failure carries a fix hint. Read-only on the nodes.
//
// Line format of preflight.sh (one record per line, fields separated by one TAB):
//   preflight 1 | fact NAME VALUE | check NAME ok|warn|fail DETAIL | end preflight
import type { ScriptLibrary } from '../remote/scripts';
import { runScript } from '../remote/scripts';
import type { SshPool } from '../ssh/pool';
import type { SshErrorCode, SshTarget } from '../ssh/types';

import type { PreflightReport, PreflightRow, PreflightStatus } from '@shared/preflight';

export type { PreflightReport, PreflightRow, PreflightStatus };

/** A node of the cluster to be created. `id` is the inventory id when it has one. */
export interface PreflightNode {
  id?: string;
  name: string;
  address: string;
  port: number;
  user: string;
  roles: readonly string[];
}

export type CreateRole = 'lb' | 'master' | 'worker';
const CREATE_ROLES: readonly CreateRole[] = ['lb', 'master', 'worker'];

/** kubeadm's fixed ports (cmd/kubeadm/app/constants): apiserver, etcd client/peer, kubelet, KCM, scheduler. */
export const MASTER_PORTS = [6443, 2379, 2380, 10250, 10257, 10259] as const;
export const WORKER_PORTS = [10250] as const;
export const DEFAULT_LB_PORT = 6443;
const PORT_OWNERS: Record<number, string> = {
  6443: 'kube-apiserver',
  2379: 'etcd (clients)',
  2380: 'etcd (peers)',
  10250: 'the kubelet',
  10257: 'kube-controller-manager',
  10259: 'kube-scheduler',
};
/** Clock skew between nodes: etcd leases and TLS certificates need agreeing clocks. */
export const CLOCK_WARN_MS = 2_000;
export const CLOCK_FAIL_MS = 30_000;

export function createRoles(roles: readonly string[]): CreateRole[] {
  return CREATE_ROLES.filter((r) => roles.includes(r));
}

/** Ports that must be free on a node with these roles (sorted, each once). */
export function portsFor(roles: readonly string[], lbPort = DEFAULT_LB_PORT): number[] {
  const out = new Set<number>();
  if (roles.includes('lb')) out.add(lbPort);
  if (roles.includes('master')) MASTER_PORTS.forEach((p) => out.add(p));
  if (roles.includes('worker')) WORKER_PORTS.forEach((p) => out.add(p));
  return [...out].sort((a, b) => a - b);
}

/** A node as the wizard's spec names it (kube/cluster-spec.ts NodeRef). */
export interface SpecNodeRef {
  name: string;
  address: string;
  port: number;
  user: string;
}

/**
 * The nodes of a creation spec, each machine once: the LB may share a host with a master or a
 * worker (same address and SSH port), which is then one node with both roles — checked once, so
 * its hostname does not clash with itself.
 */
export function specNodes(spec: {
  lb?: { kind: string; node?: SpecNodeRef };
  masters: readonly SpecNodeRef[];
  workers?: readonly SpecNodeRef[];
}): PreflightNode[] {
  const out: PreflightNode[] = [];
  const add = (n: SpecNodeRef, role: CreateRole) => {
    const key = (x: SpecNodeRef) => `${x.address.toLowerCase()}#${x.port}`;
    const same = out.find((o) => key(o) === key(n));
    if (same) {
      if (!same.roles.includes(role)) same.roles = [...same.roles, role];
      return;
    }
    out.push({ name: n.name || n.address, address: n.address, port: n.port, user: n.user, roles: [role] });
  };
  spec.masters.forEach((n) => add(n, 'master'));
  (spec.workers ?? []).forEach((n) => add(n, 'worker'));
  if (spec.lb?.node && spec.lb.kind !== 'none') add(spec.lb.node, 'lb');
  return out;
}

/** The arguments of preflight.sh for a node: `ROLES PORT…`. */
export function preflightArgs(roles: readonly string[], lbPort = DEFAULT_LB_PORT): string[] {
  return [createRoles(roles).join(','), ...portsFor(roles, lbPort).map(String)];
}

export interface ParsedPreflight {
  /** Format version from the first line; null when the script never started. */
  version: number | null;
  /** The `end` line came: the script ran to its end. */
  complete: boolean;
  facts: Record<string, string>;
  checks: { check: string; status: PreflightStatus; detail: string }[];
}

const STATUSES: ReadonlySet<string> = new Set(['ok', 'warn', 'fail']);
const CHECK_NAME = /^[a-z0-9][a-z0-9-]{0,40}$/;

/** Parse preflight.sh output; lines that are not records (or malformed ones) are ignored. */
export function parsePreflight(stdout: string): ParsedPreflight {
  const out: ParsedPreflight = { version: null, complete: false, facts: {}, checks: [] };
  for (const raw of stdout.split('\n')) {
    const line = raw.replace(/\r$/, '');
    const f = line.split('\t');
    if (f[0] === 'preflight' && f.length === 2 && /^\d+$/.test(f[1])) out.version = Number(f[1]);
    else if (f[0] === 'end' && f[1] === 'preflight') out.complete = true;
    else if (f[0] === 'fact' && f.length >= 3 && /^[a-z_]+$/.test(f[1])) out.facts[f[1]] = f.slice(2).join(' ');
    else if (f[0] === 'check' && f.length >= 4 && CHECK_NAME.test(f[1]) && STATUSES.has(f[2]))
      out.checks.push({ check: f[1], status: f[2] as PreflightStatus, detail: f.slice(3).join(' ') });
  }
  return out;
}

/** A sudoers.d file name sudo does not skip (it ignores names with a dot or ending in ~). */
function sudoersFile(user: string): string {
  return `/etc/sudoers.d/90-${user.replace(/[^A-Za-z0-9_-]/g, '_')}`;
}

export function sudoFix(user: string, detail = ''): string {
  const file = sudoersFile(user);
  const install = /not installed/.test(detail) ? 'install sudo (apt-get install sudo), then ' : '';
  return (
    `As root on the node, ${install}give ${user} passwordless sudo: ` +
    `echo '${user} ALL=(ALL) NOPASSWD: ALL' > ${file} && chmod 0440 ${file} && visudo -c`
  );
}

const RESET_HINT =
  'Reset the node first (offered): kubeadm reset -f, then remove /etc/kubernetes, /var/lib/etcd and /var/lib/kubelet';
const KUBE_PROGRAMS = /^(kube-apiserver|etcd|kubelet|kube-controller|kube-scheduler|kube-proxy)/;

/** The fix hint for a check row that is not ok (undefined: nothing to do, or nothing we can say). */
export function fixFor(
  row: { check: string; status: PreflightStatus; detail: string },
  node: PreflightNode,
): string | undefined {
  if (row.status === 'ok') return undefined;
  const port = /^port-(\d+)$/.exec(row.check);
  if (port) {
    const p = Number(port[1]);
    const prog = /by (\S+) \(pid (\d+)\)/.exec(row.detail);
    if (prog && KUBE_PROGRAMS.test(prog[1])) return RESET_HINT;
    const kubeUses = portsFor(node.roles.filter((r) => r !== 'lb')).includes(p);
    const owner = kubeUses ? PORT_OWNERS[p] : 'the load balancer';
    const who = prog ? `${prog[1]} (pid ${prog[2]})` : `the program listening on ${p} (sudo ss -ltnp 'sport = :${p}')`;
    return `Stop ${who} or move it to another port: ${owner} needs port ${p}`;
  }
  switch (row.check) {
    case 'sudo':
      return row.status === 'fail' ? sudoFix(node.user, row.detail) : undefined;
    case 'os':
      return 'Supported: Debian 11, 12, 13 and Ubuntu 20.04, 22.04, 24.04; elsewhere the apt-based install may fail';
    case 'arch':
      return 'Use an amd64 or arm64 machine';
    case 'cpus':
      return 'Give the control-plane node at least 2 CPUs (kubeadm refuses fewer)';
    case 'memory':
      return row.status === 'fail'
        ? 'Give the control-plane node at least 1700 MB of RAM (kubeadm refuses less)'
        : 'Give the worker at least 1 GB of RAM';
    case 'swap':
      return 'The app turns swap off when it prepares the node (swapoff -a, swap lines of /etc/fstab commented out); or do it yourself: sudo swapoff -a and remove swap from /etc/fstab';
    case 'cgroup':
      return 'Boot with cgroup v2 (systemd.unified_cgroup_hierarchy=1 on the kernel command line); otherwise the kubelet needs failCgroupV1: false';
    case 'ip-forward':
      return 'The app sets net.ipv4.ip_forward=1 when it prepares the node (kubeadm requires it)';
    case 'disk':
      return 'Free space on the file system of /var/lib (container images and etcd live there)';
    case 'hostname':
      return 'Give the node a lowercase DNS name that resolves (hostnamectl set-hostname NAME, and a line in /etc/hosts)';
    case 'existing':
      return /^nothing found/.test(row.detail)
        ? `Give ${node.user} passwordless sudo, then run the checks again: only root can look into every folder`
        : RESET_HINT;
    case 'args':
    case 'preflight':
      return 'The pre-flight script failed: read scripts/preflight.sh in the console (reset it to the default if you changed it)';
  }
  return undefined;
}

/** The row (and hint) for a node the app could not reach over SSH. */
export function sshRow(node: PreflightNode, err: { code?: string; message: string; details?: unknown }): PreflightRow {
  const code = err.code as SshErrorCode | undefined;
  const fp = (err.details as { hostKey?: { fingerprint?: string } } | undefined)?.hostKey?.fingerprint;
  const fixes: Partial<Record<SshErrorCode, string>> = {
    HOST_KEY_UNKNOWN: `Confirm the node's host key${fp ? ` (${fp})` : ''} with "Test connection", then run the checks again`,
    HOST_KEY_CHANGED: `The node's host key changed: check with its administrator, then trust the new key${fp ? ` (${fp})` : ''} with "Test connection"`,
    AUTH_FAILED: `Add the app's public key to ~${node.user}/.ssh/authorized_keys on the node, or choose another key or password`,
    SECRET_MISSING: 'Store the key or password of this node (Nodes → edit)',
    KEY_UNREADABLE: 'Choose a private key file the app can read',
    UNREACHABLE: `Check the address ${node.address} and port ${node.port}, that sshd runs and that no firewall blocks it`,
    TIMEOUT: `Check the address ${node.address} and port ${node.port}, that sshd runs and that no firewall drops it`,
  };
  return {
    node: node.name,
    check: 'ssh',
    status: 'fail',
    detail: err.message,
    fix: (code && fixes[code]) ?? 'Check that the node answers SSH ("Test connection")',
  };
}

/** The time a node reported and when the run began and that line arrived (this computer's ms). */
export interface ClockSample {
  node: string;
  /** `date +%s.%N` on the node. */
  remote: string;
  sentAt: number;
  receivedAt: number;
}

function secs(ms: number): string {
  const s = Math.abs(ms) / 1000;
  return `${ms < 0 ? '-' : '+'}${s < 10 ? s.toFixed(2) : s.toFixed(0)} s`;
}

/**
 * One 'clock' row per node. The node's offset from this computer is its time minus the midpoint of
 * the round trip (± half the round trip). Nodes are compared with the median node (the lower of
 * the two middle ones: a real node, named in the row); only the part of a difference beyond both
 * uncertainties counts: > 2 s warns, > 30 s fails.
 */
export function clockRows(samples: ClockSample[]): PreflightRow[] {
  const est = samples
    .map((s) => {
      const remote = Number(s.remote) * 1000;
      if (!Number.isFinite(remote) || !/^\d+(\.\d+)?$/.test(s.remote)) return null;
      return {
        node: s.node,
        offset: remote - (s.sentAt + s.receivedAt) / 2,
        plusMinus: Math.max(0, s.receivedAt - s.sentAt) / 2,
      };
    })
    .filter((e): e is { node: string; offset: number; plusMinus: number } => !!e);
  const bad = samples
    .filter((s) => !est.some((e) => e.node === s.node))
    .map<PreflightRow>((s) => ({
      node: s.node,
      check: 'clock',
      status: 'warn',
      detail: `cannot read the node's clock (${JSON.stringify(s.remote.slice(0, 40))})`,
      fix: 'Make sure date +%s.%N works on the node',
    }));
  if (!est.length) return bad;
  const ref = [...est].sort((a, b) => a.offset - b.offset)[Math.floor((est.length - 1) / 2)];
  const rows = est.map<PreflightRow>((e) => {
    const local = `${secs(e.offset)} vs this computer (±${(e.plusMinus / 1000).toFixed(2)} s)`;
    if (e === ref || est.length === 1)
      return { node: e.node, check: 'clock', status: 'ok', detail: `${est.length > 1 ? 'reference; ' : ''}${local}` };
    const diff = e.offset - ref.offset;
    const beyond = Math.max(0, Math.abs(diff) - e.plusMinus - ref.plusMinus);
    const status: PreflightStatus = beyond > CLOCK_FAIL_MS ? 'fail' : beyond > CLOCK_WARN_MS ? 'warn' : 'ok';
    const row: PreflightRow = {
      node: e.node,
      check: 'clock',
      status,
      detail: `${secs(diff)} vs ${ref.node}; ${local}`,
    };
    if (status !== 'ok')
      row.fix =
        'Synchronise the clocks of all nodes (systemd-timesyncd or chrony, e.g. timedatectl set-ntp true): etcd and TLS certificates need them to agree';
    return row;
  });
  return [...rows, ...bad];
}

/**
 * Hostnames must be unique across the nodes (the kubelet registers the Node under it, etcd names
 * its member after it). The same hostname with the same machine-id is one machine listed twice.
 */
export function hostnameRows(list: { node: string; hostname: string; machineId?: string }[]): PreflightRow[] {
  return list
    .filter((x) => x.hostname)
    .map<PreflightRow>((x) => {
      const twins = list.filter((y) => y !== x && y.hostname.toLowerCase() === x.hostname.toLowerCase());
      if (!twins.length)
        return { node: x.node, check: 'hostname-unique', status: 'ok', detail: `${x.hostname} is unique` };
      const same = twins.filter((y) => x.machineId && y.machineId === x.machineId);
      const others = twins.map((y) => y.node).join(', ');
      return same.length
        ? {
            node: x.node,
            check: 'hostname-unique',
            status: 'fail',
            detail: `${x.hostname}: the same machine as ${same.map((y) => y.node).join(', ')} (same machine-id)`,
            fix: 'List each machine once: remove the duplicate node',
          }
        : {
            node: x.node,
            check: 'hostname-unique',
            status: 'fail',
            detail: `hostname ${x.hostname} is also the hostname of ${others}`,
            fix: 'Give every node its own hostname (sudo hostnamectl set-hostname NEW-NAME, and update /etc/hosts)',
          };
    });
}

/** A node that is LB and master (or worker) cannot serve the LB on a port kubeadm needs there. */
export function lbPortRows(nodes: PreflightNode[], lbPort = DEFAULT_LB_PORT): PreflightRow[] {
  const rows: PreflightRow[] = [];
  for (const n of nodes) {
    if (!n.roles.includes('lb')) continue;
    const kube = portsFor(n.roles.filter((r) => r !== 'lb'));
    if (kube.includes(lbPort))
      rows.push({
        node: n.name,
        check: 'lb-port',
        status: 'fail',
        detail: `the load balancer's port ${lbPort} is the port of ${PORT_OWNERS[lbPort] ?? 'a Kubernetes component'} on this node`,
        fix: 'Choose another load-balancer port (e.g. 8443), or put the load balancer on a node of its own',
      });
  }
  return rows;
}

/** The rows of one node's run of preflight.sh, with fix hints. */
export function nodeRows(node: PreflightNode, parsed: ParsedPreflight): PreflightRow[] {
  const rows = parsed.checks.map<PreflightRow>((c) => {
    const row: PreflightRow = { node: node.name, ...c };
    const fix = fixFor(c, node);
    if (fix) row.fix = fix;
    return row;
  });
  if (!parsed.complete)
    rows.push({
      node: node.name,
      check: 'preflight',
      status: 'fail',
      detail: 'the pre-flight script stopped before its end',
      fix: fixFor({ check: 'preflight', status: 'fail', detail: '' }, node),
    });
  return rows;
}

export function report(rows: PreflightRow[]): PreflightReport {
  return { rows, ok: !rows.some((r) => r.status === 'fail') };
}

export interface PreflightDeps {
  pool: SshPool;
  scripts: ScriptLibrary;
  targetOf(node: PreflightNode): SshTarget;
  /** Clock of this computer in ms (tests). */
  now?: () => number;
}

export interface PreflightOptions {
  /** The load balancer's listening port (default 6443). */
  lbPort?: number;
  signal?: AbortSignal;
  timeoutMs?: number;
  log?: (node: string, stream: 'cmd' | 'stdout' | 'stderr', text: string) => void;
}

interface NodeOutcome {
  rows: PreflightRow[];
  facts?: Record<string, string>;
  clock?: ClockSample;
}

const SCRIPT = 'preflight.sh';
const NO_TARGET_FIX = 'Add the node with its SSH key or password (Nodes), then run the checks again';

async function checkNode(deps: PreflightDeps, node: PreflightNode, opts: PreflightOptions): Promise<NodeOutcome> {
  const now = deps.now ?? Date.now;
  let target: SshTarget;
  try {
    target = deps.targetOf(node);
  } catch (e) {
    const detail = `no SSH settings for ${node.address}:${node.port}: ${(e as Error).message}`;
    return { rows: [{ node: node.name, check: 'ssh', status: 'fail', detail, fix: NO_TARGET_FIX }] };
  }
  const args = preflightArgs(node.roles, opts.lbPort);
  /** The last line the script printed: once there is one, SSH worked and a failure is the script's. */
  let lastLine: string | undefined;
  const run = async (asRoot: boolean) => {
    let receivedAt: number | undefined;
    const sentAt = now();
    const res = await runScript(deps.pool, target, deps.scripts, SCRIPT, args, {
      asRoot,
      check: false,
      signal: opts.signal,
      timeoutMs: opts.timeoutMs ?? 60_000,
      log: (stream, text) => {
        if (stream === 'stdout') {
          if (receivedAt === undefined && text.startsWith('fact\tclock\t')) receivedAt = now();
          lastLine = text;
        }
        opts.log?.(node.name, stream, text);
      },
    });
    return { res, parsed: parsePreflight(res.stdout), sentAt, receivedAt: receivedAt ?? now() };
  };
  const outcome = (r: Awaited<ReturnType<typeof run>>, rows: PreflightRow[]): NodeOutcome => ({
    rows,
    facts: r.parsed.facts,
    clock: r.parsed.facts.clock
      ? { node: node.name, remote: r.parsed.facts.clock, sentAt: r.sentAt, receivedAt: r.receivedAt }
      : undefined,
  });
  const scriptFailed = (detail: string): NodeOutcome => ({
    rows: [
      {
        node: node.name,
        check: 'preflight',
        status: 'fail',
        detail,
        fix: fixFor({ check: 'preflight', status: 'fail', detail }, node),
      },
    ],
  });
  try {
    const first = await run(true);
    if (first.parsed.version !== null) return outcome(first, nodeRows(node, first.parsed));
    const why = (first.res.stderr.trim() || `exit code ${first.res.code ?? first.res.signal}`)
      .split('\n')
      .slice(-2)
      .join(' | ');
    if (target.user === 'root') return scriptFailed(why);
    // Elevation failed before the script started: run it as the login user, who reports its uid and
    // what `sudo -n true` says, and whatever it can check without root.
    const second = await run(false);
    const rows = nodeRows(node, second.parsed);
    if (rows.some((r) => r.check === 'sudo' && r.status === 'fail')) return outcome(second, rows);
    // sudo works when asked directly: the elevated run failed for another reason; say what it said
    const row: PreflightRow = {
      node: node.name,
      check: 'sudo',
      status: 'fail',
      detail: `sudo -n -- sh -c failed: ${why}`,
    };
    row.fix = sudoFix(node.user, why);
    return outcome(second, [row, ...rows.filter((r) => r.check !== 'sudo')]);
  } catch (e) {
    if (opts.signal?.aborted) throw e;
    const err = e as { name?: string; code?: string; message: string; details?: unknown };
    if (err.name === 'SshError' && lastLine === undefined) return { rows: [sshRow(node, err)] };
    const after = lastLine === undefined ? '' : ` (last line: ${lastLine.replace(/\t/g, ' ').slice(0, 200)})`;
    return scriptFailed(`${err.message}${after}`);
  }
}

/** Run the pre-flight checks on every node of the spec, in parallel, and add the cross-node checks. */
export async function runPreflight(
  deps: PreflightDeps,
  nodes: PreflightNode[],
  opts: PreflightOptions = {},
): Promise<PreflightReport> {
  const checked = nodes.filter((n) => createRoles(n.roles).length);
  const outcomes = await Promise.all(checked.map((n) => checkNode(deps, n, opts)));
  const clock = clockRows(outcomes.flatMap((o) => (o.clock ? [o.clock] : [])));
  const hosts = hostnameRows(
    outcomes.flatMap((o, i) =>
      o.facts?.hostname ? [{ node: checked[i].name, hostname: o.facts.hostname, machineId: o.facts.machine_id }] : [],
    ),
  );
  const lb = lbPortRows(checked, opts.lbPort);
  const rows: PreflightRow[] = [];
  for (const n of nodes) {
    const i = checked.indexOf(n);
    if (i < 0) {
      rows.push({ node: n.name, check: 'roles', status: 'warn', detail: 'no lb, master or worker role: not checked' });
      continue;
    }
    rows.push(...outcomes[i].rows, ...[...clock, ...hosts, ...lb].filter((r) => r.node === n.name));
  }
  return report(rows);
}
