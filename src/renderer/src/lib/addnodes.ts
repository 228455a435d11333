// "Add several nodes" and the prefill of "Add node", the pure half (no I/O, no runes; tested in
// addnodes.test.ts): parse a pasted list of machines, one table row per line; rows picked from
// ~/.ssh/config; every problem of every row (bad address or port, a machine twice in the list or
// already in the cluster); what the previous node offers the next one (port, user, jump host,
// credential — the secrets themselves stay in the keychain and are copied inside main); and the
// nodes.addMany payload. The shared credential is the wizard's (lib/wizard.ts).
import {
  Address,
  LocalPath,
  NodeName,
  UserName,
  normalizeAddress,
  type ClusterNode,
  type NodeInput,
  type Role,
  type SecretFlags,
  type SshConfigEntry,
} from '@shared/domain';
import { authOf, credentialIssues, machineKey, portOf, type CredentialForm, type Issue } from './wizard';

export type { Issue };

export const ROLE_ORDER: Role[] = ['master', 'worker', 'lb', 'etcd'];

/** One machine of the "Add several" table, as the user can still edit it. */
export interface AddRow {
  name: string;
  address: string;
  /** SSH port as typed; empty means 22. */
  port: string;
  user: string;
  roles: Role[];
  /** Where the row came from: the pasted list (its 1-based line) or an ssh config Host. */
  source: { kind: 'paste'; line: number } | { kind: 'ssh-config'; host: string };
  /** IdentityFile of an ssh config Host: this row uses that key file instead of the shared credential. */
  keyPath?: string;
  /** ProxyJump of an ssh config Host: must name a node of the cluster. */
  proxyJump?: string;
  /** What the parser could not understand on the row's line. */
  problem?: string;
}

const ROLE_ALIASES: Record<string, Role> = {
  master: 'master',
  masters: 'master',
  'control-plane': 'master',
  cp: 'master',
  worker: 'worker',
  workers: 'worker',
  lb: 'lb',
  'load-balancer': 'lb',
  etcd: 'etcd',
};

export const LINE_FORMAT = '[user@]host[:port] [name] [roles]';

/** `host`, `host:port`, `user@host:port`, `[v6]:port`, bare IPv6: the parts, or what is wrong. */
export function parseTarget(tok: string): { user?: string; address: string; port?: string; problem?: string } {
  let rest = tok;
  let user: string | undefined;
  const at = rest.lastIndexOf('@');
  if (at >= 0) {
    user = rest.slice(0, at);
    rest = rest.slice(at + 1);
  }
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    if (close < 0) return { user, address: rest, problem: 'Missing "]" after the IPv6 address' };
    const after = rest.slice(close + 1);
    const address = rest.slice(0, close + 1);
    if (after === '') return { user, address };
    if (after.startsWith(':')) return { user, address, port: after.slice(1) };
    return { user, address, problem: `Unexpected "${after}" after the address` };
  }
  const colons = (rest.match(/:/g) ?? []).length;
  if (colons === 1) {
    const [address, port] = rest.split(':');
    return { user, address, port };
  }
  // None (a name or IPv4), or several (a bare IPv6 address: no port possible without brackets).
  return { user, address: rest };
}

/** A node name for a machine the list names no name for: a host name's first label, or the IP itself. */
export function defaultName(address: string): string {
  const a = normalizeAddress(address);
  if (a.includes(':')) return a.replace(/:+/g, '-').replace(/^-+|-+$/g, '');
  if (/^[\d.]+$/.test(a)) return a;
  return a.split('.')[0];
}

/**
 * Parse a pasted list: one machine per line, `[user@]host[:port] [name] [roles]` (roles
 * comma-separated: master, worker, lb, etcd). `#` starts a comment; blank lines are skipped. Every
 * other line becomes a row — even one with a problem, which the table then shows on that row.
 */
export function parseHostList(text: string, defaults: { port: string; user: string }): AddRow[] {
  const rows: AddRow[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.replace(/(^|\s)#.*$/, '').trim();
    if (!line) return;
    const [target, name, roles, ...extra] = line.split(/\s+/);
    const t = parseTarget(target);
    const problems: string[] = [];
    if (t.problem) problems.push(t.problem);
    const parsedRoles: Role[] = [];
    for (const r of (roles ?? '').split(/[,+]/).filter(Boolean)) {
      const role = ROLE_ALIASES[r.toLowerCase()];
      if (!role) problems.push(`Unknown role "${r}" (master, worker, lb, etcd)`);
      else if (!parsedRoles.includes(role)) parsedRoles.push(role);
    }
    if (extra.length) problems.push(`Unexpected "${extra.join(' ')}": a line is ${LINE_FORMAT}`);
    rows.push({
      name: name ?? defaultName(t.address),
      address: t.address,
      port: t.port ?? defaults.port,
      user: t.user ?? defaults.user,
      roles: parsedRoles,
      source: { kind: 'paste', line: i + 1 },
      ...(problems.length ? { problem: problems.join('; ') } : {}),
    });
  });
  return rows;
}

/** Rows for Hosts picked from ~/.ssh/config: their HostName, User, Port, IdentityFile and ProxyJump. */
export function rowsFromSshConfig(entries: SshConfigEntry[], defaults: { port: string; user: string }): AddRow[] {
  return entries.map((e) => ({
    name: e.host.replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[^A-Za-z0-9]+/, ''),
    address: e.hostName ?? e.host,
    port: e.port ? String(e.port) : defaults.port,
    user: e.user ?? defaults.user,
    roles: [],
    source: { kind: 'ssh-config', host: e.host },
    ...(e.identityFile ? { keyPath: e.identityFile } : {}),
    ...(e.proxyJump ? { proxyJump: e.proxyJump.split(',')[0].trim() } : {}),
  }));
}

/** How a row is referred to in messages: "line 3" of the paste, or the ssh config Host. */
export function rowLabel(r: AddRow): string {
  return r.source.kind === 'paste' ? `line ${r.source.line}` : `Host ${r.source.host}`;
}

/** A port as typed: its problem, if any (empty is 22). */
export function portProblem(text: string): string | undefined {
  const p = portOf(text, 22);
  if (Number.isNaN(p)) return 'Port must be a number';
  if (p < 1 || p > 65535) return 'Port must be between 1 and 65535';
  return undefined;
}

/**
 * Every problem of every row, as `rows.<i>.<field>` issues (field: name, address, port, user,
 * keyPath, proxyJump, line). The first row naming a machine (address and SSH port) or a name keeps
 * it; later ones, and machines or names the cluster already has, are refused.
 */
export function validateRows(rows: AddRow[], existing: ClusterNode[]): Issue[] {
  const out: Issue[] = [];
  const machines = new Map<string, string>(existing.map((n) => [machineKey(n), `already in the cluster as ${n.name}`]));
  const names = new Map<string, string>(existing.map((n) => [n.name.toLowerCase(), 'already used in this cluster']));
  rows.forEach((r, i) => {
    const add = (field: string, message: string) => out.push({ field: `rows.${i}.${field}`, message });
    if (r.problem) add('line', r.problem);
    const name = NodeName.safeParse(r.name);
    if (!name.success) add('name', name.error.issues[0].message);
    else {
      const seen = names.get(name.data.toLowerCase());
      if (seen) add('name', `Name ${seen}`);
      else names.set(name.data.toLowerCase(), `used by ${rowLabel(r)}`);
    }
    const address = Address.safeParse(r.address);
    const port = portProblem(r.port);
    if (!address.success) add('address', address.error.issues[0].message);
    if (port) add('port', port);
    if (address.success && !port) {
      const key = machineKey({ address: address.data, port: portOf(r.port, 22) });
      const seen = machines.get(key);
      if (seen) add('address', `Same machine ${seen.startsWith('already') ? seen : `as ${seen}`}`);
      else machines.set(key, rowLabel(r));
    }
    const user = UserName.safeParse(r.user.trim() || 'root');
    if (!user.success) add('user', user.error.issues[0].message);
    if (r.keyPath !== undefined) {
      const k = LocalPath.safeParse(r.keyPath);
      if (!k.success) add('keyPath', `IdentityFile: ${k.error.issues[0].message}`);
    }
    if (r.proxyJump && !existing.some((n) => n.name === r.proxyJump))
      add('proxyJump', `ProxyJump ${r.proxyJump} is not a node of this cluster: add it first`);
  });
  return out;
}

/** Indexes of the rows without any problem: those are added. */
export function validRowIndexes(rows: AddRow[], issues: Issue[]): number[] {
  const bad = new Set(issues.map((i) => Number(i.field.split('.')[1])));
  return rows.map((_, i) => i).filter((i) => !bad.has(i));
}

// ---- The previous node's settings, offered for the next one ----

/** The node added last to the cluster (the inventory keeps the order nodes were added in). */
export function previousNode(nodes: ClusterNode[]): ClusterNode | undefined {
  return nodes.at(-1);
}

export interface Prefill {
  port: string;
  user: string;
  jumpNodeId: string;
  credential: CredentialForm;
  /** The node these come from. */
  from?: { id: string; name: string };
}

/** What a new node starts with: the previous node's port, user, jump host and auth method/key path. */
export function prefillFrom(prev: ClusterNode | undefined): Prefill {
  const credential: CredentialForm = {
    method: 'key-file',
    keyPath: '~/.ssh/id_ed25519',
    pastedKey: '',
    passphrase: '',
    password: '',
  };
  if (!prev) return { port: '22', user: 'root', jumpNodeId: '', credential };
  credential.method = prev.auth.method;
  if (prev.auth.method === 'key-file') credential.keyPath = prev.auth.keyPath;
  return {
    port: String(prev.port),
    user: prev.user,
    jumpNodeId: prev.jumpNodeId ?? '',
    credential,
    from: { id: prev.id, name: prev.name },
  };
}

/**
 * Whether the previous node has the secret this method needs stored, so the new nodes can use a
 * copy instead of a paste: its private key (pasted key), its password, or a key file's passphrase.
 */
export function reusable(method: CredentialForm['method'], flags: SecretFlags | null): boolean {
  if (!flags) return false;
  if (method === 'key-stored') return flags.privateKey;
  if (method === 'password') return flags.password;
  if (method === 'key-file') return flags.passphrase;
  return false;
}

/** The shared credential's problems; what the stored copy provides need not be typed. */
export function sharedCredentialIssues(c: CredentialForm, reuse: boolean): Issue[] {
  const issues = credentialIssues(c);
  if (!reuse) return issues;
  return issues.filter(
    (i) =>
      !(c.method === 'key-stored' && i.field === 'credential.pastedKey' && !c.pastedKey.trim()) &&
      !(c.method === 'password' && i.field === 'credential.password' && !c.password),
  );
}

export interface AddManyCredential {
  copyFrom?: string;
  privateKey?: string;
  passphrase?: string;
  password?: string;
}

/** The nodes.addMany `credential`: typed secrets (what the method uses) and the node to copy from. */
export function credentialPayload(c: CredentialForm, copyFrom: string | null): AddManyCredential | undefined {
  const out: AddManyCredential = {};
  if (copyFrom && c.method !== 'agent') out.copyFrom = copyFrom;
  if (c.method === 'key-stored' && c.pastedKey.trim()) out.privateKey = c.pastedKey.trim() + '\n';
  if ((c.method === 'key-stored' || c.method === 'key-file') && c.passphrase) out.passphrase = c.passphrase;
  if (c.method === 'password' && c.password) out.password = c.password;
  return Object.keys(out).length ? out : undefined;
}

/**
 * The nodes.addMany `nodes` for the rows at `indexes`: each with its roles, the shared credential
 * (or its ssh config IdentityFile), and the shared jump host (or its ssh config ProxyJump).
 */
export function nodesToAdd(
  rows: AddRow[],
  indexes: number[],
  c: CredentialForm,
  jumpNodeId: string,
  existing: ClusterNode[],
): NodeInput[] {
  const shared = authOf(c);
  return indexes.map((i) => {
    const r = rows[i];
    const jump = r.proxyJump ? existing.find((n) => n.name === r.proxyJump)?.id : jumpNodeId;
    return {
      name: r.name.trim(),
      address: normalizeAddress(r.address),
      port: portOf(r.port, 22),
      user: r.user.trim() || 'root',
      roles: ROLE_ORDER.filter((x) => r.roles.includes(x)),
      auth: r.keyPath ? { method: 'key-file', keyPath: r.keyPath } : shared,
      jumpNodeId: jump || null,
    };
  });
}

/** Server issues `nodes.<k>.<field>` of the payload built from `indexes` → `rows.<i>.<field>`. */
export function serverRowIssues(fields: Record<string, string>, indexes: number[]): Issue[] {
  const out: Issue[] = [];
  for (const [path, message] of Object.entries(fields)) {
    const m = /^nodes\.(\d+)\.(\w+)/.exec(path);
    if (m && indexes[Number(m[1])] !== undefined) {
      const field = m[2] === 'jumpNodeId' ? 'proxyJump' : m[2] === 'auth' ? 'keyPath' : m[2];
      out.push({ field: `rows.${indexes[Number(m[1])]}.${field}`, message });
    }
  }
  return out;
}
