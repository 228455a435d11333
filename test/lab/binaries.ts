// Where the lab finds the real Kubernetes and etcd binaries: a per-version cache outside the repo,
// filled by test/lab/build-binaries.sh (scripts/setup.sh runs it). Versions come from the wrapper
// modules' go.mod files (the pins), so the TypeScript side and the build script cannot disagree.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const LAB_CACHE = process.env.KES_LAB_CACHE ?? '/var/cache/kes-lab';
export type EtcdMinor = '3.4' | '3.5' | '3.6';
export const ETCD_MINORS: EtcdMinor[] = ['3.4', '3.5', '3.6'];
export const KUBE_BINARIES = [
  'kubeadm',
  'kube-apiserver',
  'kube-controller-manager',
  'kube-scheduler',
  'kubectl',
] as const;

const BUILD_HINT = 'run `bash test/lab/build-binaries.sh` (scripts/setup.sh does) to build or fetch it';

function pinned(module: string, dep: string): string {
  const mod = readFileSync(join(__dirname, 'gobuild', module, 'go.mod'), 'utf8');
  const m = new RegExp(`^\\s*${dep.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\\s+(v\\S+)`, 'm').exec(mod);
  if (!m) throw new Error(`test/lab/gobuild/${module}/go.mod does not pin ${dep}`);
  return m[1];
}

/** "v1.36.3": the Kubernetes release the lab runs. */
export const KUBERNETES_VERSION = pinned('kubernetes', 'k8s.io/kubernetes');

function complete(dir: string): boolean {
  return existsSync(join(dir, '.complete'));
}

/** Directory of kubeadm, kube-apiserver, … for the pinned release. */
export function kubernetesBinDir(): string {
  const dir = join(LAB_CACHE, 'kubernetes', KUBERNETES_VERSION);
  if (!complete(dir)) throw new Error(`Kubernetes ${KUBERNETES_VERSION} is not in ${dir}: ${BUILD_HINT}`);
  return dir;
}

/** The etcd release of a minor the lab runs: 3.6 = the pinned Go build, 3.5/3.4 = Debian's. */
export function etcdRelease(minor: EtcdMinor = defaultEtcdMinor()): { version: string; dir: string } {
  if (minor === '3.6') {
    const v = pinned('etcd', 'go.etcd.io/etcd/server/v3');
    const dir = join(LAB_CACHE, 'etcd', v);
    if (!complete(dir)) throw new Error(`etcd ${v} is not in ${dir}: ${BUILD_HINT}`);
    return { version: v.slice(1), dir };
  }
  let found: string[];
  try {
    found = readdirSync(join(LAB_CACHE, 'etcd'))
      .filter((d) => d.startsWith(`v${minor}.`) && complete(join(LAB_CACHE, 'etcd', d)))
      .sort((a, b) => Number(a.split('.')[2]) - Number(b.split('.')[2]));
  } catch {
    found = [];
  }
  const v = found.at(-1);
  if (!v) throw new Error(`no etcd ${minor}.x in ${join(LAB_CACHE, 'etcd')}: ${BUILD_HINT}`);
  return { version: v.slice(1), dir: join(LAB_CACHE, 'etcd', v) };
}

/** KES_LAB_ETCD picks the etcd minor of labs that do not name one (default 3.6, what kubeadm 1.36 ships). */
export function defaultEtcdMinor(): EtcdMinor {
  const v = process.env.KES_LAB_ETCD ?? '3.6';
  if (!ETCD_MINORS.includes(v as EtcdMinor)) throw new Error(`KES_LAB_ETCD must be one of ${ETCD_MINORS.join(', ')}`);
  return v as EtcdMinor;
}

/** The etcd tools of a release that exist (3.4 has no etcdutl). */
export function etcdTools(dir: string): string[] {
  return ['etcd', 'etcdctl', 'etcdutl'].filter((b) => existsSync(join(dir, b)));
}

/** The real-kubelet mode's programs: kubelet (in the Kubernetes dir), crictl (cri-tools), a static pause. */
export const CRI_TOOLS_VERSION = pinned('cri-tools', 'sigs.k8s.io/cri-tools');

export interface RealKubeletBinaries {
  kubelet: string;
  crictl: string;
  pause: string;
}

/** Paths of the real-kubelet mode's cached programs, or an error naming what is missing. */
export function realKubeletBinaries(): RealKubeletBinaries {
  const kube = join(LAB_CACHE, 'kubernetes', KUBERNETES_VERSION);
  const b = {
    kubelet: join(kube, 'kubelet'),
    crictl: join(LAB_CACHE, 'cri-tools', CRI_TOOLS_VERSION, 'crictl'),
    pause: join(LAB_CACHE, 'pause', 'pause'),
  };
  const missing = Object.values(b).filter((f) => !existsSync(f));
  if (missing.length) throw new Error(`real-kubelet mode: missing ${missing.join(', ')}: ${BUILD_HINT}`);
  return b;
}

/** Machine packages the real-kubelet mode runs inside the hosts (scripts/setup.sh installs them). */
export const REAL_KUBELET_PACKAGES: [string, string][] = [
  ['/usr/bin/containerd', 'containerd'],
  ['/usr/bin/containerd-shim-runc-v2', 'containerd'],
  ['/usr/bin/ctr', 'containerd'],
  ['/usr/sbin/runc', 'runc'],
  ['/usr/lib/cni/bridge', 'containernetworking-plugins'],
  ['/usr/lib/cni/host-local', 'containernetworking-plugins'],
  ['/usr/lib/cni/loopback', 'containernetworking-plugins'],
];

/** Why the real-kubelet mode cannot run here (undefined: it can). */
export function realKubeletUnavailable(): string | undefined {
  try {
    realKubeletBinaries();
  } catch (e) {
    return (e as Error).message;
  }
  const pkgs = [...new Set(REAL_KUBELET_PACKAGES.filter(([f]) => !existsSync(f)).map(([, p]) => p))];
  if (pkgs.length) return `real-kubelet mode: apt-get install ${pkgs.join(' ')} (scripts/setup.sh does)`;
  return undefined;
}

/** KES_LAB_KUBELET picks the kubelet of labs that do not name one (default 'stand-in'). */
export function defaultKubeletKind(): 'stand-in' | 'real' {
  const v = process.env.KES_LAB_KUBELET ?? 'stand-in';
  if (v !== 'stand-in' && v !== 'real') throw new Error("KES_LAB_KUBELET must be 'stand-in' or 'real'");
  return v;
}
