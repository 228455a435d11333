// The lab's opt-in real-kubelet mode (`Lab.up({ kubelet: 'real' })`, `--kubelet real`,
// KES_LAB_KUBELET=real): masters and workers run Debian's containerd + runc and the REAL kubelet
// 1.36 (built by build-binaries.sh), the real `crictl` (cri-tools), and the control-plane images
// built here from the cached binaries (no registry: `ctr images import` of docker-archive tars).
// What this needs and why (README "Real kubelet + containerd"):
// - hosts start under `nsenter --net` (not `ip netns exec`, which remounts /sys and hides the
//   cgroup mounts the kubelet needs);
// - containerd's root on a plain directory (its overlayfs snapshots cannot sit on the /var overlay);
// - containerd CRI `restrict_oom_score_adj` (the sandbox has no CAP_SYS_RESOURCE for negative scores);
// - cgroupfs driver, one cgroup root per host made at `up` and removed at `down`
//   (/sys/fs/cgroup/<ctrl>/kes-lab-<prefix>/<host>), failCgroupV1: false (this machine is cgroup v1);
// - protectKernelDefaults + read-only bind mounts over 6 /proc/sys files, in the host's mount ns only,
//   so the kubelet never rewrites the machine's kernel tunables;
// - a bridge CNI (Debian's containernetworking-plugins) inside the host's netns, pods in
//   198.18.<192+i>.0/24 (inside the lab's never-routed pod CIDR), so nodes get Ready.
// systemd is still the stand-in: it runs Debian's own containerd.service and the kubelet .deb's unit.
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmdirSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { etcdRelease, KUBERNETES_VERSION, kubernetesBinDir, LAB_CACHE, realKubeletBinaries } from './binaries';
import { hostExec, type SeedFile } from './host';
import { etcdImageTag } from './kubeadm';
import type { HostSpec, LabState } from './types';
import { run } from './util';

export const PAUSE_IMAGE = 'registry.k8s.io/pause:3.10.2';
const CGROUP_FS = '/sys/fs/cgroup';

export function cgroupRootName(s: LabState): string {
  return `kes-lab-${s.prefix}`;
}

/** The kubelet's --cgroup-root of a host. */
export function hostCgroupRoot(s: LabState, h: HostSpec): string {
  return `/${cgroupRootName(s)}/${h.name}`;
}

/**
 * cgroup hierarchies (v1: each controller's mount; v2: the unified one). On a hybrid v1 machine the
 * roots are made in the controller hierarchies only, but runc also makes cgroups in `unified`, so
 * teardown and the leftovers check look there too (`all`).
 */
function hierarchies(all = false): string[] {
  if (existsSync(join(CGROUP_FS, 'cgroup.controllers'))) return [CGROUP_FS];
  return readdirSync(CGROUP_FS)
    .map((d) => join(CGROUP_FS, d))
    .filter((d) => {
      try {
        return !lstatSync(d).isSymbolicLink() && statSync(d).isDirectory() && (all || !d.endsWith('/unified'));
      } catch {
        return false;
      }
    })
    .filter((d) => existsSync(join(d, 'cgroup.procs')));
}

/** Make every kubelet host's cgroup root (they must exist before the kubelet starts). */
export function createCgroupRoots(s: LabState): void {
  const hosts = s.hosts.filter((h) => h.role === 'master' || h.role === 'worker');
  for (const hier of hierarchies()) {
    for (const rel of [cgroupRootName(s), ...hosts.map((h) => hostCgroupRoot(s, h).slice(1))]) {
      const d = join(hier, rel);
      mkdirSync(d, { recursive: true });
      const parent = join(d, '..');
      // cpuset: a new cgroup starts with no cpus/mems; copy the parent's
      for (const f of ['cpuset.cpus', 'cpuset.mems'])
        if (existsSync(join(parent, f))) writeFileSync(join(d, f), readTrim(join(parent, f)) || '\n');
      if (hier === CGROUP_FS && existsSync(join(parent, 'cgroup.subtree_control'))) {
        // cgroup v2: hand the controllers down (best effort)
        for (const c of ['cpu', 'cpuset', 'memory', 'pids', 'io', 'hugetlb'])
          try {
            writeFileSync(join(parent, 'cgroup.subtree_control'), `+${c}`);
          } catch {
            /* not available */
          }
      }
    }
  }
}

function readTrim(f: string): string {
  try {
    return readFileSync(f, 'utf8').trim();
  } catch {
    return '';
  }
}

/** Remove the lab's cgroup roots, deepest first (teardown: after every process of the lab is gone). */
export function removeCgroupRoots(s: LabState, waitMs = 3000): string[] {
  const left: string[] = [];
  const deadline = Date.now() + waitMs;
  for (const hier of hierarchies(true)) {
    const root = join(hier, cgroupRootName(s));
    if (!existsSync(root)) continue;
    for (;;) {
      const dirs: string[] = [];
      const walk = (d: string): void => {
        for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(join(d, e.name));
        dirs.push(d);
      };
      try {
        walk(root);
      } catch {
        break;
      }
      let failed = false;
      for (const d of dirs)
        try {
          rmdirSync(d);
        } catch {
          failed = true;
        }
      if (!failed || Date.now() > deadline) {
        if (failed) left.push(root);
        break;
      }
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100); // processes still exiting
    }
  }
  return left;
}

/**
 * A host boots again (fault hook startHost): a real machine starts with no cgroups, but here the
 * dead containers' cgroups outlive the host, and cAdvisor spends ~3 s on each stale one ("Failed to
 * create existing container … task not found") before the kubelet starts any pod. Remove what is
 * under the host's cgroup root (it is empty of processes: the host's PID namespace is gone).
 */
export function resetHostCgroups(s: LabState, h: HostSpec, waitMs = 5000): void {
  const deadline = Date.now() + waitMs;
  for (const hier of hierarchies(true)) {
    const root = join(hier, hostCgroupRoot(s, h));
    for (;;) {
      if (!existsSync(root)) break;
      const dirs: string[] = [];
      const walk = (d: string): void => {
        for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(join(d, e.name));
        if (d !== root) dirs.push(d);
      };
      walk(root);
      let busy = false;
      for (const d of dirs)
        try {
          rmdirSync(d);
        } catch {
          busy = true; // the killed containers are still exiting
        }
      if (!busy || Date.now() > deadline) break; // past the deadline the kubelet copes, slowly
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
    }
  }
  createCgroupRoots(s);
}

/** cgroup roots of a lab that are still there (leftovers check). */
export function cgroupLeftovers(prefix: string): string[] {
  try {
    return hierarchies(true)
      .map((h) => join(h, `kes-lab-${prefix}`))
      .filter((d) => existsSync(d));
  } catch {
    return [];
  }
}

/** Pod range of a host's bridge CNI (inside the lab's pod CIDR 198.18.192.0/18, only ever inside the host). */
export function hostPodRange(s: LabState, h: HostSpec): string {
  const i = s.hosts.indexOf(h);
  return `198.18.${192 + i}.0/24`;
}

export const CONTAINERD_CONFIG = `# kes-lab real-kubelet mode (test/lab/realkubelet.ts)
version = 2
root = "/var/lib/containerd"
state = "/run/containerd"
[grpc]
  address = "/run/containerd/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${PAUSE_IMAGE}"
  # no CAP_SYS_RESOURCE in a lab host: runc cannot set the negative oom_score_adj the CRI asks for
  # ("runc create failed: unable to start container process: can't get final child's PID from pipe: EOF")
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
      SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "/etc/cni/net.d"
`;

/** What the packages (kubelet, cri-tools, containerd) would install on a master/worker. */
export function realKubeletSeed(s: LabState, h: HostSpec): SeedFile[] {
  const b = realKubeletBinaries();
  return [
    { path: '/usr/bin/kubelet', copyFrom: b.kubelet },
    { path: '/usr/bin/crictl', copyFrom: b.crictl },
    { path: '/etc/containerd/config.toml', content: CONTAINERD_CONFIG },
    {
      path: '/etc/default/kubelet',
      content: `KUBELET_EXTRA_ARGS=--cgroup-root=${hostCgroupRoot(s, h)} --node-ip=${h.address}\n`,
    },
    {
      path: '/etc/cni/net.d/10-kes-lab.conflist',
      content: `${JSON.stringify({
        cniVersion: '1.0.0',
        name: 'kes-lab',
        plugins: [
          {
            type: 'bridge',
            bridge: 'cni0',
            isGateway: true,
            ipMasq: false,
            ipam: { type: 'host-local', ranges: [[{ subnet: hostPodRange(s, h) }]], dataDir: '/run/cni-ipam' },
          },
          { type: 'loopback' },
        ],
      })}\n`,
    },
  ];
}

/** init.sh lines of a real-kubelet host (after the overlays, before /tmp is made private). */
export function realKubeletInit(h: HostSpec): string {
  const D = h.dir;
  const sysctls = [
    'vm/overcommit_memory=1',
    'vm/panic_on_oom=0',
    'kernel/panic=10',
    'kernel/panic_on_oops=1',
    'kernel/keys/root_maxkeys=1000000',
    'kernel/keys/root_maxbytes=25000000',
  ];
  return `# real-kubelet mode: containerd's root on a plain dir (no overlayfs snapshots on an overlay upper)
mkdir -p ${D}/containerd /var/lib/containerd && mount --bind ${D}/containerd /var/lib/containerd
# the kubelet wants these kernel tunables (protectKernelDefaults): show them, in this mount ns only
mkdir -p ${D}/sysctl
for kv in ${sysctls.join(' ')}; do
  f=\${kv%%=*}; echo "\${kv#*=}" >${D}/sysctl/\${f//\\//_}; mount --bind -o ro ${D}/sysctl/\${f//\\//_} /proc/sys/$f
done
`;
}

/** The images kubeadm's manifests name, as docker-archive tars in the cache (built once per binary); pause first. */
export async function ensureImages(s: LabState): Promise<string[]> {
  const kube = kubernetesBinDir();
  const rel = etcdRelease(s.etcdMinor);
  const b = realKubeletBinaries();
  const dir = join(LAB_CACHE, 'images');
  mkdirSync(dir, { recursive: true });
  const specs: { file: string; ref: string; entry: string; files: [string, string][] }[] = [
    { file: 'pause.tar', ref: PAUSE_IMAGE, entry: '/pause', files: [[b.pause, '/pause']] },
    {
      file: `etcd-${etcdImageTag(rel.version)}.tar`,
      ref: `registry.k8s.io/etcd:${etcdImageTag(rel.version)}`,
      entry: '/usr/local/bin/etcd',
      files: ['etcd', 'etcdctl'].map((t): [string, string] => [join(rel.dir, t), `/usr/local/bin/${t}`]),
    },
    ...['kube-apiserver', 'kube-controller-manager', 'kube-scheduler'].map((c) => ({
      file: `${c}-${KUBERNETES_VERSION}.tar`,
      ref: `registry.k8s.io/${c}:${KUBERNETES_VERSION}`,
      entry: `/usr/local/bin/${c}`,
      files: [[join(kube, c), `/usr/local/bin/${c}`]] as [string, string][],
    })),
  ];
  return Promise.all(
    specs.map(async (sp) => {
      const out = join(dir, sp.file);
      const newest = Math.max(...sp.files.map(([f]) => statSync(f).mtimeMs));
      if (existsSync(out) && statSync(out).mtimeMs >= newest) return out;
      const tmp = `${out}.tmp-${process.pid}`;
      await run('python3', [
        join(__dirname, 'image-tar.py'),
        tmp,
        sp.ref,
        sp.entry,
        ...sp.files.map(([f, p]) => `${f}=${p}`),
      ]);
      renameSync(tmp, out);
      return out;
    }),
  );
}

/** Wait for the host's containerd (started by its unit) and import the images into its k8s.io namespace. */
export async function importImages(h: HostSpec, tars: string[]): Promise<void> {
  await hostExec(
    h,
    `for i in $(seq 1 600); do ctr version >/dev/null 2>&1 && break; sleep 0.1; done
ctr version >/dev/null || { echo "containerd did not come up"; tail -20 /var/log/journal-lab/containerd.service.log; exit 1; }
for t in ${tars.join(' ')}; do ctr -n k8s.io images import "$t" >/dev/null || exit 1; done`,
    { timeoutMs: 300_000 },
  );
}
