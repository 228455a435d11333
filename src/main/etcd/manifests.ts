// Reading and editing kubeadm's static-pod manifests (etcd.yaml, kube-apiserver.yaml) with the
// `yaml` library's document model, so comments, key order and formatting survive an edit and the
// diff shown in a plan touches only the lines we meant to change.
import { parseDocument, isMap, isSeq, type Document, YAMLSeq, YAMLMap } from 'yaml';

export class ManifestError extends Error {
  readonly code = 'MANIFEST_INVALID';
  constructor(message: string) {
    super(message);
    this.name = 'ManifestError';
  }
}

/**
 * Serialize in the source's own style: kubeadm writes block sequences flush with their parent key
 * ("  containers:\n  - command:"); other tools indent them. Long flags are never folded.
 */
function dump(doc: Document, source: string): string {
  const lines = source.split('\n');
  let indentSeq = true;
  for (let i = 0; i + 1 < lines.length; i++) {
    const key = /^(\s*)[^\s#-][^:]*:\s*$/.exec(lines[i]);
    const item = /^(\s*)- /.exec(lines[i + 1]);
    if (key && item) {
      indentSeq = item[1].length > key[1].length;
      break;
    }
  }
  return doc.toString({ indentSeq, lineWidth: 0 });
}

function load(text: string, what: string): Document {
  const doc = parseDocument(text);
  if (doc.errors.length) throw new ManifestError(`${what}: ${doc.errors[0].message}`);
  if (doc.get('kind') !== 'Pod') throw new ManifestError(`${what}: not a Pod manifest`);
  return doc;
}

/** The container's command list (kubeadm puts the binary and every flag there). */
function commandOf(doc: Document, container: string, what: string): YAMLSeq {
  const containers = doc.getIn(['spec', 'containers']);
  if (!isSeq(containers)) throw new ManifestError(`${what}: spec.containers missing`);
  const c = containers.items.find((x) => isMap(x) && x.get('name') === container) ?? containers.items[0];
  if (!isMap(c)) throw new ManifestError(`${what}: container ${container} missing`);
  const cmd = c.get('command');
  if (!isSeq(cmd)) throw new ManifestError(`${what}: container ${container} has no command list`);
  return cmd as YAMLSeq;
}

function containerOf(doc: Document, container: string): YAMLMap | undefined {
  const containers = doc.getIn(['spec', 'containers']);
  if (!isSeq(containers)) return undefined;
  return containers.items.find((x) => isMap(x) && x.get('name') === container) as YAMLMap | undefined;
}

/** All `--flag=value` entries of a command as a map (flags without `=` map to ''). */
export function flagsOf(cmd: YAMLSeq): Map<string, string> {
  const out = new Map<string, string>();
  for (const item of cmd.items) {
    const s = String((item as { value?: unknown }).value ?? item);
    const m = /^--([^=]+)(?:=(.*))?$/s.exec(s);
    if (m) out.set(m[1], m[2] ?? '');
  }
  return out;
}

/** Set `--name=value`, replacing the existing entry in place or appending a new one. */
function setFlag(doc: Document, cmd: YAMLSeq, name: string, value: string): void {
  const idx = cmd.items.findIndex((item) =>
    String((item as { value?: unknown }).value ?? item).startsWith(`--${name}=`),
  );
  const node = doc.createNode(`--${name}=${value}`);
  if (idx >= 0) cmd.items[idx] = node;
  else cmd.items.push(node);
}

export interface EtcdManifestInfo {
  name: string;
  dataDir: string;
  dataHostPath?: string;
  initialCluster: string;
  initialClusterState: string;
  initialClusterToken?: string;
  listenClientUrls: string;
  advertiseClientUrls: string;
  initialAdvertisePeerUrls: string;
  certFile: string;
  keyFile: string;
  trustedCaFile: string;
  peerCertFile: string;
  peerKeyFile: string;
  peerTrustedCaFile: string;
  image?: string;
  /** The etcd version the member runs, from its image tag (see etcdVersionOfImage). */
  version?: string;
}

/**
 * The etcd version a stacked member runs, from its image in etcd.yaml: kubeadm writes
 * `registry.k8s.io/etcd:3.6.16-0` (the `-0` is the image's own revision); mirrors may write
 * `…/etcd:v3.5.9` or add `@sha256:…`. null for an image without a version tag.
 */
export function etcdVersionOfImage(image: string | null | undefined): string | null {
  const ref = (image ?? '').split('@')[0];
  const tag = ref.slice(ref.lastIndexOf('/') + 1).split(':')[1];
  return /^v?(\d+\.\d+\.\d+)(?:-[0-9A-Za-z.]+)?$/.exec(tag ?? '')?.[1] ?? null;
}

export function readEtcdManifest(text: string): EtcdManifestInfo {
  const doc = load(text, 'etcd.yaml');
  const f = flagsOf(commandOf(doc, 'etcd', 'etcd.yaml'));
  const need = (k: string) => {
    const v = f.get(k);
    if (v === undefined) throw new ManifestError(`etcd.yaml: --${k} is missing`);
    return v;
  };
  const image = containerOf(doc, 'etcd')?.get('image') as string | undefined;
  return {
    name: need('name'),
    dataDir: need('data-dir'),
    dataHostPath: etcdDataVolume(doc)?.get('path') as string | undefined,
    initialCluster: need('initial-cluster'),
    initialClusterState: f.get('initial-cluster-state') ?? 'new',
    initialClusterToken: f.get('initial-cluster-token'),
    listenClientUrls: need('listen-client-urls'),
    advertiseClientUrls: need('advertise-client-urls'),
    initialAdvertisePeerUrls: need('initial-advertise-peer-urls'),
    certFile: need('cert-file'),
    keyFile: need('key-file'),
    trustedCaFile: need('trusted-ca-file'),
    peerCertFile: need('peer-cert-file'),
    peerKeyFile: need('peer-key-file'),
    peerTrustedCaFile: need('peer-trusted-ca-file'),
    image,
    version: etcdVersionOfImage(image) ?? undefined,
  };
}

/** The hostPath map of the `etcd-data` volume. */
function etcdDataVolume(doc: Document): YAMLMap | undefined {
  const vols = doc.getIn(['spec', 'volumes']);
  if (!isSeq(vols)) return undefined;
  const v = vols.items.find((x) => isMap(x) && x.get('name') === 'etcd-data') as YAMLMap | undefined;
  const hp = v?.get('hostPath');
  return isMap(hp) ? (hp as YAMLMap) : undefined;
}

export interface EtcdManifestEdit {
  /** New data dir: changes --data-dir, the etcd-data hostPath and its mountPath (etcd-io/website#788). */
  dataDir?: string;
  initialClusterToken?: string;
  initialCluster?: string;
  initialClusterState?: 'new' | 'existing';
}

// etcd's initial corruption check has two spellings: `--experimental-initial-corrupt-check=true`
// (etcd 3.4/3.5; kubeadm up to 1.33) and the feature gate `InitialCorruptCheck` (etcd 3.6, which
// deprecates the old flag; kubeadm 1.34+ writes `--feature-gates=InitialCorruptCheck=true`).
const CORRUPT_CHECK = 'experimental-initial-corrupt-check';
const FEATURE_GATES = 'feature-gates';
const CORRUPT_GATE = 'InitialCorruptCheck';

/** The value of one gate in a `--feature-gates` list (`A=true,B=false`), as etcd parses it. */
export function featureGate(list: string | undefined, gate: string): string | undefined {
  for (const part of (list ?? '').split(',')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === gate) return part.slice(i + 1).trim();
  }
  return undefined;
}

/** The list with only `gate` set to `value` (entries kept verbatim and in order; appended if absent). */
export function setFeatureGate(list: string | undefined, gate: string, value: string): string {
  const parts = (list ?? '').split(',').filter((p) => p.trim() !== '');
  let found = false;
  const out = parts.map((p) => {
    const i = p.indexOf('=');
    if (i > 0 && p.slice(0, i).trim() === gate) {
      found = true;
      return `${gate}=${value}`;
    }
    return p;
  });
  if (!found) out.push(`${gate}=${value}`);
  return out.join(',');
}

const isOn = (v: string | undefined) => v?.trim().toLowerCase() === 'true'; // kubeadm writes =true

/**
 * etcd.yaml for the first start of members just rebuilt from one verified snapshot: the same,
 * with etcd's initial corruption check off — or null when it is not on. That check runs before a
 * member serves its peers and asks each peer for a hash with a ~7 s timeout, so members that all
 * start together wait ~7 s per peer for one another (measured: 14 s of a 3-member restart) to
 * compare copies that are identical by construction. The caller puts the user's manifest back
 * afterwards, one member at a time. Both spellings are turned off where they are on; other
 * feature gates stay as they are.
 */
export function firstStartManifest(text: string): string | null {
  const doc = load(text, 'etcd.yaml');
  const cmd = commandOf(doc, 'etcd', 'etcd.yaml');
  const flags = flagsOf(cmd);
  const oldOn = isOn(flags.get(CORRUPT_CHECK));
  const gates = flags.get(FEATURE_GATES);
  const gateOn = isOn(featureGate(gates, CORRUPT_GATE));
  if (!oldOn && !gateOn) return null;
  if (oldOn) setFlag(doc, cmd, CORRUPT_CHECK, 'false');
  if (gateOn) setFlag(doc, cmd, FEATURE_GATES, setFeatureGate(gates, CORRUPT_GATE, 'false'));
  return dump(doc, text);
}

export function editEtcdManifest(text: string, edit: EtcdManifestEdit): string {
  const doc = load(text, 'etcd.yaml');
  const cmd = commandOf(doc, 'etcd', 'etcd.yaml');
  if (edit.dataDir !== undefined) {
    if (!edit.dataDir.startsWith('/')) throw new ManifestError('The data dir must be an absolute path');
    const old = flagsOf(cmd).get('data-dir');
    setFlag(doc, cmd, 'data-dir', edit.dataDir);
    const hp = etcdDataVolume(doc);
    if (!hp) throw new ManifestError('etcd.yaml: no etcd-data hostPath volume');
    hp.set('path', edit.dataDir);
    const mounts = containerOf(doc, 'etcd')?.get('volumeMounts');
    if (isSeq(mounts)) {
      for (const m of mounts.items) {
        if (isMap(m) && (m.get('name') === 'etcd-data' || m.get('mountPath') === old)) m.set('mountPath', edit.dataDir);
      }
    }
  }
  if (edit.initialClusterToken !== undefined) setFlag(doc, cmd, 'initial-cluster-token', edit.initialClusterToken);
  if (edit.initialCluster !== undefined) setFlag(doc, cmd, 'initial-cluster', edit.initialCluster);
  if (edit.initialClusterState !== undefined) setFlag(doc, cmd, 'initial-cluster-state', edit.initialClusterState);
  return dump(doc, text);
}

export interface ApiserverManifestInfo {
  etcdServers: string[];
  etcdCaFile?: string;
  etcdCertFile?: string;
  etcdKeyFile?: string;
  advertiseAddress?: string;
  securePort: number;
}

export function readApiserverManifest(text: string): ApiserverManifestInfo {
  const doc = load(text, 'kube-apiserver.yaml');
  const f = flagsOf(commandOf(doc, 'kube-apiserver', 'kube-apiserver.yaml'));
  const servers = f.get('etcd-servers');
  if (!servers) throw new ManifestError('kube-apiserver.yaml: --etcd-servers is missing');
  return {
    etcdServers: servers.split(',').filter(Boolean),
    etcdCaFile: f.get('etcd-cafile'),
    etcdCertFile: f.get('etcd-certfile'),
    etcdKeyFile: f.get('etcd-keyfile'),
    advertiseAddress: f.get('advertise-address'),
    securePort: Number(f.get('secure-port') ?? 6443),
  };
}

/** Point an apiserver at other etcd endpoints; the etcd client cert flags are kept as they are. */
export function editApiserverEtcdServers(text: string, servers: string[]): string {
  if (servers.length === 0) throw new ManifestError('At least one etcd server is needed');
  for (const s of servers) if (!/^https?:\/\/[^\s,]+$/.test(s)) throw new ManifestError(`Not an etcd URL: ${s}`);
  const doc = load(text, 'kube-apiserver.yaml');
  setFlag(doc, commandOf(doc, 'kube-apiserver', 'kube-apiserver.yaml'), 'etcd-servers', servers.join(','));
  return dump(doc, text);
}

export { unifiedDiff } from '../util/diff';
