// Proof that kubeadm's stored configuration stays true after the app's jobs: on a master, the real
// kubeadm 1.36 renders what `kubeadm upgrade` would write from the kubeadm-config ConfigMap, and the
// rendering must agree with the live manifests on where etcd is — kube-apiserver.yaml's
// --etcd-servers and etcd client certificate flags, and etcd.yaml's data dir (flag and the
// etcd-data hostPath). A disagreement is what a later `kubeadm upgrade` would silently revert to.
//
// - kube-apiserver.yaml: `kubeadm upgrade node phase control-plane --dry-run` (reads the
//   ClusterConfiguration from the ConfigMap itself, prints the manifests it would write).
// - etcd.yaml: kubeadm's upgrade renders it with the same function as `kubeadm init phase etcd
//   local` (etcdphase.CreateLocalEtcdStaticPodManifestFile) but has no dry-run for it, so the
//   ConfigMap's ClusterConfiguration (read with kubectl) is rendered by `kubeadm init phase etcd
//   local --dry-run`, with the node's own name and address (the per-node part kubeadm upgrade
//   takes from the node, not from the ConfigMap).
import { parse } from 'yaml';
import type { Lab } from '../lab';

type Pod = {
  spec: {
    containers: { name: string; command: string[] }[];
    volumes?: { name: string; hostPath?: { path: string } }[];
  };
};

export interface EtcdWiring {
  etcdServers?: string;
  etcdCafile?: string;
  etcdCertfile?: string;
  etcdKeyfile?: string;
}
export interface EtcdDataDir {
  dataDir?: string;
  hostPath?: string;
}

function flags(pod: Pod): Map<string, string> {
  const m = new Map<string, string>();
  for (const a of pod.spec.containers[0].command) {
    const x = /^--([^=]+)=(.*)$/s.exec(a);
    if (x) m.set(x[1], x[2]);
  }
  return m;
}
function wiring(pod: Pod): EtcdWiring {
  const f = flags(pod);
  return {
    etcdServers: f.get('etcd-servers'),
    etcdCafile: f.get('etcd-cafile'),
    etcdCertfile: f.get('etcd-certfile'),
    etcdKeyfile: f.get('etcd-keyfile'),
  };
}
function dataDir(pod: Pod): EtcdDataDir {
  return {
    dataDir: flags(pod).get('data-dir'),
    hostPath: pod.spec.volumes?.find((v) => v.name === 'etcd-data')?.hostPath?.path,
  };
}

/** The manifest kubeadm's dry-run prints after `Would write file "<path>" with content:`. */
export function dryRunFile(out: string, path: string): string | null {
  const head = `[dryrun] Would write file "${path}" with content:\n`;
  const i = out.indexOf(head);
  if (i < 0) return null;
  const body = out.slice(i + head.length);
  const end = body.search(/^\[dryrun\]/m);
  return end < 0 ? body : body.slice(0, end);
}

const ADMIN = '--kubeconfig /etc/kubernetes/admin.conf';

/** The ClusterConfiguration kubeadm-config holds, read on `host` with the real kubectl. */
export async function storedClusterConfiguration(lab: Lab, host: string): Promise<string> {
  const r = await lab.exec(
    host,
    `kubectl ${ADMIN} -n kube-system get configmap kubeadm-config -o 'jsonpath={.data.ClusterConfiguration}'`,
  );
  return r.stdout;
}

/** kube-apiserver.yaml as `kubeadm upgrade node` would write it on `host` (from the ConfigMap). */
async function upgradeRenderedApiserver(lab: Lab, host: string): Promise<EtcdWiring> {
  // its dry-run dirs go to a temp dir removed afterwards (else kubeadm leaves /etc/kubernetes/tmp/…)
  const r = await lab.exec(
    host,
    `t=$(mktemp -d); trap 'rm -rf "$t"' EXIT; KUBEADM_UPGRADE_DRYRUN_DIR="$t" kubeadm upgrade node phase control-plane --dry-run ${ADMIN} 2>&1`,
    { allowFail: true },
  );
  const text = dryRunFile(r.stdout, '/etc/kubernetes/manifests/kube-apiserver.yaml');
  if (r.code !== 0 || !text)
    throw new Error(`kubeadm upgrade node phase control-plane --dry-run on ${host} failed:\n${r.stdout.slice(-2000)}`);
  return wiring(parse(text) as Pod);
}

/** etcd.yaml as kubeadm renders it on `host` from this ClusterConfiguration (null: external etcd). */
async function renderedEtcd(lab: Lab, host: string, cc: string): Promise<EtcdDataDir | null> {
  if (!(parse(cc) as { etcd?: { local?: unknown } } | null)?.etcd?.local) return null;
  const h = lab.host(host);
  const init = [
    'apiVersion: kubeadm.k8s.io/v1beta4',
    'kind: InitConfiguration',
    'localAPIEndpoint:',
    `  advertiseAddress: ${h.address}`,
    'nodeRegistration:',
    `  name: ${host}`,
    '',
  ].join('\n');
  const r = await lab.exec(
    host,
    't=$(mktemp -d); trap \'rm -rf "$t"\' EXIT; cat > "$t/config.yaml"; KUBEADM_INIT_DRYRUN_DIR="$t/out" kubeadm init phase etcd local --dry-run --config "$t/config.yaml" 2>&1',
    { input: `${cc.replace(/\n*$/, '\n')}---\n${init}`, allowFail: true },
  );
  const text = dryRunFile(r.stdout, '/etc/kubernetes/manifests/etcd.yaml');
  if (r.code !== 0 || !text)
    throw new Error(`kubeadm init phase etcd local --dry-run on ${host} failed:\n${r.stdout.slice(-2000)}`);
  return dataDir(parse(text) as Pod);
}

async function liveManifest(lab: Lab, host: string, name: string): Promise<Pod | null> {
  const r = await lab.exec(host, `cat /etc/kubernetes/manifests/${name}.yaml 2>/dev/null || true`);
  return r.stdout.trim() ? (parse(r.stdout) as Pod) : null;
}

/**
 * What `kubeadm upgrade` run now would change about etcd, as readable lines ([] when it would keep
 * etcd where it is): the apiserver's etcd wiring rendered from the ConfigMap against the live one
 * (upgrade dry-run on the first master; every master gets the same wiring from it), and on every
 * master the stacked member kubeadm would render (or not) against the live etcd.yaml's data dir
 * (or its absence).
 */
export async function kubeadmDisagreements(lab: Lab): Promise<string[]> {
  const t0 = Date.now();
  const out: string[] = [];
  const show = (x: unknown) => JSON.stringify(x);
  const first = lab.masters[0].name;
  const cc = await storedClusterConfiguration(lab, first);
  const rendered = await upgradeRenderedApiserver(lab, first);
  const live = wiring((await liveManifest(lab, first, 'kube-apiserver'))!);
  if (show(rendered) !== show(live))
    out.push(`${first} kube-apiserver.yaml: kubeadm would write ${show(rendered)}, live ${show(live)}`);
  for (const m of lab.masters) {
    const want = await liveManifest(lab, m.name, 'etcd');
    const got = await renderedEtcd(lab, m.name, cc);
    if (show(got) !== show(want ? dataDir(want) : null))
      out.push(`${m.name} etcd.yaml: kubeadm would write ${show(got)}, live ${show(want ? dataDir(want) : null)}`);
  }
  if (out.length) out.push(`kubeadm-config's ClusterConfiguration:\n${cc}`);
  console.log(`[kubeadm-upgrade] ${out.length ? 'DISAGREES' : 'agrees'} (${Date.now() - t0} ms)`);
  return out;
}
