// Refuse early and clearly when the lab cannot work here: it needs Linux, root (namespaces, mounts,
// bridges) and a handful of Debian packages. We name the apt packages so the fix is one command.
import { accessSync, constants, existsSync } from 'node:fs';

export const APT_PACKAGES = [
  'openssh-server',
  'openssh-sftp-server',
  'openssh-client',
  'etcd-server',
  'etcd-client',
  'haproxy',
  'nginx',
  'libnginx-mod-stream',
  'sudo',
  'iproute2',
  'openssl',
  'util-linux',
  'procps',
] as const;

interface Need {
  path: string;
  pkg: string;
  when?: 'haproxy' | 'nginx' | 'sudo';
}

const NEEDS: Need[] = [
  { path: '/usr/sbin/sshd', pkg: 'openssh-server' },
  { path: '/usr/bin/ssh-keygen', pkg: 'openssh-client' },
  { path: '/usr/bin/ssh', pkg: 'openssh-client' },
  { path: '/usr/lib/openssh/sftp-server', pkg: 'openssh-sftp-server' },
  { path: '/usr/bin/etcd', pkg: 'etcd-server' },
  { path: '/usr/bin/etcdctl', pkg: 'etcd-client' },
  { path: '/usr/sbin/ip', pkg: 'iproute2' },
  { path: '/usr/bin/openssl', pkg: 'openssl' },
  { path: '/usr/bin/unshare', pkg: 'util-linux' },
  { path: '/usr/bin/nsenter', pkg: 'util-linux' },
  { path: '/usr/bin/pkill', pkg: 'procps' },
  { path: '/usr/sbin/haproxy', pkg: 'haproxy', when: 'haproxy' },
  { path: '/usr/sbin/nginx', pkg: 'nginx', when: 'nginx' },
  { path: '/usr/lib/nginx/modules/ngx_stream_module.so', pkg: 'libnginx-mod-stream', when: 'nginx' },
  { path: '/usr/bin/sudo', pkg: 'sudo', when: 'sudo' },
];

export interface PreflightOptions {
  lb: 'haproxy' | 'nginx' | 'none';
  sudoUser: boolean;
}

/** Throws an Error whose message says exactly what to do. */
export function preflight(opts: PreflightOptions): void {
  if (process.platform !== 'linux')
    throw new Error(`the test lab needs Linux (network namespaces); this is ${process.platform}`);
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new Error('the test lab needs root (it creates network namespaces, bridges and mounts); run it as root');
  }
  const missing = new Set<string>();
  for (const n of NEEDS) {
    if (n.when === 'haproxy' && opts.lb !== 'haproxy') continue;
    if (n.when === 'nginx' && opts.lb !== 'nginx') continue;
    if (n.when === 'sudo' && !opts.sudoUser) continue;
    try {
      accessSync(n.path, constants.X_OK);
    } catch {
      if (!(n.path.endsWith('.so') && existsSync(n.path))) missing.add(n.pkg);
    }
  }
  if (missing.size) {
    const list = [...missing].join(' ');
    throw new Error(
      `the test lab needs packages that are missing: ${list}\n` +
        `install them without starting services in the root namespace:\n` +
        `  printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d\n` +
        `  apt-get install -y ${APT_PACKAGES.join(' ')}`,
    );
  }
}
