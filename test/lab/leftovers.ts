// "Did the lab leave anything behind?" — namespaces, links, mounts and processes carrying the lab's
// prefix or lab dir. Call after teardown; processes in a dying PID namespace are reaped a little late,
// so by default this waits ~2 s first.
import { readdirSync, readFileSync } from 'node:fs';
import { listLinks, listNetns } from './net';
import { cgroupLeftovers } from './realkubelet';
import { sleep } from './util';

export interface Leftovers {
  netns: string[];
  links: string[];
  mounts: string[];
  processes: string[];
  /** Real-kubelet mode: the lab's cgroup roots still there (only present when some are). */
  cgroups?: string[];
}

export function isClean(l: Leftovers): boolean {
  return !l.netns.length && !l.links.length && !l.mounts.length && !l.processes.length && !l.cgroups?.length;
}

export async function leftovers(prefix: string, labDir: string, opts: { waitMs?: number } = {}): Promise<Leftovers> {
  await sleep(opts.waitMs ?? 2000);
  const p = `${prefix}-`;
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => l.includes(`${labDir}/`) || l.includes(`/run/netns/${p}`) || l.includes(`kes-lab-${p}`));
  const processes: string[] = [];
  const cgroups = cgroupLeftovers(prefix);
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    if (Number(pid) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
      const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
      if (cmd.includes(`${labDir}/`) || env.includes(`KES_LAB_ID=${prefix}`)) processes.push(`${pid} ${cmd}`);
    } catch {
      /* exited meanwhile */
    }
  }
  return {
    netns: listNetns().filter((n) => n.startsWith(p)),
    links: listLinks().filter((n) => n.startsWith(p)),
    mounts,
    processes,
    ...(cgroups.length ? { cgroups } : {}),
  };
}
