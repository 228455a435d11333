// The "create an HA kubeadm cluster" wizard's form model and its rules. Pure: no I/O, no Node APIs,
// so the renderer may show the same errors while the user types.
//
// `validateClusterSpec` reports every problem at once, each with the path of the field it belongs
// to ('masters.1.address'), split into errors (the plan refuses) and warnings (shown, allowed).
// `ClusterSpecSchema` is the boundary schema: shape, bounds and defaults, then the same rules, so
// a payload that parses is a spec the plan can use.
import { z } from 'zod';
import { ClusterName, LocalPath, UserName, isPlainLine, normalizeAddress } from './domain';

export const LB_KINDS = ['haproxy', 'nginx', 'envoy', 'none'] as const;
export type LbKind = (typeof LB_KINDS)[number];
export const CNIS = ['calico', 'flannel'] as const;
export type Cni = (typeof CNIS)[number];

/** kubeadm's own default (`--service-cidr`). */
export const DEFAULT_SERVICE_CIDR = '10.96.0.0/12';
export const DEFAULT_KUBERNETES_MINOR = '1.36';
export const APISERVER_PORT = 6443;
/** Oldest minor with packages on pkgs.k8s.io (the legacy apt/yum repositories are gone). */
export const OLDEST_KUBERNETES_MINOR = 24;
/** Calico release whose manifests the plan applies by default (docs.tigera.io, 3.32 "latest"). */
export const DEFAULT_CALICO_VERSION = 'v3.32.2';
/** etcd runs with every master; beyond 7 members writes slow down with no gain in tolerance. */
const MAX_RECOMMENDED_MASTERS = 7;

/**
 * Pod CIDR the CNI's own manifest assumes. Calico: CALICO_IPV4POOL_CIDR's documented default
 * (calico-node takes kubeadm's podSubnet when that variable is unset, so any CIDR works; this is
 * also what the old tool used). Flannel: kube-flannel.yml's net-conf.json hard-codes 10.244.0.0/16,
 * and flanneld refuses node podCIDRs outside it.
 */
export function defaultPodCidr(cni: Cni): string {
  return cni === 'flannel' ? '10.244.0.0/16' : '192.168.0.0/16';
}

/**
 * The projects' release manifests. Calico: the VXLAN variant (`calico-vxlan.yaml`: VXLAN always,
 * no BGP/BIRD, no IP-in-IP — protocol 4 is dropped by many clouds and switches), pinned, since
 * Calico publishes no "latest" manifest URL. Flannel: its "latest release" asset (VXLAN backend),
 * or the pinned release. Rendered into plans only; the app never fetches them on its own.
 */
export function defaultCniManifestUrl(cni: Cni, version?: string): string {
  if (version !== undefined && !/^v?\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(version))
    throw new Error(`Not a release version: ${JSON.stringify(version)}`);
  const v = version === undefined ? undefined : version.startsWith('v') ? version : `v${version}`;
  if (cni === 'calico')
    return `https://raw.githubusercontent.com/projectcalico/calico/${v ?? DEFAULT_CALICO_VERSION}/manifests/calico-vxlan.yaml`;
  return v
    ? `https://github.com/flannel-io/flannel/releases/download/${v}/kube-flannel.yml`
    : 'https://github.com/flannel-io/flannel/releases/latest/download/kube-flannel.yml';
}

// ---- Addresses and CIDRs (pure parsers; the renderer has no node:net) ----

const IPV4_PART = '(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
const IPV4_RE = new RegExp(`^${IPV4_PART}(\\.${IPV4_PART}){3}$`);
/** RFC 1123 host name (labels of letters, digits and inner hyphens), optional final dot. */
const HOSTNAME_RE =
  /^(?=.{1,253}\.?$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

export function isIPv4(s: string): boolean {
  return IPV4_RE.test(s);
}

/** RFC 4291 text forms: eight groups, one `::`, an embedded IPv4 tail; no zone (`%eth0`). */
export function isIPv6(s: string): boolean {
  if (s.length < 2 || s.length > 45 || !/^[0-9A-Fa-f:.]+$/.test(s)) return false;
  const halves = s.split('::');
  if (halves.length > 2) return false;
  const groups = (part: string) => (part === '' ? [] : part.split(':'));
  const head = groups(halves[0]);
  const tail = halves.length === 2 ? groups(halves[1]) : [];
  const all = [...head, ...tail];
  let count = all.length;
  const last = all[all.length - 1];
  if (last !== undefined && last.includes('.')) {
    if (!isIPv4(last)) return false;
    all.pop();
    count += 1; // an IPv4 tail stands for two groups
  }
  if (!all.every((g) => /^[0-9A-Fa-f]{1,4}$/.test(g))) return false;
  return halves.length === 2 ? count <= 7 : count === 8;
}

export function isHostname(s: string): boolean {
  // An all-numeric dotted string that is not an IPv4 (300.1.1.1) is a typo, not a name.
  return HOSTNAME_RE.test(s) && !/^[\d.]+$/.test(s);
}

export type AddressKind = 'ipv4' | 'ipv6' | 'hostname';

/** What `address` is once trimmed and unbracketed (`[::1]` → ipv6), or null when it is none. */
export function addressKind(address: string): AddressKind | null {
  const s = normalizeAddress(address);
  if (isIPv4(s)) return 'ipv4';
  if (isIPv6(s)) return 'ipv6';
  return isHostname(s) ? 'hostname' : null;
}

const LOOPBACK_NAMES = new Set(['localhost', 'localhost.', 'ip6-localhost', 'ip6-loopback']);
export function isLoopback(address: string): boolean {
  const s = normalizeAddress(address).toLowerCase();
  return LOOPBACK_NAMES.has(s) || /^127\./.test(s) || s === '::1' || s === '0:0:0:0:0:0:0:1';
}

function ipv4ToInt(s: string): number {
  return s.split('.').reduce((n, o) => n * 256 + Number(o), 0);
}

export interface Cidr4 {
  base: number;
  prefix: number;
  size: number;
}

/** `a.b.c.d/n` → its range; null when malformed. Host bits are kept in `base` (see `isNetwork`). */
export function parseCidr4(s: string): Cidr4 | null {
  const m = /^([\d.]+)\/(\d{1,2})$/.exec(s.trim());
  if (!m || !isIPv4(m[1])) return null;
  const prefix = Number(m[2]);
  if (prefix > 32) return null;
  return { base: ipv4ToInt(m[1]), prefix, size: 2 ** (32 - prefix) };
}

function networkOf(c: Cidr4): number {
  return c.base - (c.base % c.size);
}

function intToIpv4(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
}

export function cidrsOverlap(a: Cidr4, b: Cidr4): boolean {
  const [as, bs] = [networkOf(a), networkOf(b)];
  return as < bs + b.size && bs < as + a.size;
}

export function cidrContains(c: Cidr4, ipv4: string): boolean {
  const n = ipv4ToInt(ipv4);
  return n >= networkOf(c) && n < networkOf(c) + c.size;
}

/** Ranges no pod or service network may touch. */
const SPECIAL_RANGES: { cidr: Cidr4; what: string }[] = [
  { cidr: parseCidr4('0.0.0.0/8')!, what: '"this network" (0.0.0.0/8)' },
  { cidr: parseCidr4('127.0.0.0/8')!, what: 'loopback (127.0.0.0/8)' },
  { cidr: parseCidr4('169.254.0.0/16')!, what: 'link-local (169.254.0.0/16)' },
  { cidr: parseCidr4('224.0.0.0/3')!, what: 'multicast and reserved (224.0.0.0/3)' },
];

// ---- Field rules: each returns an error message or null ----

/** Kubernetes node names are RFC 1123 subdomains; at most 63 characters so the inventory takes them. */
const NODE_NAME_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export function nodeNameProblem(name: string): string | null {
  if (!name) return 'Name is required';
  if (name.length > 63) return 'Name is at most 63 characters';
  if (!NODE_NAME_RE.test(name))
    return 'Node names are lower-case letters, digits, "-" and "." (RFC 1123), starting and ending with a letter or digit';
  return null;
}

export function addressProblem(address: string): string | null {
  if (!normalizeAddress(address)) return 'Address is required';
  if (address.length > 255 || !isPlainLine(address)) return 'Not a valid host name or IP address';
  return addressKind(address) ? null : 'Not a valid host name or IP address';
}

export function portProblem(port: unknown): string | null {
  return typeof port === 'number' && Number.isInteger(port) && port >= 1 && port <= 65535
    ? null
    : 'Port must be a whole number between 1 and 65535';
}

function userProblem(user: string): string | null {
  const r = UserName.safeParse(user);
  return r.success ? null : r.error.issues[0].message;
}

/** `N.NN` (1.36); a leading `v` or a patch number is refused, the plan picks the patch. */
export function kubernetesMinorProblem(minor: string): string | null {
  const m = /^1\.(\d{1,2})$/.exec(minor);
  if (!m) return 'Kubernetes version is a minor version like 1.36';
  if (Number(m[1]) < OLDEST_KUBERNETES_MINOR)
    return `pkgs.k8s.io publishes Kubernetes 1.${OLDEST_KUBERNETES_MINOR} and newer`;
  return null;
}

function cidrProblem(s: string, what: string, minPrefix: number, maxPrefix: number): string | null {
  const c = parseCidr4(s);
  if (!c) return `${what} must be an IPv4 CIDR like 10.96.0.0/12`;
  if (networkOf(c) !== c.base) return `${s} has host bits set; the network is ${intToIpv4(networkOf(c))}/${c.prefix}`;
  if (c.prefix < minPrefix || c.prefix > maxPrefix) return `${what} must be between /${minPrefix} and /${maxPrefix}`;
  const special = SPECIAL_RANGES.find((r) => cidrsOverlap(c, r.cidr));
  if (special) return `${s} overlaps ${special.what}`;
  return null;
}

function manifestUrlProblem(url: string): string | null {
  if (!url) return 'Manifest URL is required';
  if (url.length > 2048 || !isPlainLine(url) || /\s/.test(url)) return 'URL contains spaces or control characters';
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'Not a URL';
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') return 'Manifest URL must be http(s)';
  if (u.username || u.password) return 'Put no credentials in the manifest URL';
  return null;
}

// ---- The model ----

const nodeRefShape = z.object({
  name: z.string().trim().max(253),
  address: z.string().trim().max(255).overwrite(normalizeAddress),
  port: z.number().default(22),
  user: z.string().trim().max(64).default('root'),
});
const cniManifestShape = z.discriminatedUnion('source', [
  z.object({ source: z.literal('url'), url: z.string().trim().max(2048) }),
  z.object({ source: z.literal('file'), path: z.string().max(4096) }),
]);
const optionsShape = z
  .object({
    kubernetesMinor: z.string().trim().max(16).default(DEFAULT_KUBERNETES_MINOR),
    cni: z.enum(CNIS).default('calico'),
    podCidr: z.string().trim().max(64).optional(),
    serviceCidr: z.string().trim().max(64).default(DEFAULT_SERVICE_CIDR),
    cniManifest: cniManifestShape.optional(),
  })
  .transform((o) => ({
    kubernetesMinor: o.kubernetesMinor,
    podCidr: o.podCidr ?? defaultPodCidr(o.cni),
    serviceCidr: o.serviceCidr,
    cni: o.cni,
    cniManifest: o.cniManifest ?? { source: 'url' as const, url: defaultCniManifestUrl(o.cni) },
  }));

/** A node the wizard names: SSH address, port and user (the key comes from the inventory). */
export type NodeRef = z.infer<typeof nodeRefShape>;
export type CniManifest = z.infer<typeof cniManifestShape>;

const specShape = z.object({
  name: z.string().trim().max(63),
  lb: z.object({
    kind: z.enum(LB_KINDS),
    node: nodeRefShape.optional(),
    port: z.number().default(APISERVER_PORT),
  }),
  // Bounds against hostile payloads; the rules below say what makes sense.
  masters: z.array(nodeRefShape).max(15),
  workers: z.array(nodeRefShape).max(500).default([]),
  options: optionsShape.prefault({}),
});

export type ClusterSpec = z.output<typeof specShape>;
export type ClusterSpecInput = z.input<typeof specShape>;

export interface Issue {
  /** Path of the field, dot-separated ('masters.1.address', 'lb.port', 'options.podCidr'). */
  field: string;
  message: string;
}

/** Boundary schema: shape and defaults, then `validateClusterSpec`'s errors as issues. */
export const ClusterSpecSchema = specShape.superRefine((spec, ctx) => {
  for (const e of validateClusterSpec(spec).errors)
    ctx.addIssue({
      code: 'custom',
      path: e.field.split('.').map((p) => (/^\d+$/.test(p) ? Number(p) : p)),
      message: e.message,
    });
});

/** A fresh form: no nodes yet, haproxy on 6443, the defaults for calico. */
export function newClusterSpec(): ClusterSpec {
  return specShape.parse({ name: '', lb: { kind: 'haproxy' }, masters: [] });
}

// ---- Rules ----

interface Located {
  node: NodeRef;
  field: string;
  role: 'master' | 'worker' | 'lb';
}

const sameHost = (a: NodeRef, b: NodeRef) =>
  normalizeAddress(a.address).toLowerCase() === normalizeAddress(b.address).toLowerCase();
const hostKey = (n: NodeRef) => `${normalizeAddress(n.address).toLowerCase()}#${n.port}`;
const where = (l: Located) => `${l.role} ${l.node.name || normalizeAddress(l.node.address)}`;

/** Ports the cluster's own components hold on a node of that role (kubeadm defaults). */
const TAKEN_PORTS: Record<'master' | 'worker', Record<number, string>> = {
  master: {
    6443: 'kube-apiserver',
    2379: 'etcd (clients)',
    2380: 'etcd (peers)',
    10250: 'the kubelet',
    10256: 'kube-proxy',
    10257: 'kube-controller-manager',
    10259: 'kube-scheduler',
  },
  worker: { 10250: 'the kubelet', 10256: 'kube-proxy' },
};

function checkNode(l: Located, errors: Issue[], warnings: Issue[]): void {
  const { node, field } = l;
  const add = (list: Issue[], f: string, message: string | null) => {
    if (message) list.push({ field: `${field}.${f}`, message });
  };
  add(errors, 'name', nodeNameProblem(node.name));
  add(errors, 'address', addressProblem(node.address));
  add(errors, 'port', portProblem(node.port));
  add(errors, 'user', userProblem(node.user));
  if (isLoopback(node.address))
    add(warnings, 'address', 'A loopback address names the desktop itself; the other nodes cannot reach it');
}

function checkNodes(spec: ClusterSpec, errors: Issue[], warnings: Issue[]): Located[] {
  const masters = spec.masters.map((node, i): Located => ({ node, field: `masters.${i}`, role: 'master' }));
  const workers = spec.workers.map((node, i): Located => ({ node, field: `workers.${i}`, role: 'worker' }));
  const all = [...masters, ...workers];
  for (const l of all) checkNode(l, errors, warnings);

  const byHost = new Map<string, Located>();
  const byName = new Map<string, Located>();
  for (const l of all) {
    const key = hostKey(l.node);
    const first = byHost.get(key);
    if (first && addressKind(l.node.address)) {
      const msg =
        first.role === 'master' && l.role === 'worker'
          ? `This worker is also a master (${first.field}); a node is one or the other`
          : `${normalizeAddress(l.node.address)}:${l.node.port} is already ${first.field} (${where(first)})`;
      errors.push({ field: `${l.field}.address`, message: msg });
    } else if (!first) byHost.set(key, l);
    const name = l.node.name;
    const other = byName.get(name);
    if (name && other) errors.push({ field: `${l.field}.name`, message: `${other.field} is already named ${name}` });
    else if (name) byName.set(name, l);
  }
  return all;
}

function checkLb(spec: ClusterSpec, all: Located[], errors: Issue[], warnings: Issue[]): void {
  const { lb } = spec;
  if (lb.kind === 'none') {
    if (spec.masters.length > 1)
      errors.push({
        field: 'lb.kind',
        message: `${spec.masters.length} masters need a load balancer in front of their kube-apiservers`,
      });
    if (lb.node) warnings.push({ field: 'lb.node', message: 'No load balancer is installed; this node is ignored' });
    return;
  }
  const portError = portProblem(lb.port);
  if (portError) errors.push({ field: 'lb.port', message: portError });
  if (!lb.node) {
    errors.push({ field: 'lb.node', message: 'Choose the node that runs the load balancer' });
    return;
  }
  const self: Located = { node: lb.node, field: 'lb.node', role: 'lb' };
  checkNode(self, errors, warnings);
  if (portError || !addressKind(lb.node.address)) return;
  if (lb.port === lb.node.port) {
    errors.push({ field: 'lb.port', message: `sshd of the load balancer node listens on ${lb.port}` });
    return;
  }
  // The LB may share a host with a master or worker, as long as it does not take their ports.
  for (const l of all.filter((x) => sameHost(x.node, lb.node!))) {
    const taken = TAKEN_PORTS[l.role as 'master' | 'worker'][lb.port];
    if (taken) {
      const hint = lb.port === APISERVER_PORT ? ' (use another port, e.g. 6643)' : '';
      errors.push({
        field: 'lb.port',
        message: `The load balancer runs on ${where(l)}, where ${taken} listens on ${lb.port}${hint}`,
      });
      return;
    }
    if (l.node.name && lb.node.name && l.node.name !== lb.node.name)
      warnings.push({ field: 'lb.node.name', message: `This host is ${l.field}, named ${l.node.name}` });
  }
  const namesake = all.find((l) => l.node.name === lb.node!.name && !sameHost(l.node, lb.node!));
  if (namesake) errors.push({ field: 'lb.node.name', message: `${namesake.field} is already named ${lb.node.name}` });
  if (lb.port >= 30000 && lb.port <= 32767 && all.some((l) => sameHost(l.node, lb.node!)))
    warnings.push({ field: 'lb.port', message: `${lb.port} is in the NodePort range (30000-32767) of this cluster` });
  if (spec.masters.length > 0 && spec.masters.every((m) => sameHost(m, lb.node!)))
    warnings.push({
      field: 'lb.node',
      message: 'The load balancer runs on the only master host: it adds no availability',
    });
}

function checkMasters(spec: ClusterSpec, errors: Issue[], warnings: Issue[]): void {
  const n = spec.masters.length;
  if (n === 0) errors.push({ field: 'masters', message: 'At least one master is required' });
  else if (n % 2 === 0)
    warnings.push({
      field: 'masters',
      message: `${n} masters tolerate no more failures than ${n - 1}: etcd needs a majority (${n / 2 + 1} of ${n})`,
    });
  if (n > MAX_RECOMMENDED_MASTERS)
    warnings.push({
      field: 'masters',
      message: `etcd recommends at most ${MAX_RECOMMENDED_MASTERS} members; more slow down writes`,
    });
}

function checkOptions(spec: ClusterSpec, all: Located[], errors: Issue[], warnings: Issue[]): void {
  const o = spec.options;
  const err = (field: string, message: string | null) => message && errors.push({ field: `options.${field}`, message });
  err('kubernetesMinor', kubernetesMinorProblem(o.kubernetesMinor));
  // kubeadm: the pod subnet must hold the controller-manager's per-node /24 and be at most 16 bits
  // wider; the service range at most 2^20 addresses (apiserver) and room for the DNS IP (.10).
  const podError = cidrProblem(o.podCidr, 'Pod CIDR', 8, 24);
  const svcError = cidrProblem(o.serviceCidr, 'Service CIDR', 12, 28);
  err('podCidr', podError);
  err('serviceCidr', svcError);
  const pod = podError ? null : parseCidr4(o.podCidr);
  const svc = svcError ? null : parseCidr4(o.serviceCidr);
  if (pod && svc && cidrsOverlap(pod, svc))
    err('serviceCidr', `The service CIDR ${o.serviceCidr} overlaps the pod CIDR ${o.podCidr}`);
  const lbNode: Located[] =
    spec.lb.kind !== 'none' && spec.lb.node ? [{ node: spec.lb.node, field: 'lb.node', role: 'lb' }] : [];
  for (const l of [...all, ...lbNode]) {
    const ip = normalizeAddress(l.node.address);
    if (!isIPv4(ip)) continue;
    for (const [cidr, field, what] of [
      [pod, 'podCidr', 'pod'],
      [svc, 'serviceCidr', 'service'],
    ] as const)
      if (cidr && cidrContains(cidr, ip))
        errors.push({
          field: `${l.field}.address`,
          message: `${ip} lies inside the ${what} CIDR ${o[field]}; pick a ${what} CIDR away from the node network`,
        });
  }
  if (pod && o.cni === 'flannel' && o.podCidr !== defaultPodCidr('flannel'))
    warnings.push({
      field: 'options.podCidr',
      message: `kube-flannel.yml configures ${defaultPodCidr('flannel')}: its net-conf.json "Network" must be changed to ${o.podCidr}`,
    });
  if (pod && all.length > pod.size / 256)
    warnings.push({
      field: 'options.podCidr',
      message: `${o.podCidr} holds ${pod.size / 256} node ranges (/24 each) for ${all.length} nodes`,
    });
  const m = o.cniManifest;
  if (m.source === 'url') {
    err('cniManifest.url', manifestUrlProblem(m.url));
    const other = o.cni === 'calico' ? 'flannel' : 'calico';
    if (m.url.toLowerCase().includes(other))
      warnings.push({
        field: 'options.cniManifest.url',
        message: `This looks like a ${other} manifest, but the CNI is ${o.cni}`,
      });
    else if (m.url.startsWith('http:'))
      warnings.push({ field: 'options.cniManifest.url', message: 'The manifest is fetched over plain http' });
  } else {
    const r = LocalPath.safeParse(m.path);
    if (!r.success) err('cniManifest.path', r.error.issues[0].message);
  }
}

/** Every error and warning of the wizard's form, in field order. */
export function validateClusterSpec(spec: ClusterSpec): { errors: Issue[]; warnings: Issue[] } {
  const errors: Issue[] = [];
  const warnings: Issue[] = [];
  const name = ClusterName.safeParse(spec.name);
  if (!name.success) errors.push({ field: 'name', message: name.error.issues[0].message });
  checkMasters(spec, errors, warnings);
  const all = checkNodes(spec, errors, warnings);
  checkLb(spec, all, errors, warnings);
  checkOptions(spec, all, errors, warnings);
  return { errors, warnings };
}
