// The "Create a new cluster" wizard's pure half: the form as the user types it (ports as text, one
// SSH credential for every node), the ClusterSpec it stands for, every problem at once (the shared
// rules of cluster-spec.ts plus what the creation job's request and the inventory need), and the
// two things the wizard writes: the inventory nodes (an LB sharing a master's host is one node
// with both roles) and the CreateClusterRequest. No I/O, no runes: unit-tested in wizard.test.ts.
import {
  APISERVER_PORT,
  DEFAULT_KUBERNETES_MINOR,
  DEFAULT_SERVICE_CIDR,
  defaultCniManifestUrl,
  defaultPodCidr,
  validateClusterSpec,
  type ClusterSpec,
  type Cni,
  type Issue,
  type LbKind,
  type NodeRef,
} from '@shared/cluster-spec';
import { LocalPath, normalizeAddress, type Auth, type ClusterNode, type NodeInput, type Role } from '@shared/domain';
import type { CreateClusterRequest } from '@shared/jobs';

export type { Issue };

export const WIZARD_STEPS = [
  { id: 'lb', title: 'Load balancer' },
  { id: 'masters', title: 'Masters' },
  { id: 'workers', title: 'Workers & SSH' },
  { id: 'options', title: 'Options' },
  { id: 'preflight', title: 'Pre-flight' },
  { id: 'plan', title: 'Plan' },
] as const;
export type StepId = (typeof WIZARD_STEPS)[number]['id'];
export const OPTIONS_STEP = 3;

export interface NodeRow {
  name: string;
  address: string;
  /** SSH port as typed; empty means 22. */
  port: string;
  user: string;
}

export interface CredentialForm {
  method: Auth['method'];
  keyPath: string;
  pastedKey: string;
  passphrase: string;
  password: string;
}

export interface OptionsForm {
  kubernetesMinor: string;
  cni: Cni;
  podCidr: string;
  serviceCidr: string;
  manifestSource: 'url' | 'file';
  manifestUrl: string;
  manifestPath: string;
  /** Comma-separated kubeadm preflight checks to pass over (advanced). */
  ignorePreflightErrors: string;
  demo: boolean;
  /** A cached etcd tools archive to install on the masters ('' = none): health and snapshots need etcdctl. */
  etcdToolsArchive: string;
}

export interface WizardForm {
  name: string;
  lb: { kind: LbKind; node: NodeRow; port: string };
  masters: NodeRow[];
  workers: NodeRow[];
  options: OptionsForm;
  credential: CredentialForm;
}

const MAX_SECRET = 64 * 1024;
const IGNORE_ITEM = /^[A-Za-z0-9._-]{1,100}$/;

export function row(name = '', address = '', port = '22', user = 'root'): NodeRow {
  return { name, address, port, user };
}

/** A fresh form: haproxy on 6443, one master row, no workers, calico and its defaults, a key file. */
export function newWizardForm(): WizardForm {
  return {
    name: '',
    lb: { kind: 'haproxy', node: row('lb'), port: String(APISERVER_PORT) },
    masters: [row('master-1')],
    workers: [],
    options: {
      kubernetesMinor: DEFAULT_KUBERNETES_MINOR,
      cni: 'calico',
      podCidr: defaultPodCidr('calico'),
      serviceCidr: DEFAULT_SERVICE_CIDR,
      manifestSource: 'url',
      manifestUrl: defaultCniManifestUrl('calico'),
      manifestPath: '',
      ignorePreflightErrors: '',
      demo: true,
      etcdToolsArchive: '',
    },
    credential: { method: 'key-file', keyPath: '~/.ssh/id_ed25519', pastedKey: '', passphrase: '', password: '' },
  };
}

/** The first `<prefix>-N` no row of `rows` is named yet. */
export function nextName(prefix: string, rows: NodeRow[]): string {
  const used = new Set(rows.map((r) => r.name.trim()));
  for (let k = 1; ; k++) if (!used.has(`${prefix}-${k}`)) return `${prefix}-${k}`;
}

/** A port as typed: empty → `fallback`, digits → the number, anything else → NaN (the rules refuse it). */
export function portOf(text: string, fallback: number): number {
  const t = text.trim();
  if (t === '') return fallback;
  return /^\d{1,5}$/.test(t) ? Number(t) : NaN;
}

function nodeOf(r: NodeRow): NodeRef {
  return {
    name: r.name.trim(),
    address: normalizeAddress(r.address),
    port: portOf(r.port, 22),
    user: r.user.trim() || 'root',
  };
}

/** CNI switched: fields still at the old CNI's defaults follow the new one; edited ones stay. */
export function switchCni(o: OptionsForm, cni: Cni): OptionsForm {
  if (o.cni === cni) return o;
  return {
    ...o,
    cni,
    podCidr: o.podCidr.trim() === defaultPodCidr(o.cni) || !o.podCidr.trim() ? defaultPodCidr(cni) : o.podCidr,
    manifestUrl:
      o.manifestUrl.trim() === defaultCniManifestUrl(o.cni) || !o.manifestUrl.trim()
        ? defaultCniManifestUrl(cni)
        : o.manifestUrl,
  };
}

/** The ClusterSpec the form stands for (trimmed, addresses unbracketed, ports parsed). */
export function formToSpec(f: WizardForm): ClusterSpec {
  const o = f.options;
  return {
    name: f.name.trim(),
    lb: {
      kind: f.lb.kind,
      ...(f.lb.kind === 'none' ? {} : { node: nodeOf(f.lb.node) }),
      port: f.lb.kind === 'none' ? APISERVER_PORT : portOf(f.lb.port, APISERVER_PORT),
    },
    masters: f.masters.map(nodeOf),
    workers: f.workers.map(nodeOf),
    options: {
      kubernetesMinor: o.kubernetesMinor.trim(),
      podCidr: o.podCidr.trim(),
      serviceCidr: o.serviceCidr.trim(),
      cni: o.cni,
      cniManifest:
        o.manifestSource === 'url'
          ? { source: 'url', url: o.manifestUrl.trim() }
          : { source: 'file', path: o.manifestPath.trim() },
    },
  };
}

const toRow = (n: NodeRef): NodeRow => row(n.name, n.address, String(n.port), n.user);

/** What an imported setup.conf names replaces those parts of the form; the rest is kept. */
export function applyImport(f: WizardForm, spec: Partial<ClusterSpec>): WizardForm {
  const next: WizardForm = { ...f, options: { ...f.options } };
  if (spec.masters?.length) next.masters = spec.masters.map(toRow);
  if (spec.workers) next.workers = spec.workers.map(toRow);
  if (spec.lb) {
    next.lb = {
      kind: spec.lb.kind,
      node: spec.lb.node ? toRow(spec.lb.node) : f.lb.node,
      port: String(spec.lb.port),
    };
  }
  if (spec.options) {
    const o = spec.options;
    next.options = {
      ...switchCni(next.options, o.cni),
      kubernetesMinor: o.kubernetesMinor,
      podCidr: o.podCidr,
      serviceCidr: o.serviceCidr,
    };
  }
  return next;
}

/** Fields the import filled in, so their problems show at once. */
export function importedFields(spec: Partial<ClusterSpec>): string[] {
  const fields: string[] = [];
  const nodeFields = (prefix: string) => ['name', 'address', 'port', 'user'].map((k) => `${prefix}.${k}`);
  spec.masters?.forEach((_, i) => fields.push(...nodeFields(`masters.${i}`)));
  spec.workers?.forEach((_, i) => fields.push(...nodeFields(`workers.${i}`)));
  if (spec.lb) fields.push('lb.kind', 'lb.port', ...(spec.lb.node ? nodeFields('lb.node') : []));
  if (spec.options) fields.push('options.podCidr');
  return fields;
}

export function authOf(c: CredentialForm): Auth {
  switch (c.method) {
    case 'key-file':
      return { method: 'key-file', keyPath: c.keyPath.trim() };
    case 'key-stored':
      return { method: 'key-stored' };
    case 'agent':
      return { method: 'agent' };
    case 'password':
      return { method: 'password' };
  }
}

/** The shared credential: what NodeFormDialog asks of one node, asked once for all of them. */
export function credentialIssues(c: CredentialForm): Issue[] {
  const out: Issue[] = [];
  const add = (field: string, message: string) => out.push({ field: `credential.${field}`, message });
  if (c.method === 'key-file') {
    const r = LocalPath.safeParse(c.keyPath.trim());
    if (!r.success) add('keyPath', r.error.issues[0].message);
  }
  if (c.method === 'key-stored') {
    const k = c.pastedKey.trim();
    if (!k) add('pastedKey', 'Paste the private key (it is stored in the keychain)');
    else if (!/-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/.test(k))
      add('pastedKey', 'This does not look like a private key (-----BEGIN … PRIVATE KEY-----)');
    else if (k.length > MAX_SECRET) add('pastedKey', 'Value is too large');
  }
  if (c.method === 'password' && !c.password) add('password', 'Enter the password (it is stored in the keychain)');
  if (c.password.length > MAX_SECRET) add('password', 'Value is too large');
  if (c.passphrase.length > MAX_SECRET) add('passphrase', 'Value is too large');
  return out;
}

/** `a, b c` → ['a', 'b', 'c'] (commas or spaces), each once. */
export function parseIgnoreList(text: string): string[] {
  return [...new Set(text.split(/[\s,]+/).filter(Boolean))];
}

/** What the creation job's request refuses although the spec allows it. */
function requestIssues(f: WizardForm): { errors: Issue[]; warnings: Issue[] } {
  const errors: Issue[] = [];
  const o = f.options;
  const url = o.manifestUrl.trim();
  if (o.manifestSource === 'url' && /^http:/i.test(url))
    errors.push({
      field: 'options.cniManifest.url',
      message: 'The creation job takes https URLs only; or download the file and give its path',
    });
  const path = o.manifestPath.trim();
  if (o.manifestSource === 'file' && path && !path.startsWith('/') && LocalPath.safeParse(path).success)
    errors.push({ field: 'options.cniManifest.path', message: 'Give the full path, starting with /' });
  const ignore = parseIgnoreList(o.ignorePreflightErrors);
  const bad = ignore.find((x) => !IGNORE_ITEM.test(x));
  if (bad)
    errors.push({
      field: 'options.ignorePreflightErrors',
      message: `${JSON.stringify(bad.slice(0, 40))} is not a kubeadm check name (letters, digits, ".", "_", "-")`,
    });
  else if (ignore.length > 30)
    errors.push({ field: 'options.ignorePreflightErrors', message: 'At most 30 checks can be ignored' });
  const warnings: Issue[] = ignore.length
    ? [
        {
          field: 'options.ignorePreflightErrors',
          message: `kubeadm will not stop on: ${ignore.join(', ')}`,
        },
      ]
    : [];
  return { errors, warnings };
}

/**
 * Every error (blocks Next) and warning (shown) of the form, in field order. `takenNames`: the
 * other clusters' names (the inventory refuses a second one, whatever its case).
 */
export function wizardIssues(
  f: WizardForm,
  spec: ClusterSpec = formToSpec(f),
  takenNames: string[] = [],
): { errors: Issue[]; warnings: Issue[] } {
  const base = validateClusterSpec(spec);
  const req = requestIssues(f);
  const taken = spec.name && takenNames.some((n) => n.toLowerCase() === spec.name.toLowerCase());
  const nameIssue: Issue[] =
    taken && !base.errors.some((e) => e.field === 'name')
      ? [{ field: 'name', message: `A cluster named "${spec.name}" already exists` }]
      : [];
  const errors = [...nameIssue, ...base.errors, ...req.errors, ...credentialIssues(f.credential)];
  const failing = new Set(errors.map((e) => e.field));
  // A field with an error needs no warning as well (e.g. "plain http" next to "https only").
  const warnings = [...base.warnings, ...req.warnings].filter((w) => !failing.has(w.field));
  return { errors, warnings };
}

/** The wizard step whose fields `field` belongs to. */
export function stepOfField(field: string): number {
  if (field === 'name' || field.startsWith('lb')) return 0;
  if (field.startsWith('masters')) return 1;
  if (field.startsWith('workers') || field.startsWith('credential')) return 2;
  return OPTIONS_STEP;
}

/** Errors that keep the user on step `step`: those of this step and of every step before it. */
export function blockingErrors(errors: Issue[], step: number): Issue[] {
  return errors.filter((e) => stepOfField(e.field) <= step);
}

/** First message for exactly `field`. */
export function messageFor(issues: Issue[], field: string): string | undefined {
  return issues.find((i) => i.field === field)?.message;
}

/** Every message for exactly `field` (list-level ones such as `masters`). */
export function issuesAt(issues: Issue[], field: string): Issue[] {
  return issues.filter((i) => i.field === field);
}

/** A human label for a field path, for summaries ("master 2 address"). */
export function fieldLabel(field: string): string {
  const p = field.split('.');
  const nodeLabel = (role: string, i: string, rest: string[]) =>
    `${role} ${Number(i) + 1}${rest.length ? ` ${rest.join(' ')}` : ''}`;
  if (p[0] === 'masters' && p[1]) return nodeLabel('master', p[1], p.slice(2));
  if (p[0] === 'workers' && p[1]) return nodeLabel('worker', p[1], p.slice(2));
  if (p[0] === 'masters') return 'masters';
  if (p[0] === 'workers') return 'workers';
  if (field === 'name') return 'cluster name';
  if (field === 'lb.port') return 'load balancer port';
  if (field === 'lb.kind') return 'load balancer';
  if (p[0] === 'lb') return `load balancer node${p[2] ? ` ${p[2]}` : ''}`;
  if (p[0] === 'credential') return `SSH ${p[1] === 'keyPath' ? 'key file' : (p[1] ?? 'credential')}`;
  const labels: Record<string, string> = {
    'options.kubernetesMinor': 'Kubernetes version',
    'options.podCidr': 'pod CIDR',
    'options.serviceCidr': 'service CIDR',
    'options.cniManifest.url': 'CNI manifest URL',
    'options.cniManifest.path': 'CNI manifest file',
    'options.ignorePreflightErrors': 'ignored preflight errors',
  };
  return labels[field] ?? field;
}

// ---- What the wizard writes ----

/** Inventory payload of one machine; `key` identifies it across edits (address and SSH port). */
export type WizardNode = NodeInput & { roles: Role[]; key: string };

export function machineKey(n: { address: string; port: number }): string {
  return `${normalizeAddress(n.address).toLowerCase()}#${n.port}`;
}

/**
 * One inventory node per machine: masters, then workers, then the load balancer; a machine named
 * twice (the LB on a master's address and SSH port) is one node with both roles, named as first met.
 */
export function inventoryNodes(spec: ClusterSpec, auth: Auth): WizardNode[] {
  const out: WizardNode[] = [];
  const add = (n: NodeRef, role: Role) => {
    const key = machineKey(n);
    const same = out.find((o) => o.key === key);
    if (same) {
      if (!same.roles.includes(role)) same.roles.push(role);
      return;
    }
    out.push({
      key,
      name: n.name,
      address: n.address,
      port: n.port,
      user: n.user,
      roles: [role],
      auth,
      jumpNodeId: null,
    });
  };
  spec.masters.forEach((n) => add(n, 'master'));
  spec.workers.forEach((n) => add(n, 'worker'));
  if (spec.lb.kind !== 'none' && spec.lb.node) add(spec.lb.node, 'lb');
  return out;
}

const sameAuth = (a: Auth, b: Auth) =>
  a.method === b.method && (a.method !== 'key-file' || (b.method === 'key-file' && a.keyPath === b.keyPath));
const sameRoles = (a: Role[], b: Role[]) => a.length === b.length && a.every((r) => b.includes(r));

export interface InventorySync {
  /** New or changed nodes, in spec order; matched ones carry the inventory id. */
  upserts: (NodeInput & { id?: string; key: string })[];
  /** Inventory nodes that no longer stand for a machine of the spec. */
  removes: ClusterNode[];
}

/** From the cluster's nodes to the spec's: match by address and SSH port, so a renamed machine keeps its id. */
export function syncInventory(existing: ClusterNode[], desired: WizardNode[]): InventorySync {
  const byKey = new Map(existing.map((n) => [machineKey(n), n]));
  const upserts: InventorySync['upserts'] = [];
  const kept = new Set<string>();
  for (const d of desired) {
    const have = byKey.get(d.key);
    if (have) kept.add(have.id);
    const { key, ...node } = d;
    if (
      have &&
      have.name === d.name &&
      have.user === d.user &&
      sameRoles(have.roles, d.roles) &&
      sameAuth(have.auth, d.auth) &&
      (have.jumpNodeId ?? null) === null
    )
      continue;
    upserts.push(have ? { ...node, id: have.id, key } : { ...node, key });
  }
  return { upserts, removes: existing.filter((n) => !kept.has(n.id)) };
}

/** The creation job's options (the nodes are the cluster's inventory). */
export function createRequest(
  spec: ClusterSpec,
  f: Pick<OptionsForm, 'ignorePreflightErrors' | 'demo'> & Partial<Pick<OptionsForm, 'etcdToolsArchive'>>,
): CreateClusterRequest {
  const o = spec.options;
  return {
    kind: 'create-cluster',
    lb: { kind: spec.lb.kind, port: spec.lb.kind === 'none' ? APISERVER_PORT : spec.lb.port },
    kubernetesMinor: o.kubernetesMinor,
    podCidr: o.podCidr,
    serviceCidr: o.serviceCidr,
    cni: o.cni,
    cniManifest:
      o.cniManifest.source === 'url'
        ? { source: 'url', url: o.cniManifest.url }
        : { source: 'file', path: o.cniManifest.path },
    ignorePreflightErrors: parseIgnoreList(f.ignorePreflightErrors),
    demo: f.demo,
    ...(f.etcdToolsArchive ? { etcdToolsArchive: f.etcdToolsArchive } : {}),
  };
}

/** The LB port the pre-flight checks on the LB node (none: nothing listens in front of the masters). */
export function preflightLbPort(spec: ClusterSpec): number | undefined {
  return spec.lb.kind === 'none' ? undefined : spec.lb.port;
}
