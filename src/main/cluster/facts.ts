// Turning discover.sh output into facts, and facts into the cluster's mode. Pure functions, so
// every rule here is unit-tested without a cluster.
import {
  readApiserverManifest,
  readEtcdManifest,
  type ApiserverManifestInfo,
  type EtcdManifestInfo,
} from '../etcd/manifests';

/** kubeadm's default etcd PKI folder (`certificatesDir` + /etcd). */
export const DEFAULT_ETCD_PKI_DIR = '/etc/kubernetes/pki/etcd';

export interface NodeFacts {
  hostname: string;
  /** Where kubeadm's etcd PKI is on this node (discover.sh reads it from the manifests). */
  etcdPkiDir: string;
  /** The kubelet's `staticPodPath` (/var/lib/kubelet/config.yaml); null when unreadable. */
  staticPodPath: string | null;
  /** /etc/machine-id ("" when absent): with the hostname, tells one machine reached twice. */
  machineId: string;
  /** `systemctl is-active` of kubelet, containerd and the load balancers ("" when not known). */
  units: Record<'kubelet' | 'containerd' | 'haproxy' | 'nginx' | 'envoy', string>;
  /** Every address of the node's interfaces (`hostname -I`). */
  addresses: string[];
  user: string;
  /** `uname -m` (x86_64, aarch64 …): which etcd release archive fits this node. */
  machine: string | null;
  etcdManifest: string | null;
  apiserverManifest: string | null;
  etcd: EtcdManifestInfo | null;
  apiserver: ApiserverManifestInfo | null;
  adminConfServer: string | null;
  etcdCaCert: string | null;
  etcdCaKeyPresent: boolean;
  etcdUnit: string | null;
  etcdUnitActive: string | null;
  parkedManifests: string[];
  /** The kube-apiserver manifest the app parked (stopped), when it is parked. */
  parkedApiserver: ApiserverManifestInfo | null;
  tools: { etcd: string | null; etcdctl: string | null; etcdutl: string | null; kubectl: string | null };
  versions: { etcd: string | null; etcdctl: string | null; etcdutl: string | null };
  listening: number[];
  /** Problems reading this node's files (bad YAML, missing flags), shown to the user. */
  problems: string[];
}

export class DiscoveryError extends Error {
  readonly code = 'DISCOVERY_FAILED';
}

const fromB64 = (s: string | undefined): string | null => (s ? Buffer.from(s, 'base64').toString('utf8') : null);
const orNull = (s: string | undefined): string | null => (s ? s : null);

export function parseDiscovery(output: string): NodeFacts {
  const begin = output.indexOf('KES_BEGIN\n');
  const end = output.indexOf('\nKES_END');
  if (begin < 0 || end < 0)
    throw new DiscoveryError('discover.sh printed no KES_BEGIN/KES_END block (was the script edited?)');
  const kv = new Map<string, string>();
  for (const line of output.slice(begin + 10, end).split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) kv.set(line.slice(0, i), line.slice(i + 1));
  }
  const problems: string[] = [];
  const etcdManifest = fromB64(kv.get('etcd_manifest'));
  const apiserverManifest = fromB64(kv.get('apiserver_manifest'));
  let etcd: EtcdManifestInfo | null = null;
  let apiserver: ApiserverManifestInfo | null = null;
  if (etcdManifest) {
    try {
      etcd = readEtcdManifest(etcdManifest);
    } catch (e) {
      problems.push(`etcd.yaml: ${(e as Error).message}`);
    }
  }
  if (apiserverManifest) {
    try {
      apiserver = readApiserverManifest(apiserverManifest);
    } catch (e) {
      problems.push(`kube-apiserver.yaml: ${(e as Error).message}`);
    }
  }
  let parkedApiserver: ApiserverManifestInfo | null = null;
  const parkedApiserverManifest = fromB64(kv.get('parked_apiserver_manifest'));
  if (parkedApiserverManifest) {
    try {
      parkedApiserver = readApiserverManifest(parkedApiserverManifest);
    } catch (e) {
      problems.push(`parked kube-apiserver.yaml: ${(e as Error).message}`);
    }
  }
  return {
    hostname: kv.get('hostname') ?? '',
    etcdPkiDir: kv.get('etcd_pki_dir') || DEFAULT_ETCD_PKI_DIR,
    staticPodPath: orNull(kv.get('static_pod_path')),
    machineId: kv.get('machine_id') ?? '',
    units: {
      kubelet: kv.get('unit_kubelet') ?? '',
      containerd: kv.get('unit_containerd') ?? '',
      haproxy: kv.get('unit_haproxy') ?? '',
      nginx: kv.get('unit_nginx') ?? '',
      envoy: kv.get('unit_envoy') ?? '',
    },
    addresses: (kv.get('addresses') ?? '').split(/\s+/).filter(Boolean),
    user: kv.get('user') ?? '',
    machine: orNull(kv.get('machine')),
    etcdManifest,
    apiserverManifest,
    etcd,
    apiserver,
    adminConfServer: orNull(kv.get('admin_conf_server')),
    etcdCaCert: fromB64(kv.get('etcd_ca_cert')),
    etcdCaKeyPresent: kv.get('etcd_ca_key_present') === '1',
    etcdUnit: fromB64(kv.get('etcd_unit')),
    etcdUnitActive: orNull(kv.get('etcd_unit_active')),
    parkedManifests: (kv.get('parked_manifests') ?? '').split(/\s+/).filter(Boolean),
    parkedApiserver,
    tools: {
      etcd: orNull(kv.get('tool_etcd')),
      etcdctl: orNull(kv.get('tool_etcdctl')),
      etcdutl: orNull(kv.get('tool_etcdutl')),
      kubectl: orNull(kv.get('tool_kubectl')),
    },
    versions: {
      etcd: orNull(kv.get('version_etcd')),
      etcdctl: orNull(kv.get('version_etcdctl')),
      etcdutl: orNull(kv.get('version_etcdutl')),
    },
    listening: (kv.get('listening') ?? '').split(/\s+/).filter(Boolean).map(Number),
    problems,
  };
}

/** `name=https://host:2380,…` → members in order. */
export function parseInitialCluster(s: string): { name: string; peerUrl: string; host: string }[] {
  return s
    .split(',')
    .filter(Boolean)
    .map((part) => {
      const i = part.indexOf('=');
      if (i <= 0) throw new DiscoveryError(`Malformed --initial-cluster entry: ${part}`);
      const peerUrl = part.slice(i + 1);
      return { name: part.slice(0, i), peerUrl, host: new URL(peerUrl).hostname.replace(/^\[|\]$/g, '') };
    });
}

/** Is this etcd endpoint the stacked member on the master itself? */
export function isLocalEtcd(url: string, masterAddresses: string[]): boolean {
  try {
    const h = new URL(url).hostname.replace(/^\[|\]$/g, '');
    return h === '127.0.0.1' || h === 'localhost' || h === '::1' || masterAddresses.includes(h);
  } catch {
    return false;
  }
}

export type ModeName =
  | 'embedded-up'
  | 'external-up'
  | 'down (configured for embedded)'
  | 'down (configured for external)'
  | 'mixed'
  | 'unknown';

export interface MasterModeInput {
  name: string;
  address: string;
  /** --etcd-servers of its apiserver (null: no apiserver manifest found). */
  etcdServers: string[] | null;
  apiserverReady: boolean;
}

export interface ModeReport {
  mode: ModeName;
  details: string[];
}

/**
 * The cluster mode from what every master's apiserver is configured to use and whether it is
 * ready. Any disagreement between masters is "mixed", with the details that show how.
 */
export function classifyMode(masters: MasterModeInput[], masterAddresses: string[]): ModeReport {
  if (masters.length === 0) return { mode: 'unknown', details: ['No masters known: initialize the cluster first'] };
  const details: string[] = [];
  const configured = masters.map((m) => {
    if (!m.etcdServers) {
      details.push(`${m.name}: no kube-apiserver manifest`);
      return 'none';
    }
    const local = m.etcdServers.every((u) => isLocalEtcd(u, masterAddresses));
    const external = m.etcdServers.every((u) => !isLocalEtcd(u, masterAddresses));
    const kind = local ? 'embedded' : external ? 'external' : 'both';
    details.push(
      `${m.name}: apiserver uses ${kind} etcd (${m.etcdServers.join(', ')}), ${m.apiserverReady ? 'ready' : 'not ready'}`,
    );
    return kind;
  });
  const kinds = new Set(configured);
  if (kinds.size !== 1 || kinds.has('both') || kinds.has('none')) return { mode: 'mixed', details };
  const kind = configured[0] as 'embedded' | 'external';
  const anyReady = masters.some((m) => m.apiserverReady);
  if (anyReady) return { mode: kind === 'embedded' ? 'embedded-up' : 'external-up', details };
  return { mode: kind === 'embedded' ? 'down (configured for embedded)' : 'down (configured for external)', details };
}
