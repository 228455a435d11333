// Domain types shared by main and renderer. Each type is derived from its zod schema, so the
// schema that validates a payload at the boundary and the type the code uses cannot drift apart.
import { z } from 'zod';

/** IPv4, IPv6 (brackets are removed first, see `hostSchema`) or an RFC 1123 host name. */
const HOSTNAME_RE = /^(?=.{1,253}$)(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?$/;
const IPV4_RE = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const IPV6_RE = /^[0-9A-Fa-f:.]{2,45}$/;
/** POSIX portable user names (useradd's default rule, plus the trailing `$` of machine accounts). */
const USER_RE = /^[a-z_][a-z0-9_-]{0,31}\$?$/;

// ---- Field schemas: one per kind of field, used by every contract method that takes it ----

/**
 * C0 controls (NUL, ESC, newlines, …), DEL and C1 controls; with `allowWs`, tab, newline and CR
 * pass (multi-line free text). Checked by code unit (a regex of control characters trips linters).
 */
function hasControl(s: string, allowWs = false): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 32 ? !(allowWs && (c === 9 || c === 10 || c === 13)) : c >= 0x7f && c <= 0x9f) return true;
  }
  return false;
}
/** Bidirectional embeddings, overrides and isolates (text that displays unlike what it is). */
const BIDI_RE = /[\u202a-\u202e\u2066-\u2069]/;

/** True when `s` has no control character and no bidi override: fit for a one-line technical value. */
export function isPlainLine(s: string): boolean {
  return !hasControl(s) && !BIDI_RE.test(s);
}

/** Valid as a node address once normalised (a bracketed IPv6 counts; it is stored unbracketed). */
export function isValidAddress(input: string): boolean {
  const s = normalizeAddress(input);
  if (IPV4_RE.test(s)) return true;
  if (s.includes(':')) return IPV6_RE.test(s) && (s.match(/:/g) ?? []).length >= 2;
  // A dotted all-numeric string that is not a valid IPv4 (e.g. 300.1.1.1) is a typo, not a name.
  if (/^[\d.]+$/.test(s)) return false;
  return HOSTNAME_RE.test(s);
}

/** `[::1]` → `::1`: a node address is stored (and given to the resolver) without URL brackets. */
export function normalizeAddress(s: string): string {
  const t = s.trim();
  return /^\[[^[\]]*\]$/.test(t) ? t.slice(1, -1) : t;
}

/** A node address or host name (node addresses, host-key entries). Bracketed IPv6 is unbracketed. */
export const hostSchema = z
  .string()
  .trim()
  .overwrite(normalizeAddress)
  .min(1, 'Address is required')
  .max(253, 'Address is too long')
  .refine(isValidAddress, 'Not a valid host name or IP address');
export const Address = hostSchema;

/**
 * Free text a user writes (snapshot notes): several lines allowed, any script, stored and shown
 * verbatim (never interpreted); control characters other than tab/newline are refused.
 */
function freeText(max: number) {
  return z
    .string()
    .max(max, `Notes are at most ${max} characters`)
    .refine((s) => !hasControl(s, true), 'Notes cannot contain control characters');
}
/** Note of a snapshot (snapshot jobs, import, edit). */
export const noteSchema = freeText(2000);
/** Note of a saved state (it becomes the state's reason, at most 500 characters). */
export const stateNoteSchema = freeText(500);

/** Kubernetes namespace name (RFC 1123 label): it becomes part of API paths. */
export const namespaceSchema = z
  .string()
  .min(1, 'Namespace is required')
  .max(63, 'Namespaces are at most 63 characters')
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'Namespaces are lower-case letters, digits and "-"');

/** File name of a cached etcd release archive (never a path). */
export const archiveNameSchema = z
  .string()
  .max(255, 'Archive name is too long')
  .regex(/^etcd-v\d+\.\d+\.\d+-linux-(amd64|arm64)\.tar\.gz$/, 'Not an etcd release archive name');

/** A Host alias from an ssh config file (a name, not a pattern or a command). */
export const sshAliasSchema = z
  .string()
  .min(1, 'Host alias is required')
  .max(253, 'Host alias is too long')
  .regex(
    /^[A-Za-z0-9_][A-Za-z0-9_.@%+:-]*$/,
    'Host aliases are letters, digits and . _ - @ % + : (starting with a letter, digit or _)',
  );

/** Name of a remote script in the scripts folder. */
export const scriptNameSchema = z.string().regex(/^[a-z0-9][a-z0-9-]*\.sh$/, 'Not a script name');

/** Ids the app generates (jobs, snapshots, states). */
export const Uuid = z.string().regex(/^[0-9a-f-]{36}$/, 'Malformed id');

export const Port = z
  .number({ message: 'Port must be a number' })
  .int('Port must be a whole number')
  .min(1, 'Port must be between 1 and 65535')
  .max(65535, 'Port must be between 1 and 65535');

export const UserName = z
  .string()
  .trim()
  .min(1, 'User is required')
  .regex(USER_RE, 'User names start with a letter or _, then letters, digits, _ or - (max 32)');

export const NodeName = z
  .string()
  .trim()
  .min(1, 'Name is required')
  .max(63, 'Name is at most 63 characters')
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'Use letters, digits, ".", "_" and "-" (start with a letter or digit)');

export const ClusterName = z
  .string()
  .trim()
  .min(1, 'Name is required')
  .max(63, 'Name is at most 63 characters')
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'Use letters, digits, ".", "_" and "-" (start with a letter or digit)');

export const Id = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'Malformed id');

export const Role = z.enum(['lb', 'master', 'worker', 'etcd']);
export type Role = z.infer<typeof Role>;

/**
 * Absolute or ~-relative path on the desktop; bounded, no NUL or other control character, no bidi
 * override. Only ever given to file APIs, never to a shell.
 */
export const LocalPath = z
  .string()
  .min(1, 'Path is required')
  .max(4096, 'Path is too long')
  .refine((p) => !p.includes('\0'), 'Path contains a NUL byte')
  .refine(isPlainLine, 'Path contains control or bidirectional-override characters')
  .refine((p) => p.startsWith('/') || p.startsWith('~/') || /^[A-Za-z]:[\\/]/.test(p), 'Path must be absolute');

/**
 * How we authenticate. Secrets (stored keys, passphrases, passwords) are never part of the node
 * record: they live in the SecretStore under the node's id and only a "present" flag is shown.
 */
export const Auth = z.discriminatedUnion('method', [
  z.object({ method: z.literal('key-file'), keyPath: LocalPath }),
  z.object({ method: z.literal('key-stored') }),
  z.object({ method: z.literal('agent') }),
  z.object({ method: z.literal('password') }),
]);
export type Auth = z.infer<typeof Auth>;

export const NodeInput = z.object({
  id: Id.optional(),
  name: NodeName,
  address: Address,
  port: Port.default(22),
  user: UserName.default('root'),
  roles: z.array(Role).max(4).default([]),
  auth: Auth,
  /** Another node of the same cluster used as ProxyJump. */
  jumpNodeId: Id.nullable().default(null),
});
export type NodeInput = z.input<typeof NodeInput>;

export const ClusterNode = NodeInput.extend({ id: Id });
export type ClusterNode = z.infer<typeof ClusterNode>;

export const ModeName = z.enum([
  'embedded-up',
  'external-up',
  'down (configured for embedded)',
  'down (configured for external)',
  'mixed',
  'unknown',
]);
export type ModeName = z.infer<typeof ModeName>;

/** One etcd member as the app knows it (from `member list`, or the manifests when etcd is down). */
export const EtcdMemberFact = z.object({
  name: z.string(),
  id: z.string().nullable(),
  peerUrls: z.array(z.string()),
  clientUrls: z.array(z.string()),
  /** Inventory node it runs on, when known. */
  nodeId: z.string().nullable(),
  kind: z.enum(['stacked', 'external']),
});
export type EtcdMemberFact = z.infer<typeof EtcdMemberFact>;

const ToolSet = z.object({
  etcd: z.string().nullable(),
  etcdctl: z.string().nullable(),
  etcdutl: z.string().nullable(),
});

export const MasterFact = z.object({
  nodeId: z.string(),
  name: z.string(),
  hostname: z.string(),
  /** --etcd-servers of its apiserver (null: no manifest). */
  etcdServers: z.array(z.string()).nullable(),
  /** Data dir of its stacked member (from etcd.yaml, parked or not). */
  etcdDataDir: z.string().nullable(),
  etcdManifest: z.enum(['active', 'parked', 'absent']),
  /**
   * Folder of kubeadm's etcd PKI on this master (ca.crt, ca.key, healthcheck-client.*), read from
   * its etcd.yaml `--trusted-ca-file` (or the apiserver's `--etcd-cafile`); kubeadm's default when
   * neither says (older facts files have none).
   */
  etcdPkiDir: z.string().default('/etc/kubernetes/pki/etcd'),
  tools: ToolSet,
  versions: ToolSet,
  problems: z.array(z.string()),
});
export type MasterFact = z.infer<typeof MasterFact>;

/** One node of the external etcd as provisioned. */
export const ExternalEtcdFact = z.object({
  provisionedAt: z.string(),
  /** The etcd version installed for it (the cluster's), when known. */
  version: z.string().nullable(),
  dataDir: z.string(),
});
export type ExternalEtcdFact = z.infer<typeof ExternalEtcdFact>;

/** What `initialize` found; rerun it to refresh (e.g. after certificate rotation). */
export const ClusterFacts = z.object({
  initializedAt: z.string(),
  seedNodeId: z.string(),
  controlPlaneEndpoint: z.string().nullable(),
  /** PEM of the etcd CA certificate (public). The key never leaves the masters. */
  etcdCaCert: z.string().nullable(),
  /** Masters holding /etc/kubernetes/pki/etcd/ca.key. */
  etcdCaKeyOn: z.array(z.string()),
  etcdVersion: z.string().nullable(),
  masters: z.array(MasterFact),
  members: z.array(EtcdMemberFact),
  mode: ModeName,
  modeDetails: z.array(z.string()),
  /**
   * Absolute paths of the etcd tools on every node the app has looked at (masters at initialize,
   * external etcd nodes when provisioned, any node after tools were installed), by node id. Scripts
   * get these paths (KES_ETCD, KES_ETCDCTL, KES_ETCDUTL) instead of searching PATH: sudo's
   * secure_path leaves /usr/local/bin out on many distributions.
   */
  nodeTools: z.record(z.string(), ToolSet).default({}),
  /**
   * External etcd members the app set up (by node id): written by the provision job when a node's
   * certificates, tools and unit are in place, kept by initialize, dropped with the node. The
   * External etcd tab offers Start/Stop, Switch and member repairs only for these.
   */
  externalEtcd: z.record(z.string(), ExternalEtcdFact).default({}),
});
export type ClusterFacts = z.infer<typeof ClusterFacts>;
export type ToolPaths = z.infer<typeof ToolSet>;

const Cidr = z
  .string()
  .regex(/^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/, 'Not an IPv4 CIDR (a.b.c.d/n)');

/**
 * How "New cluster" made (or grows) a cluster: its options; the nodes are the inventory, by role.
 * Kept on the cluster so growing it (join new nodes) and shrinking it (the LB config) use the same.
 */
export const ClusterCreation = z
  .object({
    lb: z
      .object({ kind: z.enum(['haproxy', 'nginx', 'envoy', 'none']), port: z.number().int().min(1).max(65535) })
      .strict(),
    kubernetesMinor: z.string().regex(/^1\.\d{2}$/, 'A Kubernetes minor like 1.36'),
    podCidr: Cidr,
    serviceCidr: Cidr,
    cni: z.enum(['calico', 'flannel']),
    cniManifest: z.discriminatedUnion('source', [
      z.object({ source: z.literal('url'), url: z.url({ protocol: /^https$/ }).max(2048) }).strict(),
      z.object({ source: z.literal('file'), path: z.string().min(1).max(4096).startsWith('/') }).strict(),
    ]),
    /** kubeadm preflight checks to pass over (`--ignore-preflight-errors`), e.g. "NumCPU"; shown in the plan. */
    ignorePreflightErrors: z
      .array(z.string().regex(/^[A-Za-z0-9._-]{1,100}$/))
      .max(30)
      .default([]),
    demo: z.boolean().default(true),
    /** etcd tools (a cached archive, Settings → Tools) installed on the masters: health and snapshots need etcdctl. */
    etcdToolsArchive: archiveNameSchema.optional(),
  })
  .strict();
export type ClusterCreation = z.infer<typeof ClusterCreation>;

/** The load balancer "New cluster" set up, if any. */
export function lbOf(
  creation: ClusterCreation | null | undefined,
): { kind: 'haproxy' | 'nginx' | 'envoy'; port: number } | undefined {
  const lb = creation?.lb;
  return lb && lb.kind !== 'none' ? { kind: lb.kind, port: lb.port } : undefined;
}

export const Cluster = z.object({
  id: Id,
  name: ClusterName,
  nodes: z.array(ClusterNode),
  createdAt: z.string(),
  facts: ClusterFacts.nullable().default(null),
  /** The options "New cluster" last ran with (null for a cluster added as existing). */
  creation: ClusterCreation.nullable().default(null),
  /** Namespaces whose workloads the health view shows (chosen there; `default` until then). */
  healthNamespaces: z.array(z.string()).max(12).optional(),
});
export type Cluster = z.infer<typeof Cluster>;

const settingsFields = {
  connectTimeoutMs: z.number().int().min(1000).max(120_000),
  keepaliveIntervalMs: z.number().int().min(1000).max(300_000),
  /** Also accept host keys already listed in ~/.ssh/known_hosts. */
  readSystemKnownHosts: z.boolean(),
  sshConfigPath: LocalPath,
  /**
   * Stream snapshots straight from the etcd member's client port when this computer can reach it
   * (mutual TLS with the node's etcd client certificate); otherwise, or when off, through SSH.
   */
  etcdDirect: z.boolean(),
  /** Where "download etcd tools" fetches release archives (https only; a mirror for air-gapped sites). */
  etcdReleaseBaseUrl: z
    .string()
    .max(2048)
    // Before .url(), which would quietly trim what it does not like.
    .refine((u) => isPlainLine(u) && !/\s/.test(u), 'URL contains spaces or control characters')
    .url('Must be a URL')
    .refine((u) => /^https?:\/\//.test(u), 'Must be http(s)'),
};
export const SettingsPatch = z.object(settingsFields).partial().strict();
export const Settings = z.object({
  connectTimeoutMs: settingsFields.connectTimeoutMs.default(10_000),
  keepaliveIntervalMs: settingsFields.keepaliveIntervalMs.default(15_000),
  readSystemKnownHosts: settingsFields.readSystemKnownHosts.default(false),
  sshConfigPath: settingsFields.sshConfigPath.default('~/.ssh/config'),
  etcdDirect: settingsFields.etcdDirect.default(true),
  etcdReleaseBaseUrl: settingsFields.etcdReleaseBaseUrl.default('https://github.com/etcd-io/etcd/releases/download'),
});
export type Settings = z.infer<typeof Settings>;

export type ConnState = 'disconnected' | 'connecting' | 'connected' | 'error';

export interface NodeStatus {
  clusterId: string;
  nodeId: string;
  state: ConnState;
  message?: string;
}

export interface HostKeyInfo {
  host: string;
  port: number;
  keyType: string;
  /** OpenSSH style: "SHA256:base64-without-padding". */
  fingerprint: string;
}

export interface TrustedHostKey extends HostKeyInfo {
  addedAt: string;
}

export interface ConnectionTest {
  reachable: boolean;
  authOk: boolean;
  hostKey?: HostKeyInfo & { status: 'trusted' | 'unknown' | 'changed' | 'system' };
  hostname?: string;
  os?: string;
  user?: string;
  isRoot?: boolean;
  passwordlessSudo?: boolean;
  durationMs: number;
  error?: { code: string; message: string };
}

export interface SecretFlags {
  privateKey: boolean;
  passphrase: boolean;
  password: boolean;
}

export const SecretKind = z.enum(['privateKey', 'passphrase', 'password']);
export type SecretKind = z.infer<typeof SecretKind>;

export interface KeychainStatus {
  available: boolean;
  backend: 'keytar' | 'memory';
  /** Why the OS keychain is not used (shown to the user). */
  reason?: string;
}

export interface AppInfo {
  name: string;
  version: string;
  transport: 'electron' | 'web';
  dataDir: string;
  scriptsDir: string;
  keychain: KeychainStatus;
  platform: string;
  /** Data files that could not be read at start (kept aside, never overwritten). */
  problems: string[];
}

export interface SshConfigEntry {
  host: string;
  hostName?: string;
  user?: string;
  port?: number;
  identityFile?: string;
  proxyJump?: string;
}

/** A remote script in the user-editable scripts folder. */
export interface ScriptInfo {
  name: string;
  path: string;
  /** The copy differs from the shipped version it came from (a hand edit). */
  modified: boolean;
  missing: boolean;
  /** A changed copy while this app ships another version: see `scripts.diff`, take it with `scripts.reset`. */
  updateAvailable: boolean;
}

/** An etcd release archive in the desktop cache. */
export interface ToolArchive {
  file: string;
  name: string;
  version: string;
  arch: string;
  sha256: string;
  binaries: string[];
}
