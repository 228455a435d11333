// Import of the old tool's `setup.conf` (github.com/ratulb/k8s-easy-install) into the cluster wizard.
//
// The tool reads it line by line with `while IFS="=" read -r key value` (utils.sh `read_setup`),
// skips lines starting with `#`, and matches these keys exactly:
//
//   masters=m-1 m-2            hosts (names or IPs) given to ssh; white-space separated
//   workers=w-1                idem; may be empty
//   master=                    older single-master key (kept, emptied by the menu)
//   loadbalancer=lb            empty: no load balancer
//   lb_type=envoy              haproxy | nginx | envoy
//   lb_port=6443               6643 when the LB shares a host with a master
//   pod_network_cidr=          empty: kubeadm init without --pod-network-cidr
//   sleep_time=3  cri_containerd_cni_ver=1.3.4  wait_interval_post_join_cmd=42   (script timing)
//
// This parser takes the same lines and is lenient where a hand edit may stray: spaces around `=`,
// `export`, quotes, inline `# comments`, commas, `( … )` arrays, `user@host`, `host:port` (SSH
// port; for `loadbalancer` the LB port, as the tool's menu asks "address:port") and `name:ip`
// (the form of kube-etcd-switch's own extra/setup-kube-cluster.sh). It never evaluates anything:
// a value with `$`, backticks or `$(…)` is refused with a warning.
import { UserName } from './domain';
import {
  addressKind,
  defaultCniManifestUrl,
  DEFAULT_KUBERNETES_MINOR,
  DEFAULT_SERVICE_CIDR,
  isLoopback,
  nodeNameProblem,
  parseCidr4,
  portProblem,
  APISERVER_PORT,
  type ClusterSpec,
  type LbKind,
  type NodeRef,
} from './cluster-spec';

export interface SetupConfImport {
  spec: Partial<ClusterSpec>;
  /** What was skipped or guessed, each starting with `line N:` when a line is to blame. */
  warnings: string[];
}

const LIST_KEYS = ['masters', 'workers', 'master'] as const;
const KNOWN_KEYS = new Set<string>([...LIST_KEYS, 'loadbalancer', 'lb_type', 'lb_port', 'pod_network_cidr']);
/** Keys of the old tool's scripts that mean nothing to the app. */
const TOOL_ONLY_KEYS = new Set(['sleep_time', 'cri_containerd_cni_ver', 'wait_interval_post_join_cmd']);
const LB_TYPES = new Set(['haproxy', 'nginx', 'envoy']);

interface Entry {
  line: number;
  words: string[];
}

class Warnings {
  readonly list: string[] = [];
  at(line: number, message: string): void {
    this.list.push(`line ${line}: ${message}`);
  }
  add(message: string): void {
    this.list.push(message);
  }
}

/** One quoted or bare word from the start of `s` (no escapes in single quotes, `\x` in double). */
function takeWord(s: string): { word: string; rest: string } | { error: string } {
  const q = s[0];
  if (q !== '"' && q !== "'") {
    const m = /^[^\s"',]+/.exec(s);
    return { word: m![0], rest: s.slice(m![0].length) };
  }
  let word = '';
  for (let i = 1; i < s.length; i++) {
    if (s[i] === q) return { word, rest: s.slice(i + 1) };
    if (q === '"' && s[i] === '\\' && i + 1 < s.length) i++;
    word += s[i];
  }
  return { error: `unterminated ${q === '"' ? 'double' : 'single'} quote` };
}

/** The words of a value: quotes removed, `#` comments cut, `( … )` unwrapped, commas as spaces. */
function splitValue(raw: string): string[] | { error: string } {
  let s = raw.trim();
  if (s.startsWith('(')) {
    const close = s.lastIndexOf(')');
    if (close < 0) return { error: 'unterminated "("' };
    const after = s.slice(close + 1).trim();
    if (after && !after.startsWith('#')) return { error: `unexpected text after ")": ${after}` };
    s = s.slice(1, close);
  }
  const words: string[] = [];
  while ((s = s.replace(/^[\s,]+/, ''))) {
    if (s.startsWith('#')) break;
    const w = takeWord(s);
    if ('error' in w) return w;
    words.push(...w.word.split(/[\s,]+/).filter(Boolean));
    s = w.rest;
    if (s && !/^[\s,]/.test(s)) {
      // foo"bar": shell would join them; a host list never needs it
      return { error: `unexpected quote in ${JSON.stringify(raw.trim())}` };
    }
  }
  return words;
}

function readLines(text: string, w: Warnings): Map<string, Entry> {
  const entries = new Map<string, Entry>();
  text.split('\n').forEach((rawLine, i) => {
    const line = i + 1;
    const s = rawLine.replace(/\r$/, '').trim();
    if (!s || s.startsWith('#')) return;
    const m = /^(?:export\s+)?([^=\s]+)\s*=(.*)$/.exec(s);
    if (!m) {
      w.at(line, `not a key=value line; ignored`);
      return;
    }
    const [, key, raw] = m;
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) {
      w.at(line, `${JSON.stringify(key)} is not a setting name; ignored`);
      return;
    }
    if (TOOL_ONLY_KEYS.has(key)) {
      w.at(line, `${key} is a setting of the old tool's scripts; the app does not need it`);
      return;
    }
    if (!KNOWN_KEYS.has(key)) {
      w.at(line, `unknown setting ${key}; ignored`);
      return;
    }
    if (/[$`]/.test(raw)) {
      w.at(line, `${key}: shell expansions ($, \`) are not evaluated; ignored`);
      return;
    }
    const words = splitValue(raw);
    if (!Array.isArray(words)) {
      w.at(line, `${key}: ${words.error}; ignored`);
      return;
    }
    const before = entries.get(key);
    if (before) w.at(line, `${key} is set again (first on line ${before.line}); the last one counts, as in the tool`);
    entries.set(key, { line, words });
  });
  return entries;
}

interface Host {
  address: string;
  port?: number;
  user?: string;
  name?: string;
}

/** `host`, `user@host`, `host:port`, `[v6]:port`, bare IPv6, `name:ip`. */
function parseHost(word: string): Host | { error: string } {
  let rest = word;
  let user: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    user = rest.slice(0, at);
    rest = rest.slice(at + 1);
    const u = UserName.safeParse(user);
    if (!u.success) return { error: `${JSON.stringify(user)} is not a user name` };
  }
  let address = rest;
  let port: number | undefined;
  let name: string | undefined;
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(rest);
  const colons = (rest.match(/:/g) ?? []).length;
  if (bracket) [address, port] = [bracket[1], bracket[2] === undefined ? undefined : Number(bracket[2])];
  else if (colons === 1) {
    const [a, b] = rest.split(':');
    if (/^\d+$/.test(b)) [address, port] = [a, Number(b)];
    else [name, address] = [a.toLowerCase(), b];
  }
  const kind = addressKind(address);
  if (!kind || (bracket && kind !== 'ipv6'))
    return { error: `${JSON.stringify(word)} is not a host name or IP address` };
  if (port !== undefined && portProblem(port)) return { error: `${JSON.stringify(word)} has an invalid port` };
  if (name !== undefined && nodeNameProblem(name))
    return { error: `${JSON.stringify(word)}: ${name} is not a node name` };
  return { address, port, user, name };
}

class Names {
  private readonly used = new Set<string>();
  /** The host name itself when it makes a node name, else `<role>-<n>`; unique. */
  pick(host: Host, role: string, index: number): string {
    let base = host.name;
    if (!base && addressKind(host.address) === 'hostname') {
      const h = host.address.toLowerCase().replace(/\.$/, '');
      if (!nodeNameProblem(h)) base = h;
    }
    base ??= role === 'lb' ? 'lb' : `${role}-${index + 1}`;
    let name = base;
    for (let i = 2; this.used.has(name); i++) name = `${base}-${i}`;
    this.used.add(name);
    return name;
  }
}

function hostsOf(key: string, e: Entry | undefined, w: Warnings): Host[] {
  const out: Host[] = [];
  const seen = new Set<string>();
  for (const word of e?.words ?? []) {
    const h = parseHost(word);
    if ('error' in h) {
      w.at(e!.line, `${key}: ${h.error}; skipped`);
      continue;
    }
    const id = `${h.address.toLowerCase()}#${h.port ?? 22}`;
    if (seen.has(id)) {
      w.at(e!.line, `${key}: ${word} is listed twice; taken once`);
      continue;
    }
    seen.add(id);
    if (isLoopback(h.address))
      w.at(e!.line, `${key}: ${word} is the machine the old tool ran on; put that machine's address instead`);
    out.push(h);
  }
  return out;
}

function toNodes(hosts: Host[], role: string, names: Names): NodeRef[] {
  return hosts.map((h, i) => ({
    name: names.pick(h, role, i),
    address: h.address,
    port: h.port ?? 22,
    user: h.user ?? 'root',
  }));
}

function single(key: string, e: Entry | undefined, w: Warnings): string | undefined {
  if (!e || e.words.length === 0) return undefined;
  if (e.words.length > 1) w.at(e.line, `${key} takes one value; ${e.words[0]} is used`);
  return e.words[0];
}

function masterHosts(entries: Map<string, Entry>, w: Warnings): Host[] {
  const masters = hostsOf('masters', entries.get('masters'), w);
  const legacy = entries.get('master');
  if (!legacy?.words.length) return masters;
  if (!masters.length) return hostsOf('master', legacy, w);
  if (legacy.words.join(' ') !== entries.get('masters')!.words.join(' '))
    w.at(legacy.line, `master (the older single-master setting) is ignored because masters is set`);
  return masters;
}

function lbPort(entries: Map<string, Entry>, w: Warnings): number | undefined {
  const e = entries.get('lb_port');
  const v = single('lb_port', e, w);
  if (v === undefined) return undefined;
  const n = /^\d{1,5}$/.test(v) ? Number(v) : NaN;
  if (portProblem(n)) {
    w.at(e!.line, `lb_port ${JSON.stringify(v)} is not a port; ${APISERVER_PORT} is used`);
    return undefined;
  }
  return n;
}

function readLb(entries: Map<string, Entry>, masters: NodeRef[], names: Names, w: Warnings): ClusterSpec['lb'] {
  const typeEntry = entries.get('lb_type');
  const typeWord = single('lb_type', typeEntry, w)?.toLowerCase();
  let kind: LbKind | undefined;
  if (typeWord && LB_TYPES.has(typeWord)) kind = typeWord as LbKind;
  else if (typeWord) w.at(typeEntry!.line, `lb_type ${JSON.stringify(typeWord)} is not haproxy, nginx or envoy`);

  let port = lbPort(entries, w);
  const lbEntry = entries.get('loadbalancer');
  const [host] = hostsOf('loadbalancer', lbEntry && { ...lbEntry, words: lbEntry.words.slice(0, 1) }, w);
  if ((lbEntry?.words.length ?? 0) > 1)
    w.at(lbEntry!.line, `loadbalancer takes one host; ${lbEntry!.words[0]} is used`);
  if (!host) {
    if (kind) w.at(typeEntry!.line, `lb_type is ${kind} but loadbalancer is empty: choose the load balancer node`);
    return { kind: kind ?? 'none', port: port ?? APISERVER_PORT };
  }
  // The menu asks for the LB as "address:port": here the port is where the LB listens.
  if (host.port !== undefined) {
    if (port !== undefined && port !== host.port)
      w.at(lbEntry!.line, `loadbalancer names port ${host.port} but lb_port is ${port}; ${host.port} is used`);
    port = host.port;
  }
  if (!kind) {
    w.at(lbEntry!.line, `loadbalancer is set but lb_type is not; haproxy is assumed`);
    kind = 'haproxy';
  }
  const same = masters.find((m) => m.address.toLowerCase() === host.address.toLowerCase());
  const node: NodeRef = same
    ? { ...same, user: host.user ?? same.user }
    : {
        name: names.pick({ ...host, port: undefined }, 'lb', 0),
        address: host.address,
        port: 22,
        user: host.user ?? 'root',
      };
  return { kind, node, port: port ?? APISERVER_PORT };
}

function readOptions(entries: Map<string, Entry>, w: Warnings): ClusterSpec['options'] | undefined {
  const e = entries.get('pod_network_cidr');
  const v = single('pod_network_cidr', e, w);
  if (v === undefined) return undefined;
  if (!parseCidr4(v)) {
    w.at(e!.line, `pod_network_cidr ${JSON.stringify(v)} is not an IPv4 CIDR; the default is kept`);
    return undefined;
  }
  // The old tool installs Calico in VXLAN mode, as the app does by default.
  return {
    kubernetesMinor: DEFAULT_KUBERNETES_MINOR,
    podCidr: v,
    serviceCidr: DEFAULT_SERVICE_CIDR,
    cni: 'calico',
    cniManifest: { source: 'url', url: defaultCniManifestUrl('calico') },
  };
}

/** The wizard fields a `setup.conf` fills, and what could not be taken over. Never executes it. */
export function parseSetupConf(text: string): SetupConfImport {
  const w = new Warnings();
  const entries = readLines(text, w);
  const names = new Names();
  const masters = toNodes(masterHosts(entries, w), 'master', names);
  const workers = toNodes(hostsOf('workers', entries.get('workers'), w), 'worker', names);
  if (!masters.length) w.add('no masters: setup.conf names none (masters=…)');
  const spec: Partial<ClusterSpec> = { masters, workers, lb: readLb(entries, masters, names, w) };
  const options = readOptions(entries, w);
  if (options) spec.options = options;
  return { spec, warnings: w.list };
}
