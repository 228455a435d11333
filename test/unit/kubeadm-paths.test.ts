// Intent: kubeadm's paths are read from the node, not assumed. The etcd PKI folder comes from the
// manifests (kubeadm's certificatesDir may be elsewhere) and every etcdctl call through a master
// uses that master's own folder; kubeadm's default only before discovery.
import { describe, expect, it, vi } from 'vitest';
import { parseDiscovery } from '../../src/main/cluster/facts';
import { ClusterOps, STACKED_ETCD_TLS } from '../../src/main/cluster/ops';
import type { InventoryStore } from '../../src/main/inventory/store';
import type { ExecResult } from '../../src/main/ssh/types';

describe('kubeadm paths read from the node', () => {
  it('discovery reports the etcd PKI folder (default when the script says nothing)', () => {
    expect(parseDiscovery('KES_BEGIN\netcd_pki_dir=/srv/kube/pki/etcd\nKES_END').etcdPkiDir).toBe('/srv/kube/pki/etcd');
    expect(parseDiscovery('KES_BEGIN\nhostname=x\nKES_END').etcdPkiDir).toBe('/etc/kubernetes/pki/etcd');
  });

  it("etcdctl through a master uses that master's own PKI folder", async () => {
    const facts = { masters: [{ nodeId: 'm1', etcdPkiDir: '/srv/kube/pki/etcd' }], nodeTools: {} };
    const inventory = { get: () => ({ facts, nodes: [] }) } as unknown as InventoryStore;
    const ops = new ClusterOps({ inventory, pool: {} as never, scripts: {} as never, targetOf: () => ({}) as never });
    const run = vi.spyOn(ops, 'run').mockResolvedValue({ stdout: '', stderr: '', code: 0 } as unknown as ExecResult);
    await ops.etcdctl('c', 'm1', ['https://127.0.0.1:2379'], ['endpoint', 'health']);
    await ops.etcdctl('c', 'm1', ['https://127.0.0.1:2379'], ['member', 'list'], { tls: STACKED_ETCD_TLS });
    await ops.etcdctl('c', 'm2', ['https://127.0.0.1:2379'], ['member', 'list']); // not discovered yet
    const caOf = (i: number) => (run.mock.calls[i][3] as string[])[1];
    expect(caOf(0)).toBe('/srv/kube/pki/etcd/ca.crt');
    expect((run.mock.calls[0][3] as string[])[2]).toBe('/srv/kube/pki/etcd/healthcheck-client.crt');
    expect(caOf(1)).toBe('/srv/kube/pki/etcd/ca.crt');
    expect(caOf(2)).toBe('/etc/kubernetes/pki/etcd/ca.crt');
    // an explicit other client (an external member's files) is kept as given
    await ops.etcdctl('c', 'm1', ['https://198.18.0.9:2379'], ['endpoint', 'health'], {
      tls: { ca: '/etc/etcd/pki/ca.crt', cert: '/etc/etcd/pki/c.crt', key: '/etc/etcd/pki/c.key' },
    });
    expect(caOf(3)).toBe('/etc/etcd/pki/ca.crt');
  });
});
