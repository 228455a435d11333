// The lab's network guard and subnet rules (no lab needed).
import { describe, expect, it } from 'vitest';
import { assertLabAddress, assertLabSubnet, assertLabUrl, cidrInside } from './guard';
import { hostAddress, bridgeAddress } from './net';

describe('lab network guard', () => {
  it('allows loopback and the lab subnet only', () => {
    expect(() => assertLabAddress('127.0.0.1', '198.18.64.0/24')).not.toThrow();
    expect(() => assertLabAddress('198.18.64.9', '198.18.64.0/24')).not.toThrow();
    expect(() => assertLabAddress('198.18.65.9', '198.18.64.0/24')).toThrow(/outside the lab subnet/);
    expect(() => assertLabAddress('203.0.113.1', '198.18.64.0/24')).toThrow(/outside/);
    expect(() => assertLabAddress('example.com')).toThrow(/not an IPv4 literal/);
    expect(() => assertLabUrl('https://203.0.113.2:6443/readyz')).toThrow();
    expect(() => assertLabUrl('https://198.19.3.4:6443/readyz')).not.toThrow();
  });

  it('refuses lab subnets outside 198.18.0.0/15', () => {
    expect(() => assertLabSubnet('198.19.200.0/24')).not.toThrow();
    expect(() => assertLabSubnet('198.20.0.0/24')).toThrow(/outside 198.18.0.0\/15/);
    expect(() => assertLabSubnet('100.64.0.0/24')).toThrow();
    expect(cidrInside('198.18.64.0/18', '198.18.0.0/15')).toBe(true);
  });

  it('numbers the bridge .1 and hosts after it', () => {
    expect(bridgeAddress('198.18.64.0/24')).toBe('198.18.64.1');
    expect(hostAddress('198.18.64.0/24', 0)).toBe('198.18.64.2');
    expect(() => hostAddress('198.18.64.0/29', 6)).toThrow(/too small/);
  });
});
