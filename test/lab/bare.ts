// Bare lab hosts (`Lab.up({ bare: true })`, `lab up --bare`): sshd, the systemctl stand-in, /etc/hosts
// — and nothing of Kubernetes, so the app under test has to install and create the cluster itself,
// with the real kubeadm. What this module adds to such a host (README "Bare mode"):
// - whiteouts hiding what the machine has installed but a fresh Debian would not (BARE_HIDDEN: the
//   Kubernetes tools, etcd, containerd/runc, haproxy, nginx, their units, configs and state dirs, and
//   the machine's policy-rc.d), in the host's own upper layers;
// - the package tool stand-ins (emul/apt.ts) at the real paths: apt-get, apt, apt-cache, apt-mark,
//   dpkg-query, dpkg, modprobe, swapoff, sysctl;
// - the lab's "archive" (archive.json + a pool of files): the Kubernetes packages of pkgs.k8s.io
//   core:/stable:/v1.36 (the cached real kubeadm and kubectl, the kubelet and crictl stand-ins, the
//   kubelet unit and kubeadm's drop-in — the same files the default lab seeds, kubeadm.ts
//   kubePackageFiles) and a few Debian packages built from what the machine has installed (containerd
//   as the CRI stand-in emul/containerd.ts, runc, haproxy, nginx, libnginx-mod-stream, etcd-server,
//   etcd-client). Pool files are hard links (or small files) in the host's /usr/local layer.
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { CRI_TOOLS_VERSION, KUBERNETES_VERSION } from './binaries';
import type { Archive, ArchiveFile, ArchivePackage } from './emul/apt';
import { ARCHIVE } from './emul/apt';
import { seedPath, type SeedFile } from './host';
import { kubePackageFiles, LAB_LIB, type KubePackage } from './kubeadm';
import { NGINX_UNIT } from './lb';
import type { HostSpec } from './types';
import { runSync } from './util';

const POOL = `${LAB_LIB}/apt/pool`;

/** Tools replaced by the stand-in (emul/apt.ts), at their real paths inside a bare host. */
export const BARE_TOOLS: Record<string, string> = {
  '/usr/bin/apt-get': 'apt-get',
  '/usr/bin/apt': 'apt',
  '/usr/bin/apt-cache': 'apt-cache',
  '/usr/bin/apt-mark': 'apt-mark',
  '/usr/bin/dpkg-query': 'dpkg-query',
  '/usr/bin/dpkg': 'dpkg',
  '/usr/sbin/modprobe': 'modprobe',
  '/usr/sbin/swapoff': 'swapoff',
  '/usr/sbin/sysctl': 'sysctl',
};

/** What a fresh Debian host lacks although this machine has it (hidden by whiteouts when present). */
export const BARE_HIDDEN = [
  ...['kubeadm', 'kubelet', 'kubectl', 'crictl', 'etcd', 'etcdctl', 'etcdutl', 'ctr'].map((b) => `/usr/bin/${b}`),
  ...['containerd', 'containerd-shim', 'containerd-shim-runc-v1', 'containerd-shim-runc-v2', 'containerd-stress'].map(
    (b) => `/usr/bin/${b}`,
  ),
  ...['haproxy', 'nginx', 'runc', 'policy-rc.d'].map((b) => `/usr/sbin/${b}`),
  ...['haproxy', 'nginx', 'etcd', 'containerd', 'kubelet'].map((u) => `/usr/lib/systemd/system/${u}.service`),
  '/usr/lib/systemd/system/kubelet.service.d',
  ...['haproxy', 'nginx', 'containerd', 'kubernetes', 'cni', 'crictl.yaml'].map((e) => `/etc/${e}`),
  ...['haproxy', 'etcd', 'nginx', 'kubelet'].map((d) => `/etc/default/${d}`),
  ...['etcd', 'containerd', 'kubelet', 'haproxy', 'nginx'].map((d) => `/var/lib/${d}`),
  '/var/log/nginx',
];

/** Debian package names the machine's dpkg database lists but a bare host must not (besides the archive's). */
const HIDDEN_PACKAGES = ['containernetworking-plugins', 'kubernetes-cni', 'google-cloud-cli-kubectl', 'nginx-core'];

const DEBIAN_CONTAINERD_UNIT = `# Copyright The containerd Authors.
# (Debian's containerd.service, as the containerd package installs it)

[Unit]
Description=containerd container runtime
Documentation=https://containerd.io
After=network.target local-fs.target

[Service]
ExecStartPre=-/sbin/modprobe overlay
ExecStart=/usr/bin/containerd

Type=notify
Delegate=yes
KillMode=process
Restart=always
RestartSec=5
LimitNPROC=infinity
LimitCORE=infinity
LimitNOFILE=infinity
TasksMax=infinity
OOMScoreAdjust=-999

[Install]
WantedBy=multi-user.target
`;

const DEBIAN_CONTAINERD_CONFIG = `version = 2

[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "/etc/cni/net.d"
  [plugins."io.containerd.internal.v1.opt"]
    path = "/var/lib/containerd/opt"
`;

interface PkgSpec {
  name: string;
  version: string;
  origin: 'kubernetes' | 'debian';
  section: string;
  depends?: string[];
  description: string;
  files: (SeedFile & { conffile?: boolean })[];
  dirs?: string[];
  services?: string[];
  arch?: string;
}

function machineVersions(names: string[]): Map<string, string> {
  const r = runSync('dpkg-query', ['-W', '-f', '${Package}\\t${Version}\\n', ...names], { allowFail: true });
  return new Map(
    r.stdout
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split('\t') as [string, string]),
  );
}

function lexists(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

/** Files under a machine directory, as package files at the same paths (symlinks kept). */
function treeFiles(dir: string, skip: (p: string) => boolean = () => false): PkgSpec['files'] {
  const out: PkgSpec['files'] = [];
  const walk = (d: string): void => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      if (skip(p)) continue;
      const st = lstatSync(p);
      if (st.isSymbolicLink()) out.push({ path: p, symlink: readlinkSync(p) });
      else if (st.isDirectory()) walk(p);
      else out.push({ path: p, copyFrom: p, mode: st.mode & 0o7777, conffile: true });
    }
  };
  if (existsSync(dir)) walk(dir);
  return out;
}

function realContainerd(args: string[], fallback: string): string {
  if (!existsSync('/usr/bin/containerd')) return fallback;
  // printing its version or default config touches nothing (no daemon is started)
  const r = runSync('/usr/bin/containerd', args, { allowFail: true, timeoutMs: 10_000 });
  return r.code === 0 && r.stdout.trim() ? r.stdout : fallback;
}

function specs(emulDir: string): PkgSpec[] {
  const k8s = KUBERNETES_VERSION.replace(/^v/, '');
  const kube = kubePackageFiles(emulDir);
  // the .debs of pkgs.k8s.io put the unit and kubeadm's drop-in under /usr/lib/systemd/system
  const fromDeb = (p: KubePackage): SeedFile[] =>
    kube[p].map((f) => ({ ...f, path: f.path.replace(/^\/etc\/systemd\/system\//, '/usr/lib/systemd/system/') }));
  const v = machineVersions([
    'containerd',
    'runc',
    'haproxy',
    'nginx',
    'nginx-common',
    'libnginx-mod-stream',
    'etcd-server',
    'etcd-client',
  ]);
  const deb = (name: string, fallback: string): string => v.get(name) ?? fallback;
  const list: PkgSpec[] = [
    {
      name: 'kubeadm',
      version: `${k8s}-1.1`,
      origin: 'kubernetes',
      section: 'admin',
      depends: ['cri-tools (>= 1.30.0)'],
      description: 'Command-line utility for administering a Kubernetes cluster',
      files: fromDeb('kubeadm'),
    },
    {
      name: 'kubectl',
      version: `${k8s}-1.1`,
      origin: 'kubernetes',
      section: 'admin',
      description: 'Command-line utility for interacting with a Kubernetes cluster',
      files: fromDeb('kubectl'),
    },
    {
      name: 'kubelet',
      version: `${k8s}-1.1`,
      origin: 'kubernetes',
      section: 'admin',
      description: 'Node agent for Kubernetes clusters (kes-lab: the kubelet stand-in)',
      files: fromDeb('kubelet'),
      dirs: ['/etc/kubernetes/manifests'],
      services: ['kubelet.service'],
    },
    {
      name: 'cri-tools',
      version: `${CRI_TOOLS_VERSION.replace(/^v/, '')}-1.1`,
      origin: 'kubernetes',
      section: 'admin',
      description: 'Command-line utility for interacting with a container runtime (kes-lab: the crictl stand-in)',
      files: fromDeb('cri-tools'),
    },
    {
      name: 'containerd',
      version: deb('containerd', '1.6.20~ds1-1+deb12u3'),
      origin: 'debian',
      section: 'admin',
      depends: ['runc (>= 1.0.0~rc2~)'],
      description: 'open and reliable container runtime (kes-lab: a CRI stand-in over the lab kubelet)',
      files: [
        {
          path: '/usr/bin/containerd',
          content: `#!/bin/sh\n# containerd stand-in of the test lab (test/lab/emul/containerd.ts)\nexec /usr/bin/node ${LAB_LIB}/containerd.cjs "$@"\n`,
          mode: 0o755,
        },
        { path: `${LAB_LIB}/containerd.cjs`, copyFrom: join(emulDir, 'containerd.cjs') },
        {
          path: `${LAB_LIB}/containerd/version`,
          content: realContainerd(
            ['--version'],
            'containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3\n',
          ),
        },
        {
          path: `${LAB_LIB}/containerd/config-default.toml`,
          content: realContainerd(['config', 'default'], DEBIAN_CONTAINERD_CONFIG),
        },
        { path: '/usr/lib/systemd/system/containerd.service', content: DEBIAN_CONTAINERD_UNIT },
        { path: '/etc/containerd/config.toml', content: DEBIAN_CONTAINERD_CONFIG, conffile: true },
      ],
      services: ['containerd.service'],
    },
  ];
  if (existsSync('/usr/sbin/runc'))
    list.push({
      name: 'runc',
      version: deb('runc', '1.1.5+ds1-1+deb12u1'),
      origin: 'debian',
      section: 'devel',
      description: 'Open Container Project - runtime',
      files: [{ path: '/usr/sbin/runc', copyFrom: '/usr/sbin/runc', mode: 0o755 }],
    });
  if (existsSync('/usr/sbin/haproxy') && existsSync('/lib/systemd/system/haproxy.service'))
    list.push({
      name: 'haproxy',
      version: deb('haproxy', '2.6.12-1+deb12u1'),
      origin: 'debian',
      section: 'net',
      description: 'fast and reliable load balancing reverse proxy',
      files: [
        { path: '/usr/sbin/haproxy', copyFrom: '/usr/sbin/haproxy', mode: 0o755 },
        { path: '/usr/lib/systemd/system/haproxy.service', copyFrom: '/lib/systemd/system/haproxy.service' },
        ...treeFiles('/etc/haproxy'),
        ...(existsSync('/etc/default/haproxy')
          ? [{ path: '/etc/default/haproxy', copyFrom: '/etc/default/haproxy', conffile: true }]
          : []),
      ],
      // the package's tmpfiles.d entry makes /run/haproxy (the default config's stats socket)
      dirs: ['/var/lib/haproxy/dev', '/run/haproxy'],
      services: ['haproxy.service'],
    });
  if (existsSync('/usr/sbin/nginx') && existsSync('/etc/nginx')) {
    list.push(
      {
        name: 'nginx-common',
        version: deb('nginx-common', deb('nginx', '1.22.1-9')),
        origin: 'debian',
        section: 'httpd',
        arch: 'all',
        description: 'small, powerful, scalable web/proxy server - common files',
        files: [
          ...treeFiles('/etc/nginx', (p) => p.startsWith('/etc/nginx/modules-enabled/')),
          // Debian's unit is Type=forking, which the systemctl stand-in does not run: the lab's
          // foreground variant (lb.ts) takes its place
          { path: '/usr/lib/systemd/system/nginx.service', content: NGINX_UNIT },
        ],
        dirs: ['/var/log/nginx', '/var/lib/nginx', '/etc/nginx/modules-enabled'],
      },
      {
        name: 'nginx',
        version: deb('nginx', '1.22.1-9'),
        origin: 'debian',
        section: 'httpd',
        depends: ['nginx-common (= ' + deb('nginx', '1.22.1-9') + ')'],
        description: 'small, powerful, scalable web/proxy server',
        files: [{ path: '/usr/sbin/nginx', copyFrom: '/usr/sbin/nginx', mode: 0o755 }],
        services: ['nginx.service'],
      },
    );
    if (existsSync('/usr/share/nginx/modules-available/mod-stream.conf'))
      list.push({
        name: 'libnginx-mod-stream',
        version: deb('libnginx-mod-stream', deb('nginx', '1.22.1-9')),
        origin: 'debian',
        section: 'httpd',
        depends: ['nginx-common'],
        description: 'Stream module for Nginx',
        files: [
          {
            path: '/etc/nginx/modules-enabled/50-mod-stream.conf',
            symlink: '/usr/share/nginx/modules-available/mod-stream.conf',
          },
        ],
      });
  }
  if (existsSync('/usr/bin/etcdctl'))
    list.push({
      name: 'etcd-client',
      version: deb('etcd-client', '3.4.23-4+b4'),
      origin: 'debian',
      section: 'database',
      description: 'highly-available key value store -- client',
      files: [{ path: '/usr/bin/etcdctl', copyFrom: '/usr/bin/etcdctl', mode: 0o755 }],
    });
  if (existsSync('/usr/bin/etcd') && existsSync('/lib/systemd/system/etcd.service'))
    list.push({
      name: 'etcd-server',
      version: deb('etcd-server', '3.4.23-4+b4'),
      origin: 'debian',
      section: 'database',
      description: 'highly-available key value store -- daemon',
      files: [
        { path: '/usr/bin/etcd', copyFrom: '/usr/bin/etcd', mode: 0o755 },
        { path: '/usr/lib/systemd/system/etcd.service', copyFrom: '/lib/systemd/system/etcd.service' },
        ...(existsSync('/etc/default/etcd')
          ? [{ path: '/etc/default/etcd', copyFrom: '/etc/default/etcd', conffile: true }]
          : []),
      ],
      dirs: ['/var/lib/etcd'],
      services: ['etcd.service'],
    });
  return list;
}

function debianSuite(): string {
  try {
    return /VERSION_CODENAME=(\S+)/.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? 'bookworm';
  } catch {
    return 'bookworm';
  }
}

/** The lab's package archive and its pool (files to seed into every bare host), built once per lab. */
export function bareArchive(emulDir: string): { archive: Archive; pool: SeedFile[] } {
  const pool: SeedFile[] = [];
  const packages: ArchivePackage[] = specs(emulDir).map((p) => {
    let bytes = 0;
    const files: ArchiveFile[] = p.files.map((f, i) => {
      if (f.symlink !== undefined) return { path: f.path, symlink: f.symlink };
      const poolPath = `${POOL}/${p.name}/${i}-${basename(f.path)}`;
      pool.push({ path: poolPath, copyFrom: f.copyFrom, content: f.content, mode: f.mode });
      bytes += f.copyFrom ? statSync(f.copyFrom).size : Buffer.byteLength(f.content ?? '');
      return {
        path: f.path,
        pool: poolPath,
        mode: f.mode ?? (f.copyFrom ? statSync(f.copyFrom).mode & 0o7777 : 0o644),
        ...(f.conffile ? { conffile: true } : {}),
      };
    });
    return {
      name: p.name,
      version: p.version,
      arch: p.arch ?? 'amd64',
      origin: p.origin,
      section: p.section,
      depends: p.depends ?? [],
      description: p.description,
      installedSizeKB: Math.ceil(bytes / 1024),
      files,
      ...(p.dirs ? { dirs: p.dirs } : {}),
      ...(p.services ? { services: p.services } : {}),
    };
  });
  const archive: Archive = {
    k8sMinor: KUBERNETES_VERSION.replace(/^v(\d+\.\d+)\..*$/, 'v$1'),
    k8sVersion: KUBERNETES_VERSION.replace(/^v/, ''),
    debianSuite: debianSuite(),
    packages,
    hidden: HIDDEN_PACKAGES,
  };
  return { archive, pool };
}

/**
 * The signing key the lab's "pkgs.k8s.io" serves (Release.key): a real OpenPGP key made once per lab
 * with gpg, so the product's `curl … | gpg --dearmor` runs for real on it. The apt stand-in checks
 * that the keyring exists and is a dearmored key, not signatures (there are none).
 */
function labRepoKey(emulDir: string): string {
  const file = join(emulDir, 'pkgs-k8s-release.asc');
  if (!existsSync(file)) {
    runSync('bash', [
      '-c',
      `set -e; h=$(mktemp -d); trap 'gpgconf --homedir "$h" --kill all 2>/dev/null || true; rm -rf "$h"' EXIT
       gpg --homedir "$h" --batch --passphrase '' --quick-gen-key 'kes-lab pkgs.k8s.io stand-in <lab@kes.invalid>' ed25519 sign never 2>/dev/null
       gpg --homedir "$h" --armor --export > "$1.tmp" && mv "$1.tmp" "$1"`,
      'labkey',
      file,
    ]);
  }
  return file;
}

/**
 * curl on a bare host: the lab has no network, so the one download the documented install does —
 * the Kubernetes repository's Release.key — is served from the lab, and any other name fails the
 * way curl does without DNS (exit 6) WITHOUT any traffic. Addresses in the lab's range, loopback
 * and --resolve'd names (kube-api.sh) go to the real curl.
 */
const CURL_STANDIN = `#!/bin/bash
# curl stand-in of the test lab (test/lab/bare.ts): no network here, see the comment there
key=${LAB_LIB}/pkgs-k8s-release.asc out= prev= url= resolve=0
for a in "$@"; do
  case "$prev" in -o|--output) out=$a;; esac
  case "$a" in --resolve|--resolve=*) resolve=1;; https://*|http://*) url=$a;; esac
  prev=$a
done
case "$url" in
  https://pkgs.k8s.io/core:/stable:/v*/deb/Release.key)
    if [ -n "$out" ]; then cp "$key" "$out"; else cat "$key"; fi; exit 0;;
esac
host=\${url#*://}; host=\${host%%/*}; host=\${host%:*}; host=\${host#[}; host=\${host%]}
case "$host" in
  ''|127.*|localhost|::1|198.18.*|198.19.*) exec /usr/bin/curl "$@";;
esac
[ "$resolve" = 1 ] && exec /usr/bin/curl "$@"
echo "curl: (6) Could not resolve host: $host" >&2
exit 6
`;

/** A bare host's own files: the archive, the pool and the package-tool stand-ins at their real paths. */
export function bareHostFiles(emulDir: string, a: { archive: Archive; pool: SeedFile[] }): SeedFile[] {
  return [
    { path: `${LAB_LIB}/pkgs-k8s-release.asc`, copyFrom: labRepoKey(emulDir) },
    { path: '/usr/local/bin/curl', content: CURL_STANDIN, mode: 0o755 },
    ...a.pool,
    { path: ARCHIVE, content: JSON.stringify(a.archive, null, 1) },
    { path: `${LAB_LIB}/apt.cjs`, copyFrom: join(emulDir, 'apt.cjs') },
    { path: `${LAB_LIB}/sysctl.real`, copyFrom: '/usr/sbin/sysctl' },
    ...Object.entries(BARE_TOOLS).map(([path, tool]) => ({
      path,
      content: `#!/bin/sh\n# ${tool} stand-in of the test lab (test/lab/emul/apt.ts)\nexec /usr/bin/node ${LAB_LIB}/apt.cjs ${tool} "$@"\n`,
      mode: 0o755,
    })),
  ];
}

/** Whiteouts for BARE_HIDDEN in the host's upper layers (before its first boot; seeded files stay). */
export function bareWhiteouts(h: HostSpec): void {
  const nodes = BARE_HIDDEN.filter((p) => lexists(p))
    .map((p) => seedPath(h, p))
    .filter((p) => !lexists(p));
  if (!nodes.length) return;
  for (const n of nodes) mkdirSync(dirname(n), { recursive: true });
  runSync('bash', ['-c', 'for f in "$@"; do mknod "$f" c 0 0; done', 'whiteout', ...nodes]);
}
