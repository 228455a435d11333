// Intent: healthy modes are green whichever etcd serves; "etcdutl missing" is flagged on etcd 3.5+
// and never on 3.4 (which has no etcdutl); a stacked master's etcd binary is not asked for.
import { describe, expect, it } from 'vitest';
import type { MasterFact } from '@shared/domain';
import { hasEtcdutl, lacksTools, modeTone, toolCell } from './chips';

const master = (tools: Partial<MasterFact['tools']>, versions: Partial<MasterFact['versions']> = {}): MasterFact => ({
  nodeId: 'm1',
  name: 'm1',
  hostname: 'm1',
  etcdPkiDir: '/etc/kubernetes/pki/etcd',
  etcdServers: ['https://127.0.0.1:2379'],
  etcdDataDir: '/var/lib/etcd',
  etcdManifest: 'active',
  tools: { etcd: null, etcdctl: null, etcdutl: null, ...tools },
  versions: { etcd: null, etcdctl: null, etcdutl: null, ...versions },
  problems: [],
});

describe('chips', () => {
  it('paints both healthy modes green, down red, mixed amber', () => {
    expect(modeTone('embedded-up')).toBe('ok');
    expect(modeTone('external-up')).toBe('ok');
    expect(modeTone('down (configured for external)')).toBe('danger');
    expect(modeTone('mixed')).toBe('warn');
    expect(modeTone(null)).toBe('neutral');
  });

  it('flags a missing etcdutl on etcd 3.5 and later, not on 3.4', () => {
    expect([hasEtcdutl('3.4.23'), hasEtcdutl('v3.5.17'), hasEtcdutl('3.6.0-0'), hasEtcdutl(null)]).toEqual([
      false,
      true,
      true,
      null,
    ]);
    const m34 = master({ etcdctl: '/usr/bin/etcdctl' }, { etcdctl: '3.4.23' });
    expect(toolCell(m34, 'etcdutl', '3.4.23')).toMatchObject({ text: 'not in 3.4', tone: 'neutral', missing: false });
    expect(lacksTools(m34, '3.4.23')).toBe(false);
    // The cluster's version decides even when the host's tools say nothing.
    expect(toolCell(master({}), 'etcdutl', '3.4.13-0').missing).toBe(false);
    const m36 = master({ etcdctl: '/usr/local/bin/etcdctl' }, { etcdctl: '3.6.5' });
    expect(toolCell(m36, 'etcdutl', '3.6.5')).toMatchObject({ text: 'missing', tone: 'warn', missing: true });
    expect(lacksTools(m36, '3.6.5')).toBe(true);
    // Unknown version: asked for.
    expect(toolCell(master({}), 'etcdutl', null).missing).toBe(true);
  });

  it('shows a tool that is there with its version, and a stacked member without a host etcd as from its image', () => {
    const m = master({ etcdctl: '/usr/local/bin/etcdctl', etcdutl: '/usr/local/bin/etcdutl' }, { etcdctl: '3.6.5' });
    expect(toolCell(m, 'etcdctl', '3.6.5')).toMatchObject({ text: '3.6.5', tone: 'ok', missing: false });
    expect(toolCell(m, 'etcdutl', '3.6.5')).toMatchObject({ text: 'present', tone: 'ok' });
    expect(toolCell(m, 'etcd', '3.6.5')).toMatchObject({ text: 'runs from its image', missing: false });
    expect(toolCell({ ...m, etcdManifest: 'absent' }, 'etcd', '3.6.5').missing).toBe(true);
  });
});
