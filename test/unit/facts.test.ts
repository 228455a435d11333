// Intent: discovery output is parsed strictly, and the cluster mode follows from what each
// master's apiserver is wired to and whether it is ready — disagreement is reported as mixed.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { classifyMode, parseDiscovery, parseInitialCluster } from '../../src/main/cluster/facts';

const b64 = (f: string) => readFileSync(join(__dirname, 'fixtures', f)).toString('base64');

describe('parseDiscovery', () => {
  it('reads manifests, tools and versions', () => {
    const out = [
      'noise before',
      'KES_BEGIN',
      'hostname=m1',
      'user=root',
      `etcd_manifest=${b64('etcd.yaml')}`,
      `apiserver_manifest=${b64('kube-apiserver.yaml')}`,
      'admin_conf_server=https://198.18.0.9:6443',
      'etcd_ca_key_present=1',
      'tool_etcdctl=/usr/bin/etcdctl',
      'version_etcdctl=3.4.23',
      'tool_etcdutl=',
      'listening=2379 2380 6443',
      'parked_manifests=etcd.yaml ',
      'KES_END',
    ].join('\n');
    const f = parseDiscovery(out);
    expect(f.etcd?.name).toBe('m1');
    expect(f.apiserver?.etcdServers).toEqual(['https://127.0.0.1:2379']);
    expect(f.tools).toEqual({ etcd: null, etcdctl: '/usr/bin/etcdctl', etcdutl: null, kubectl: null });
    expect(f.versions.etcdctl).toBe('3.4.23');
    expect(f.listening).toEqual([2379, 2380, 6443]);
    expect(f.parkedManifests).toEqual(['etcd.yaml']);
    expect(f.etcdCaKeyPresent).toBe(true);
    expect(f.problems).toEqual([]);
  });

  it('reports a broken manifest as a problem, not a crash', () => {
    const f = parseDiscovery(`KES_BEGIN\netcd_manifest=${Buffer.from('kind: [').toString('base64')}\nKES_END\n`);
    expect(f.etcd).toBeNull();
    expect(f.problems[0]).toMatch(/^etcd.yaml:/);
  });

  it('refuses output without the markers', () => {
    expect(() => parseDiscovery('hello')).toThrow(/KES_BEGIN/);
  });
});

describe('parseInitialCluster', () => {
  it('splits names and peer URLs', () => {
    expect(parseInitialCluster('m1=https://198.18.0.2:2380,m2=https://[fd00::2]:2380')).toEqual([
      { name: 'm1', peerUrl: 'https://198.18.0.2:2380', host: '198.18.0.2' },
      { name: 'm2', peerUrl: 'https://[fd00::2]:2380', host: 'fd00::2' },
    ]);
    expect(() => parseInitialCluster('broken')).toThrow();
  });
});

describe('classifyMode', () => {
  const masters = ['198.18.0.2', '198.18.0.3'];
  const m = (name: string, servers: string[] | null, ready: boolean) => ({
    name,
    address: '',
    etcdServers: servers,
    apiserverReady: ready,
  });
  it.each([
    [[m('m1', ['https://127.0.0.1:2379'], true), m('m2', ['https://127.0.0.1:2379'], false)], 'embedded-up'],
    [
      [m('m1', ['https://127.0.0.1:2379'], false), m('m2', ['https://198.18.0.3:2379'], false)],
      'down (configured for embedded)',
    ],
    [
      [
        m('m1', ['https://198.18.0.20:2379', 'https://198.18.0.21:2379'], true),
        m('m2', ['https://198.18.0.20:2379'], true),
      ],
      'external-up',
    ],
    [
      [m('m1', ['https://198.18.0.20:2379'], false), m('m2', ['https://198.18.0.20:2379'], false)],
      'down (configured for external)',
    ],
    [[m('m1', ['https://127.0.0.1:2379'], true), m('m2', ['https://198.18.0.20:2379'], true)], 'mixed'],
    [[m('m1', ['https://127.0.0.1:2379', 'https://198.18.0.20:2379'], true)], 'mixed'],
    [[m('m1', null, false)], 'mixed'],
    [[], 'unknown'],
  ])('%#: %s', (input, mode) => {
    const r = classifyMode(input, masters);
    expect(r.mode).toBe(mode);
    if (input.length) expect(r.details).toHaveLength(input.length);
  });
});
