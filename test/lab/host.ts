// One lab "host": a network namespace (made by net.ts) plus, inside it, a process tree started with
//   unshare --mount --uts --ipc --pid --fork --kill-child --mount-proc bash init.sh
// init.sh sets hostname and address, mounts copy-on-write overlays over /etc /var /usr/local /opt /home
// (bind mounts onto missing paths fail, overlays don't), a private /root, tmpfs /run and /dev/shm, a
// private /tmp (bound last: the lab dir lives under /tmp), starts the units the lab enabled, and
// finally execs `sshd -D` so sshd is PID 1: killing the unshare process (--kill-child) ends the host.
// The /var upper layer lives on a tmpfs (size = varQuotaMB) mounted in the root namespace, so a test
// can fill the host's disk by shrinking it, and the data survives a host stop/start.
import { spawn } from 'node:child_process';
import {
  closeSync,
  copyFileSync,
  existsSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  chmodSync,
  chownSync,
} from 'node:fs';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { assertLabAddress } from './guard';
import type { HostSpec, LabState } from './types';
import { run, runSync, sleep, shq } from './util';

/** Where a host path lives before the host runs (upper layers, private dirs). */
export function seedPath(h: HostSpec, hostPath: string): string {
  const map: [string, string][] = [
    ['/etc/', 'upper/etc/'],
    ['/var/', 'varfs/upper/'],
    ['/usr/local/', 'upper/usrlocal/'],
    ['/usr/bin/', 'upper/usrbin/'],
    // bare hosts only (InitOptions.bare): their own /usr/sbin and unit directory
    ['/usr/sbin/', 'upper/usrsbin/'],
    ['/usr/lib/systemd/system/', 'upper/unitlib/'],
    ['/lib/systemd/system/', 'upper/unitlib/'],
    ['/opt/', 'upper/opt/'],
    ['/home/', 'upper/home/'],
    ['/root/', 'root/'],
    ['/tmp/', 'tmp/'],
  ];
  for (const [from, to] of map) if (hostPath.startsWith(from)) return join(h.dir, to, hostPath.slice(from.length));
  throw new Error(`cannot seed ${hostPath}: not on a private layer of the host`);
}

export interface SeedFile {
  path: string; // absolute path inside the host
  content?: string | Buffer;
  copyFrom?: string; // hard-link (or copy) this root-namespace file
  symlink?: string; // target of a symlink
  mode?: number;
  uid?: number;
}

/** Write files into a host's layers before it boots (no process needed: plain file writes). */
export function seedFiles(h: HostSpec, files: SeedFile[]): void {
  for (const f of files) {
    const p = seedPath(h, f.path);
    mkdirSync(dirname(p), { recursive: true });
    rmSync(p, { force: true });
    if (f.symlink !== undefined) symlinkSync(f.symlink, p);
    else if (f.copyFrom) {
      try {
        linkSync(f.copyFrom, p); // same filesystem: costs nothing
      } catch {
        copyFileSync(f.copyFrom, p);
      }
    } else writeFileSync(p, f.content ?? '', { mode: f.mode ?? 0o644 });
    if (f.mode !== undefined && f.symlink === undefined && !f.copyFrom) chmodSync(p, f.mode);
    if (f.uid !== undefined) chownSync(p, f.uid, f.uid);
  }
}

/** Create the host's directories and mount its /var tmpfs (root namespace; removed by teardown). */
export async function prepareHostDirs(h: HostSpec, varQuotaMB: number): Promise<void> {
  for (const d of ['etc', 'usrlocal', 'opt', 'home', 'usrbin', 'usrsbin', 'unitlib']) {
    mkdirSync(join(h.dir, 'upper', d), { recursive: true });
    mkdirSync(join(h.dir, 'work', d), { recursive: true });
  }
  mkdirSync(join(h.dir, 'root'), { recursive: true, mode: 0o700 });
  chmodSync(join(h.dir, 'root'), 0o700);
  mkdirSync(join(h.dir, 'tmp'), { recursive: true });
  chmodSync(join(h.dir, 'tmp'), 0o1777);
  const varfs = join(h.dir, 'varfs');
  mkdirSync(varfs, { recursive: true });
  await run('mount', ['-t', 'tmpfs', '-o', `size=${varQuotaMB}m,mode=0755`, `kes-lab-${h.netns}`, varfs]);
  mkdirSync(join(varfs, 'upper'), { recursive: true });
  mkdirSync(join(varfs, 'work'), { recursive: true });
}

export interface InitOptions {
  state: LabState;
  host: HostSpec;
  enableUnits: string[];
  sudoUser?: { name: string; pubkey: string };
  /** Extra init.sh lines (real-kubelet mode), run after the overlays, before /tmp is made private. */
  extraInit?: string;
  /**
   * Bare host (bare.ts): /usr/sbin and /usr/lib/systemd/system get overlays too (whiteouts hide what
   * the machine has installed; the apt stand-in installs there), and only the network namespace's
   * sysctls (/proc/sys/net) stay writable: the others are the machine's, shared by every host.
   */
  bare?: boolean;
}

/** The host's init script (runs as PID 1 inside the new namespaces until it execs sshd). */
export function initScript(o: InitOptions): string {
  const { host: h, state } = o;
  const bits = state.subnet.split('/')[1];
  const D = h.dir;
  const ov = (name: string, target: string): string =>
    `mount -t overlay overlay -o lowerdir=${target},upperdir=${D}/upper/${name},workdir=${D}/work/${name} ${target}`;
  const u = o.sudoUser;
  return `#!/bin/bash
# lab host ${h.name} (${h.address}) of lab ${state.prefix}; generated by test/lab/host.ts
set -eu
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
hostname ${h.name}
ip link set lo up
ip link set eth0 addrgenmode none 2>/dev/null || true
ip addr replace ${h.address}/${bits} dev eth0
ip link set eth0 up
${ov('etc', '/etc')}
mount -t overlay overlay -o lowerdir=/var,upperdir=${D}/varfs/upper,workdir=${D}/varfs/work /var
${ov('usrlocal', '/usr/local')}
${ov('opt', '/opt')}
${ov('home', '/home')}
if [ -e ${D}/no-etcd-tools ]; then
  # this host lacks etcd tools: whiteouts hide them (the machine's own Debian etcd among them)
  for f in etcd etcdctl etcdutl; do rm -f ${D}/upper/usrbin/$f; mknod ${D}/upper/usrbin/$f c 0 0; done
fi
# /usr/bin is the host's own too: the packages the lab "installed" (kubeadm, kubectl, the kubelet
# and crictl stand-ins, the etcd tools of the lab's etcd version) live in its upper layer
${ov('usrbin', '/usr/bin')}
${
  o.bare
    ? `${ov('usrsbin', '/usr/sbin')}
${ov('unitlib', '/usr/lib/systemd/system')}
mount --bind /proc/sys /proc/sys && mount --bind /proc/sys/net /proc/sys/net && mount -o remount,bind,ro /proc/sys
`
    : ''
}mount --bind ${D}/root /root
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
mkdir -p /run/sshd /run/lock /run/systemd/system && chmod 0755 /run/sshd
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm
# systemctl/journalctl stand-ins also answer at the absolute paths scripts may use
for t in systemctl journalctl; do [ -e /usr/bin/$t ] && mount --bind /usr/local/bin/$t /usr/bin/$t || true; done
if [ ! -e ${D}/booted ]; then
  # first boot: a clean unit set (the root system's apt enabled etcd/haproxy/nginx/ssh there)
  rm -f /etc/systemd/system/multi-user.target.wants/* /etc/systemd/system/etcd2.service /etc/systemd/system/sshd.service
  mkdir -p /etc/systemd/system/multi-user.target.wants
${o.enableUnits.map((n) => `  ln -sf $(for d in /etc/systemd/system /lib/systemd/system; do [ -e $d/${n} ] && echo $d/${n} && break; done) /etc/systemd/system/multi-user.target.wants/${n}`).join('\n')}
${
  u
    ? `  id -u ${u.name} >/dev/null 2>&1 || useradd -m -s /bin/bash ${u.name}
  usermod -p '*' ${u.name}
  install -d -m 700 -o ${u.name} -g ${u.name} /home/${u.name}/.ssh
  printf '%s\\n' ${shq(u.pubkey)} > /home/${u.name}/.ssh/authorized_keys
  chown ${u.name}:${u.name} /home/${u.name}/.ssh/authorized_keys && chmod 600 /home/${u.name}/.ssh/authorized_keys`
    : ''
}
  touch ${D}/booted
fi
${o.extraInit ?? ''}mount --bind ${D}/tmp /tmp
cd /
/usr/local/bin/systemctl __boot </dev/null >/dev/null 2>&1 || echo "some units failed to start" >&2
exec env -i PATH=$PATH LANG=C.UTF-8 /usr/sbin/sshd -D -e
`;
}

export function sshdConfig(permitRoot: boolean): string {
  return `# lab sshd: key-only, no PAM (accounts made with useradd need a '*' password), sftp, many sessions
Port 22
ListenAddress 0.0.0.0
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin ${permitRoot ? 'prohibit-password' : 'no'}
PubkeyAuthentication yes
AuthorizedKeysFile .ssh/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
X11Forwarding no
PrintMotd no
AllowTcpForwarding yes
AcceptEnv LANG LC_*
MaxStartups 200:30:400
MaxSessions 200
PidFile /run/sshd.pid
Subsystem sftp /usr/lib/openssh/sftp-server
`;
}

/**
 * Boot the host; returns the pid of the unshare process (outside the host). `keepSys` (real-kubelet
 * mode): enter the netns with `nsenter --net` instead of `ip netns exec`, which remounts /sys and so
 * hides the cgroup mounts the real kubelet needs.
 */
export function startHost(h: HostSpec, prefix: string, keepSys = false): number {
  const log = openSync(join(h.dir, 'host.log'), 'a');
  const child = spawn(
    keepSys ? 'nsenter' : 'ip',
    [
      ...(keepSys ? [`--net=/run/netns/${h.netns}`] : ['netns', 'exec', h.netns]),
      'unshare',
      '--mount',
      '--uts',
      '--ipc',
      '--pid',
      '--fork',
      '--kill-child',
      '--mount-proc',
      '/bin/bash',
      join(h.dir, 'init.sh'),
    ],
    {
      detached: true,
      stdio: ['ignore', log, log],
      env: {
        PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
        LANG: 'C.UTF-8',
        KES_LAB_ID: prefix,
      },
    },
  );
  closeSync(log);
  child.unref();
  if (!child.pid) throw new Error(`could not start host ${h.name}`);
  return child.pid;
}

/** Is h.pid still this host's unshare process? (a stale state file must never make us kill a reused pid) */
export function ownsPid(h: HostSpec): boolean {
  if (!h.pid) return false;
  try {
    return readFileSync(`/proc/${h.pid}/cmdline`, 'utf8').includes(`${h.dir}/init.sh`);
  } catch {
    return false;
  }
}

/** PID (root namespace numbering) of the host's PID 1 (sshd, or init.sh while booting). */
export function hostInitPid(h: HostSpec): number | undefined {
  if (!h.pid || !ownsPid(h)) return undefined;
  try {
    const kids = readFileSync(`/proc/${h.pid}/task/${h.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
    return kids.length ? Number(kids[0]) : undefined;
  } catch {
    return undefined;
  }
}

export function hostRunning(h: HostSpec): boolean {
  return hostInitPid(h) !== undefined;
}

/** Kill the whole host: SIGKILL to unshare (its --kill-child takes PID 1 and so the PID namespace). */
export function killHost(h: HostSpec): void {
  if (!ownsPid(h)) return;
  const init = hostInitPid(h);
  for (const pid of [h.pid, init]) {
    if (!pid) continue;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

export async function waitHostGone(h: HostSpec, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (h.pid && existsSync(`/proc/${h.pid}`) && Date.now() < deadline) {
    // reap is done by our parent-less detached process tree; a zombie unshare still counts as gone
    try {
      if (/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${h.pid}/stat`, 'utf8'))) break;
    } catch {
      break;
    }
    await sleep(20);
  }
}

/** Run a bash script inside the host (all its namespaces), as root. */
export async function hostExec(
  h: HostSpec,
  script: string,
  opts: { input?: string | Buffer; allowFail?: boolean; timeoutMs?: number } = {},
) {
  const pid = hostInitPid(h);
  if (!pid) throw new Error(`host ${h.name} is not running`);
  return run('nsenter', ['-t', String(pid), '-a', '/bin/bash', '-c', script], {
    input: opts.input,
    allowFail: opts.allowFail,
    timeoutMs: opts.timeoutMs ?? 60_000,
    env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8', HOME: '/root' },
  });
}

export function hostExecSync(h: HostSpec, script: string): string {
  const pid = hostInitPid(h);
  if (!pid) throw new Error(`host ${h.name} is not running`);
  return runSync('nsenter', ['-t', String(pid), '-a', '/bin/bash', '-c', script]).stdout;
}

/** Write a file inside a running host (atomically: temp + rename, like an editor would). */
export async function hostWriteFile(h: HostSpec, path: string, content: string | Buffer, mode = 0o644): Promise<void> {
  const tmp = `${path}.lab-tmp`;
  await hostExec(
    h,
    `mkdir -p ${shq(dirname(path))} && cat > ${shq(tmp)} && chmod ${mode.toString(8)} ${shq(tmp)} && mv -f ${shq(tmp)} ${shq(path)}`,
    { input: content },
  );
}

export async function hostReadFile(h: HostSpec, path: string): Promise<string> {
  return (await hostExec(h, `cat ${shq(path)}`)).stdout;
}

/** Resolve when the host's sshd answers with its banner. */
export function sshBanner(address: string, subnet: string, timeoutMs = 1000): Promise<boolean> {
  assertLabAddress(address, subnet);
  return new Promise((resolve) => {
    const s = connect({ host: address, port: 22, timeout: timeoutMs });
    let done = false;
    const finish = (v: boolean): void => {
      if (done) return;
      done = true;
      s.destroy();
      resolve(v);
    };
    s.on('data', (d: Buffer) => finish(d.toString().startsWith('SSH-2.0')));
    s.on('timeout', () => finish(false));
    s.on('error', () => finish(false));
  });
}

/** Unmount the root-namespace tmpfs of a host's /var (teardown). */
export function unmountHostVar(h: HostSpec): void {
  const p = join(h.dir, 'varfs');
  runSync('umount', ['-l', p], { allowFail: true });
}
