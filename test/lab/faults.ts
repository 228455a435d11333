// Fault hooks for tests. Each acts on one host only and is undone by its counterpart (or by teardown).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hostExec, hostRunning, killHost, startHost, waitHostGone } from './host';
import { setLink } from './net';
import { resetHostCgroups } from './realkubelet';
import type { HostSpec, LabState } from './types';
import { run, shq } from './util';

/** Stop a host: sshd and every process in it die at once (like pulling the power plug). */
export async function stopHost(h: HostSpec): Promise<void> {
  killHost(h);
  await waitHostGone(h);
}

/** Boot a stopped host again: same disks (overlays, /var), units the host had enabled start again. */
export function bootHost(state: LabState, h: HostSpec): void {
  if (hostRunning(h)) throw new Error(`host ${h.name} is running`);
  if (state.kubelet === 'real') resetHostCgroups(state, h);
  h.pid = startHost(h, state.prefix, state.kubelet === 'real');
}

/** Unplug / replug the host's network cable (its veth end on the bridge). */
export async function cutLink(h: HostSpec): Promise<void> {
  await setLink(h.veth, false);
}
export async function restoreLink(h: HostSpec): Promise<void> {
  await setLink(h.veth, true);
}

/** Kill processes by exact name (comm) inside one host only; returns how many were signalled. */
export async function killProcess(h: HostSpec, name: string, signal = 'KILL'): Promise<number> {
  const r = await hostExec(h, `n=$(pgrep -xc ${shq(name)} || true); pkill -${signal} -x ${shq(name)} || true; echo $n`);
  return Number(r.stdout.trim() || 0);
}

/**
 * Fill the host's disk: its /var lives on a tmpfs, which we shrink to what is used plus `leaveKB` and
 * then fill with /var/lab-fill, so writes under /var fail with ENOSPC. freeDisk() undoes it.
 */
export async function fillDisk(state: LabState, h: HostSpec, leaveKB = 0): Promise<void> {
  const varfs = join(h.dir, 'varfs');
  const used = Number((await run('df', ['--output=used', '-k', varfs])).stdout.split('\n')[1].trim());
  await run('mount', ['-o', `remount,size=${used + 1024 + leaveKB}k`, varfs]);
  await hostExec(h, `dd if=/dev/zero of=/var/lab-fill bs=64k 2>/dev/null || true; sync`, { allowFail: true });
  if (leaveKB) await hostExec(h, `truncate -s -${leaveKB}K /var/lab-fill || true`, { allowFail: true });
  void state;
}

export async function freeDisk(state: LabState, h: HostSpec): Promise<void> {
  await hostExec(h, 'rm -f /var/lab-fill', { allowFail: true });
  await run('mount', ['-o', `remount,size=${state.varQuotaMB}m`, join(h.dir, 'varfs')]);
}

/** Overwrite `bytes` bytes at `offset` of a file inside the host with random data (no truncation). */
export async function corruptFile(
  h: HostSpec,
  path: string,
  opts: { offset?: number; bytes?: number } = {},
): Promise<void> {
  const off = opts.offset ?? 0;
  const n = opts.bytes ?? 64;
  await hostExec(
    h,
    `test -f ${shq(path)} && head -c ${n} /dev/urandom | dd of=${shq(path)} bs=1 seek=${off} conv=notrunc status=none`,
  );
}

/**
 * Make a running host lack etcd tools (etcd, etcdctl, etcdutl vanish from /usr/bin inside that host
 * only): an overlay with whiteouts is mounted over /usr/bin in the host's mount namespace. Static pods
 * keep working (their "image" copy of etcd lives in /usr/local/lib/kes-lab/images). The same is done at
 * boot for hosts listed in LabOptions.noEtcdTools.
 */
export async function hideEtcdTools(h: HostSpec): Promise<void> {
  // Overlayfs only accepts layer dirs reachable in the caller's own mount namespace, and the host
  // cannot see the lab dir (private /tmp), so the running host gets its layers on its own /run tmpfs;
  // the flag file makes every later boot hide them too (with persistent layers from the lab dir).
  await hostExec(
    h,
    `set -e; d=/run/kes-lab/usrbin; mkdir -p $d/upper $d/work
for f in etcd etcdctl etcdutl; do [ -e $d/upper/$f ] || mknod $d/upper/$f c 0 0; done
mount -t overlay overlay -o lowerdir=/usr/bin,upperdir=$d/upper,workdir=$d/work /usr/bin`,
  );
  writeFileSync(join(h.dir, 'no-etcd-tools'), '');
  h.etcdTools = false;
}

const STICKY_FLAG = '/run/kes-lab/fault-kubelet-sources-not-ready';

/**
 * A kubelet that will not let go: while the fault is on, the host's kubelet stops no pod whose
 * manifest goes away — what the real kubelet does after a restart while the apiserver was
 * unreachable, until its sources are ready. `crictl stop` still stops such pods. Ends at host
 * reboot or with looseKubelet().
 */
export async function stickyKubelet(h: HostSpec, restartKubelet = false): Promise<void> {
  await hostExec(
    h,
    `mkdir -p /run/kes-lab && touch ${STICKY_FLAG}${restartKubelet ? ' && systemctl restart kubelet' : ''}`,
  );
}
export async function looseKubelet(h: HostSpec): Promise<void> {
  await hostExec(h, `rm -f ${STICKY_FLAG}`);
}
