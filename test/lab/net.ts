// Network of one lab: a bridge in the root namespace (<prefix>-br, address .1) and one network
// namespace per host joined by a veth pair. Hosts get no default route, so nothing inside can reach
// beyond the lab subnet. IPv6 address generation is switched off on every lab link: the lab may use
// no address outside 198.18.0.0/15 (loopback excepted).
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertLabSubnet, cidrContains, intToIp, parseCidr } from './guard';
import { SERVICE_SUBNET } from './kubeadm';
import type { HostSpec } from './types';
import { run, runSync } from './util';

/** Where default lab subnets come from (override: KES_LAB_SUBNET_POOL, must lie in 198.18.0.0/15). */
export const DEFAULT_POOL = '198.19.0.0/16';

export const PREFIX_RE = /^[a-z][a-z0-9]{1,7}$/;

export function bridgeName(prefix: string): string {
  return `${prefix}-br`;
}

/** Existing network namespace names (ours and everybody else's: we only ever touch ours). */
export function listNetns(): string[] {
  try {
    return readdirSync('/run/netns');
  } catch {
    return [];
  }
}

export function listLinks(): string[] {
  const r = runSync('ip', ['-o', 'link', 'show'], { allowFail: true });
  return r.stdout
    .split('\n')
    .map((l) => l.split(':')[1]?.trim().split('@')[0])
    .filter((n): n is string => !!n);
}

function prefixInUse(prefix: string, baseDir: string): boolean {
  const p = `${prefix}-`;
  return (
    listNetns().some((n) => n.startsWith(p)) ||
    listLinks().some((n) => n.startsWith(p)) ||
    existsSync(join(baseDir, prefix))
  );
}

/** A fresh prefix no other lab uses right now: "kx" + 4 random base-36 characters. */
export function freshPrefix(baseDir: string, base = process.env.KES_LAB_PREFIX_BASE ?? 'kx'): string {
  for (let i = 0; i < 50; i++) {
    const p = base + Math.random().toString(36).slice(2, 6).padEnd(4, '0');
    if (PREFIX_RE.test(p) && !prefixInUse(p, baseDir)) return p;
  }
  throw new Error('could not find a free lab prefix');
}

/** IPv4 networks already configured in the root namespace (addresses and routes). */
function usedNets(): string[] {
  const out: string[] = [];
  const a = runSync('ip', ['-4', '-o', 'addr', 'show'], { allowFail: true }).stdout;
  for (const m of a.matchAll(/inet (\d+\.\d+\.\d+\.\d+\/\d+)/g)) out.push(m[1]);
  const r = runSync('ip', ['-4', 'route', 'show', 'table', 'all'], { allowFail: true }).stdout;
  for (const m of r.matchAll(/^(\d+\.\d+\.\d+\.\d+\/\d+)/gm)) out.push(m[1]);
  return out;
}

function overlaps(a: string, b: string): boolean {
  const ca = parseCidr(a);
  const cb = parseCidr(b);
  return cidrContains(ca, intToIp(cb.base)) || cidrContains(cb, intToIp(ca.base));
}

/**
 * Reserve a subnet for this lab: a lock dir under <baseDir>/.subnets makes two labs started at the same
 * moment pick different ones; subnets already on some interface are skipped too.
 */
export function reserveSubnet(
  prefix: string,
  baseDir: string,
  wanted?: string,
  pool = process.env.KES_LAB_SUBNET_POOL ?? DEFAULT_POOL,
): string {
  const locks = join(baseDir, '.subnets');
  mkdirSync(locks, { recursive: true });
  const used = usedNets();
  const tryOne = (subnet: string): boolean => {
    assertLabSubnet(subnet);
    if (used.some((u) => overlaps(u, subnet))) return false;
    const lock = join(locks, subnet.replace('/', '_'));
    try {
      mkdirSync(lock);
    } catch {
      // stale lock of a lab whose dir is gone: reclaim it
      let owner = '';
      try {
        owner = readFileSync(join(lock, 'owner'), 'utf8').trim();
      } catch {
        /* no owner file */
      }
      if (owner && (owner === prefix || !existsSync(join(baseDir, owner)))) {
        writeFileSync(join(lock, 'owner'), prefix);
        return true;
      }
      return false;
    }
    writeFileSync(join(lock, 'owner'), prefix);
    return true;
  };
  if (wanted) {
    if (!tryOne(wanted)) throw new Error(`subnet ${wanted} is in use (by an interface or another lab)`);
    return wanted;
  }
  // A /24 from the pool (default 198.19.0.0/16: other labs tend to sit in 198.18.x), starting at a
  // hash of the prefix; the service CIDR string of the kubeadm config (never routed) is skipped.
  assertLabSubnet(pool);
  const p = parseCidr(pool);
  const count = p.bits >= 24 ? 1 : 2 ** (24 - p.bits);
  let h = 0;
  for (const c of prefix) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  for (let i = 0; i < count; i++) {
    const s = `${intToIp(p.base + ((h + i) % count) * 256)}/24`;
    if (s === SERVICE_SUBNET) continue;
    if (tryOne(s)) return s;
  }
  throw new Error(`no free /24 left in ${pool} for the lab`);
}

export function releaseSubnet(subnet: string, baseDir: string, prefix: string): void {
  const lock = join(baseDir, '.subnets', subnet.replace('/', '_'));
  try {
    if (readFileSync(join(lock, 'owner'), 'utf8').trim() === prefix) rmSync(lock, { recursive: true, force: true });
  } catch {
    /* already gone */
  }
}

/** Host addresses: bridge is .1, hosts follow in order. */
export function hostAddress(subnet: string, index: number): string {
  const c = parseCidr(subnet);
  const size = 2 ** (32 - c.bits);
  if (index + 2 >= size - 1) throw new Error(`subnet ${subnet} too small for ${index + 1} hosts`);
  return intToIp(c.base + 2 + index);
}

export function bridgeAddress(subnet: string): string {
  return intToIp(parseCidr(subnet).base + 1);
}

/** Create bridge, namespaces and veth pairs in one `ip -batch` (a few ms). */
export async function createNetwork(prefix: string, subnet: string, hosts: HostSpec[]): Promise<void> {
  const br = bridgeName(prefix);
  const bits = parseCidr(subnet).bits;
  const lines = [
    `link add ${br} type bridge`,
    `link set ${br} addrgenmode none`,
    `addr add ${bridgeAddress(subnet)}/${bits} dev ${br}`,
    `link set ${br} up`,
  ];
  for (const h of hosts) {
    lines.push(
      `netns add ${h.netns}`,
      `link add ${h.veth} type veth peer name eth0 netns ${h.netns}`,
      `link set ${h.veth} addrgenmode none`,
      `link set ${h.veth} master ${br}`,
      `link set ${h.veth} up`,
    );
  }
  await run('ip', ['-batch', '-'], { input: lines.join('\n') + '\n' });
}

/** Remove our namespaces and bridge (veths die with their namespace). Sync: usable from exit handlers. */
export function destroyNetwork(prefix: string, hostNetns: string[]): void {
  const p = `${prefix}-`;
  const ns = new Set(hostNetns.filter((n) => n.startsWith(p)));
  for (const n of listNetns()) if (n.startsWith(p)) ns.add(n);
  const lines = [...ns].map((n) => `netns del ${n}`);
  for (const l of listLinks()) if (l.startsWith(p)) lines.push(`link del ${l}`);
  if (lines.length) runSync('ip', ['-force', '-batch', '-'], { input: lines.join('\n') + '\n', allowFail: true });
}

/** Fault hook: unplug / replug a host's cable (root-side end of its veth). */
export async function setLink(veth: string, up: boolean): Promise<void> {
  await run('ip', ['link', 'set', veth, up ? 'up' : 'down']);
}
