// kubeadm's stored configuration kept true. kubeadm keeps the cluster's ClusterConfiguration in the
// ConfigMap kube-system/kubeadm-config, and `kubeadm upgrade` (and `join --control-plane`) render
// etcd.yaml and kube-apiserver.yaml from it. After the app moves etcd — a restore into new data
// dirs, a switch to the external etcd or back, a state brought back — it must say where etcd
// really is, or the next upgrade silently puts the cluster back on the old layout.
//
// Pure functions: the live layout from what the masters run, and the ClusterConfiguration (and
// ConfigMap) rendered for it. Everything else in the YAML is kept as it is (`yaml` document model:
// key order, comments and formatting survive). The I/O is in etcd/kubeadm-config-step.ts.
import { isMap, isScalar, parseDocument, type Document, type YAMLMap } from 'yaml';
import { isLocalEtcd } from './facts';

export const KUBEADM_CONFIG_API_PATH = '/api/v1/namespaces/kube-system/configmaps/kubeadm-config';
export const CLUSTER_CONFIGURATION = 'ClusterConfiguration';
/**
 * kubeadm cannot hold etcd.local and etcd.external at once. Switching to external keeps the
 * stacked member's settings (imageTag, extraArgs, SANs …) in this annotation of the ConfigMap, so
 * the way back restores them instead of kubeadm's defaults.
 */
export const LOCAL_ETCD_ANNOTATION = 'kube-etcd-switch/etcd-local';

export type EtcdLayout =
  | { kind: 'stacked'; dataDir: string }
  | { kind: 'external'; endpoints: string[]; caFile: string; certFile: string; keyFile: string };

export class KubeadmConfigError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'KubeadmConfigError';
  }
}

/** What one master runs, from its active manifests. */
export interface LiveMaster {
  name: string;
  address: string;
  /** From the active kube-apiserver.yaml (null: none active). */
  apiserver: { etcdServers: string[]; etcdCaFile?: string; etcdCertFile?: string; etcdKeyFile?: string } | null;
  /** --data-dir of the active etcd.yaml (null: no stacked member runs). */
  etcdDataDir: string | null;
}

/**
 * The layout kubeadm should describe, from what every master runs: stacked when every apiserver
 * uses its local member (data dir from etcd.yaml), external when none does (endpoints and client
 * certificate files exactly as the apiservers name them). Masters that disagree are refused.
 */
export function layoutFromLive(masters: LiveMaster[]): { layout: EtcdLayout; warnings: string[] } {
  if (!masters.length) throw new KubeadmConfigError('LAYOUT_UNKNOWN', 'No masters known');
  const addresses = masters.map((m) => m.address);
  const warnings: string[] = [];
  const kinds = masters.map((m) => {
    if (!m.apiserver) throw new KubeadmConfigError('LAYOUT_UNKNOWN', `${m.name} runs no kube-apiserver.yaml`);
    const local = m.apiserver.etcdServers.filter((u) => isLocalEtcd(u, addresses)).length;
    return local === m.apiserver.etcdServers.length ? 'stacked' : local === 0 ? 'external' : 'mixed';
  });
  const describe = () => masters.map((m, i) => `${m.name}: ${kinds[i]}`).join(', ');
  if (kinds.every((k) => k === 'stacked')) {
    const noMember = masters.filter((m) => !m.etcdDataDir).map((m) => m.name);
    if (noMember.length)
      throw new KubeadmConfigError(
        'LAYOUT_MIXED',
        `The apiserver of ${noMember.join(', ')} uses a local etcd, but no etcd.yaml is active there`,
      );
    const dirs = [...new Set(masters.map((m) => m.etcdDataDir!))];
    if (dirs.length > 1)
      warnings.push(
        `the masters use different data dirs (${masters.map((m) => `${m.name}: ${m.etcdDataDir}`).join(', ')}); ` +
          `kubeadm keeps one for all: ${masters[0].etcdDataDir}`,
      );
    return { layout: { kind: 'stacked', dataDir: masters[0].etcdDataDir! }, warnings };
  }
  if (kinds.every((k) => k === 'external')) {
    const a = masters[0].apiserver!;
    const key = (x: NonNullable<LiveMaster['apiserver']>) =>
      [x.etcdServers.join(','), x.etcdCaFile, x.etcdCertFile, x.etcdKeyFile].join('|');
    const differ = masters.filter((m) => key(m.apiserver!) !== key(a)).map((m) => m.name);
    if (differ.length)
      warnings.push(
        `the apiservers of ${differ.join(', ')} name other etcd servers or certificates than ${masters[0].name}'s; kubeadm keeps ${masters[0].name}'s`,
      );
    const tls = a.etcdServers.some((u) => u.startsWith('https:'));
    if (tls && !(a.etcdCaFile && a.etcdCertFile && a.etcdKeyFile))
      throw new KubeadmConfigError(
        'LAYOUT_UNKNOWN',
        `${masters[0].name}'s apiserver uses https etcd servers without --etcd-cafile, --etcd-certfile and --etcd-keyfile`,
      );
    return {
      layout: {
        kind: 'external',
        endpoints: a.etcdServers,
        caFile: a.etcdCaFile ?? '',
        certFile: a.etcdCertFile ?? '',
        keyFile: a.etcdKeyFile ?? '',
      },
      warnings,
    };
  }
  throw new KubeadmConfigError('LAYOUT_MIXED', `The masters do not use one etcd layout (${describe()})`);
}

/** kubeadm (sigs.k8s.io/yaml) writes block sequences flush with their key; keep the source's style. */
function indentSeqOf(source: string): boolean {
  const lines = source.split('\n');
  for (let i = 0; i + 1 < lines.length; i++) {
    const key = /^(\s*)[^\s#-][^:]*:\s*$/.exec(lines[i]);
    const item = /^(\s*)- /.exec(lines[i + 1]);
    if (key && item) return item[1].length > key[1].length;
  }
  return false;
}

function pairIndex(map: YAMLMap, key: string): number {
  return map.items.findIndex((p) => (isScalar(p.key) ? p.key.value : p.key) === key);
}

function loadClusterConfiguration(text: string): Document {
  const doc = parseDocument(text);
  if (doc.errors.length)
    throw new KubeadmConfigError('KUBEADM_CONFIG_INVALID', `ClusterConfiguration: ${doc.errors[0].message}`);
  if (doc.get('kind') !== 'ClusterConfiguration')
    throw new KubeadmConfigError('KUBEADM_CONFIG_INVALID', 'kubeadm-config holds no ClusterConfiguration');
  // v1beta3 (kubeadm ≤1.30) and v1beta4 spell the etcd fields this edits the same way
  const api = String(doc.get('apiVersion') ?? '');
  if (!/^kubeadm\.k8s\.io\/v1beta[34]$/.test(api))
    throw new KubeadmConfigError('KUBEADM_CONFIG_INVALID', `Unsupported ClusterConfiguration apiVersion ${api}`);
  return doc;
}

/**
 * The ClusterConfiguration for `layout`, everything else kept. Stacked: `etcd.local.dataDir` set,
 * the other local fields kept (or brought back from `stashedLocal` when coming from external).
 * External: `etcd.external` with exactly the given endpoints and files; the local block it
 * replaces is returned as `stashedLocal` (JSON) for the way back. Unchanged input comes back
 * byte for byte.
 */
export function renderClusterConfiguration(
  text: string,
  layout: EtcdLayout,
  stashedLocal: string | null = null,
): { text: string; stashedLocal: string | null; warnings: string[] } {
  const doc = loadClusterConfiguration(text);
  const warnings: string[] = [];
  let changed = false;
  let etcd = doc.get('etcd');
  if (!isMap(etcd)) {
    doc.set('etcd', doc.createNode({}));
    etcd = doc.get('etcd') as YAMLMap;
    changed = true;
  }
  const map = etcd as YAMLMap;
  map.flow = false; // `etcd: {}` gets block content, as kubeadm writes it
  const li = pairIndex(map, 'local');
  const ei = pairIndex(map, 'external');
  let stash = stashedLocal;
  const setIn = (m: YAMLMap, key: string, value: unknown) => {
    if (JSON.stringify((m.toJSON() as Record<string, unknown>)[key]) === JSON.stringify(value)) return;
    m.set(key, doc.createNode(value));
    changed = true;
  };
  if (layout.kind === 'stacked') {
    if (li >= 0 && isMap(map.items[li].value)) {
      setIn(map.items[li].value as YAMLMap, 'dataDir', layout.dataDir);
      if (ei >= 0) {
        map.items.splice(ei, 1); // kubeadm refuses both
        changed = true;
      }
    } else {
      let local: Record<string, unknown> = {};
      if (stash) {
        try {
          local = JSON.parse(stash) as Record<string, unknown>;
        } catch {
          warnings.push(`the saved etcd.local settings (annotation ${LOCAL_ETCD_ANNOTATION}) are unreadable`);
        }
      } else {
        warnings.push(
          'etcd.local is rebuilt with the data dir only (no saved settings): check imageTag, extraArgs and certificate SANs',
        );
      }
      local = { ...local, dataDir: layout.dataDir };
      const pair = doc.createPair('local', sortKeys(local));
      if (ei >= 0) map.items.splice(ei, 1, pair);
      else if (li >= 0) map.items.splice(li, 1, pair);
      else map.items.push(pair);
      changed = true;
    }
    stash = null;
  } else {
    const ext = {
      caFile: layout.caFile,
      certFile: layout.certFile,
      endpoints: layout.endpoints,
      keyFile: layout.keyFile,
    };
    if (li >= 0) {
      stash = JSON.stringify((map.items[li].value as YAMLMap | null)?.toJSON?.() ?? {});
      map.items.splice(li, 1);
      changed = true;
    }
    const ei2 = pairIndex(map, 'external');
    if (ei2 >= 0 && isMap(map.items[ei2].value)) {
      const m = map.items[ei2].value as YAMLMap;
      for (const [k, v] of Object.entries(ext)) setIn(m, k, v);
    } else {
      const pair = doc.createPair('external', ext);
      if (ei2 >= 0) map.items.splice(ei2, 1, pair);
      else if (li >= 0) map.items.splice(Math.min(li, map.items.length), 0, pair);
      else map.items.push(pair);
      changed = true;
    }
  }
  return {
    text: changed ? doc.toString({ indentSeq: indentSeqOf(text), lineWidth: 0 }) : text,
    stashedLocal: stash,
    warnings,
  };
}

/** kubeadm marshals its structs with sorted keys; new blocks follow that order. */
function sortKeys(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** The parts of a ConfigMap object (from the API) this touches. */
export interface ConfigMapJson {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name?: string;
    namespace?: string;
    resourceVersion?: string;
    annotations?: Record<string, string>;
    managedFields?: unknown;
    [k: string]: unknown;
  };
  data?: Record<string, string>;
  [k: string]: unknown;
}

export interface RenderedConfigMap {
  /** The object to PUT (same resourceVersion: a concurrent change makes the write fail, not vanish). */
  configMap: ConfigMapJson;
  before: string;
  after: string;
  changed: boolean;
  warnings: string[];
}

/** kubeadm-config rendered for `layout` (ClusterConfiguration and the saved local settings). */
export function renderKubeadmConfigMap(cm: ConfigMapJson, layout: EtcdLayout): RenderedConfigMap {
  const before = cm.data?.[CLUSTER_CONFIGURATION];
  if (typeof before !== 'string')
    throw new KubeadmConfigError('KUBEADM_CONFIG_INVALID', `kubeadm-config has no ${CLUSTER_CONFIGURATION} key`);
  const stash = cm.metadata.annotations?.[LOCAL_ETCD_ANNOTATION] ?? null;
  const r = renderClusterConfiguration(before, layout, stash);
  return { ...withContent(cm, r.text, r.stashedLocal), before, after: r.text, warnings: r.warnings };
}

/**
 * The way back after a job had written kubeadm-config: `previous` again, but only while the
 * ConfigMap still holds what the job wrote (a rollback onto the old etcd brings the old content
 * back by itself, and whatever is there then must not be overwritten). null: nothing to do.
 */
export function restorePreviousConfigMap(
  cm: ConfigMapJson,
  written: { after: string; previous: string; previousStash: string | null },
): ConfigMapJson | null {
  if (cm.data?.[CLUSTER_CONFIGURATION] !== written.after) return null;
  return withContent(cm, written.previous, written.previousStash).configMap;
}

function withContent(
  cm: ConfigMapJson,
  text: string,
  stash: string | null,
): { configMap: ConfigMapJson; changed: boolean } {
  const annotations = { ...(cm.metadata.annotations ?? {}) };
  if (stash === null) delete annotations[LOCAL_ETCD_ANNOTATION];
  else annotations[LOCAL_ETCD_ANNOTATION] = stash;
  // managedFields left out: the apiserver keeps and updates its own
  const { managedFields: _managed, annotations: _old, ...metadata } = cm.metadata;
  const configMap: ConfigMapJson = {
    ...cm,
    metadata: Object.keys(annotations).length ? { ...metadata, annotations } : metadata,
    data: { ...cm.data, [CLUSTER_CONFIGURATION]: text },
  };
  const changed =
    cm.data?.[CLUSTER_CONFIGURATION] !== text || (cm.metadata.annotations?.[LOCAL_ETCD_ANNOTATION] ?? null) !== stash;
  return { configMap, changed };
}
