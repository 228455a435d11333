// The lab's network rule, enforced in code: every connection the lab itself opens (etcd health checks,
// apiserver probes, SSH from the tests) must go to loopback or to an address inside the lab's own
// subnet, which itself must lie inside 198.18.0.0/15 (RFC 2544 benchmarking range, never routed on the
// internet). A mistake in a test then fails loudly instead of touching someone else's network.
import { isIP } from 'node:net';

/** The only range lab hosts may ever use. */
export const LAB_RANGE = '198.18.0.0/15';

export interface Cidr {
  base: number; // network address as unsigned 32-bit integer
  bits: number;
}

export function ipToInt(ip: string): number {
  const parts = ip.split('.');
  if (parts.length !== 4 || isIP(ip) !== 4) throw new Error(`not an IPv4 address: ${ip}`);
  return parts.reduce((acc, p) => acc * 256 + Number(p), 0) >>> 0;
}

export function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export function parseCidr(cidr: string): Cidr {
  const [ip, bitsText] = cidr.split('/');
  const bits = Number(bitsText);
  if (!Number.isInteger(bits) || bits < 0 || bits > 32) throw new Error(`bad CIDR: ${cidr}`);
  const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
  return { base: (ipToInt(ip) & mask) >>> 0, bits };
}

export function cidrContains(cidr: Cidr | string, ip: string): boolean {
  const c = typeof cidr === 'string' ? parseCidr(cidr) : cidr;
  const mask = c.bits === 0 ? 0 : (~0 << (32 - c.bits)) >>> 0;
  return (ipToInt(ip) & mask) >>> 0 === c.base;
}

/** True when `inner` lies entirely inside `outer`. */
export function cidrInside(inner: string, outer: string): boolean {
  const i = parseCidr(inner);
  const o = parseCidr(outer);
  return i.bits >= o.bits && cidrContains(o, intToIp(i.base));
}

export function isLoopback(addr: string): boolean {
  if (addr === 'localhost' || addr === '::1') return true;
  return isIP(addr) === 4 && cidrContains('127.0.0.0/8', addr);
}

/** Refuses a lab subnet outside 198.18.0.0/15 (the lab's hard network rule). */
export function assertLabSubnet(subnet: string): void {
  parseCidr(subnet);
  if (!cidrInside(subnet, LAB_RANGE)) {
    throw new Error(`lab subnet ${subnet} is outside ${LAB_RANGE}; the lab may use no other addresses`);
  }
}

/**
 * Call before every connect/fetch the lab makes. `subnet` is the lab's own subnet; without it any
 * address in 198.18.0.0/15 passes (used by the emulators inside hosts, which know no lab config).
 */
export function assertLabAddress(addr: string, subnet?: string): void {
  const host = addr.replace(/^\[|\]$/g, '');
  if (isLoopback(host)) return;
  if (isIP(host) !== 4) throw new Error(`lab guard: refusing traffic to ${addr}: not an IPv4 literal`);
  const allowed = subnet ?? LAB_RANGE;
  if (!cidrContains(LAB_RANGE, host) || !cidrContains(allowed, host)) {
    throw new Error(`lab guard: refusing traffic to ${addr}: outside the lab subnet ${allowed}`);
  }
}

/** Same check for a URL (https://198.18.64.2:6443/readyz). */
export function assertLabUrl(url: string, subnet?: string): void {
  assertLabAddress(new URL(url).hostname, subnet);
}
