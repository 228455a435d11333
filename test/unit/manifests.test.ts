// Intent: editing kubeadm manifests for a restore changes exactly the data dir flag, the etcd-data
// hostPath and mount, the token and the initial cluster — nothing else — and apiserver rewiring
// changes only --etcd-servers (the etcd client cert flags stay).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  firstStartManifest,
  editApiserverEtcdServers,
  editEtcdManifest,
  readApiserverManifest,
  readEtcdManifest,
  unifiedDiff,
} from '../../src/main/etcd/manifests';

const etcdYaml = readFileSync(join(__dirname, 'fixtures/etcd.yaml'), 'utf8');
const apiYaml = readFileSync(join(__dirname, 'fixtures/kube-apiserver.yaml'), 'utf8');

describe('etcd.yaml', () => {
  it('reads what a restore needs', () => {
    expect(readEtcdManifest(etcdYaml)).toMatchObject({
      name: 'm1',
      dataDir: '/var/lib/etcd',
      dataHostPath: '/var/lib/etcd',
      initialCluster: 'm1=https://198.18.0.2:2380',
      initialClusterState: 'new',
      initialClusterToken: undefined,
      trustedCaFile: '/etc/kubernetes/pki/etcd/ca.crt',
      image: 'registry.k8s.io/etcd:3.5.15-0',
    });
  });

  it('edits data dir (flag, hostPath, mount), token and initial cluster, and nothing else', () => {
    const out = editEtcdManifest(etcdYaml, {
      dataDir: '/var/lib/etcd-restore-1',
      initialClusterToken: 'kes-restore-abc',
      initialCluster: 'm1=https://198.18.0.2:2380,m2=https://198.18.0.3:2380',
      initialClusterState: 'new',
    });
    const info = readEtcdManifest(out);
    expect(info.dataDir).toBe('/var/lib/etcd-restore-1');
    expect(info.dataHostPath).toBe('/var/lib/etcd-restore-1');
    expect(info.initialClusterToken).toBe('kes-restore-abc');
    expect(out).toContain('- mountPath: /var/lib/etcd-restore-1\n      name: etcd-data');
    // certs volume untouched
    expect(out).toContain('path: /etc/kubernetes/pki/etcd\n      type: DirectoryOrCreate\n    name: etcd-certs');
    const diff = unifiedDiff('/etc/kubernetes/manifests/etcd.yaml', etcdYaml, out);
    const changed = diff.split('\n').filter((l) => /^[-+][^-+]/.test(l));
    expect(changed).toEqual([
      '-    - --data-dir=/var/lib/etcd',
      '+    - --data-dir=/var/lib/etcd-restore-1',
      '-    - --initial-cluster=m1=https://198.18.0.2:2380',
      '+    - --initial-cluster=m1=https://198.18.0.2:2380,m2=https://198.18.0.3:2380',
      '+    - --initial-cluster-token=kes-restore-abc',
      '+    - --initial-cluster-state=new',
      '-    - mountPath: /var/lib/etcd',
      '+    - mountPath: /var/lib/etcd-restore-1',
      '-      path: /var/lib/etcd',
      '+      path: /var/lib/etcd-restore-1',
    ]);
  });

  it('refuses relative data dirs and non-pod documents', () => {
    expect(() => editEtcdManifest(etcdYaml, { dataDir: 'var/lib/x' })).toThrow(/absolute/);
    expect(() => readEtcdManifest('kind: Deployment\n')).toThrow(/not a Pod/);
    expect(() => readEtcdManifest('kind: [unclosed')).toThrow();
  });
});

describe('first start of restored members (initial corruption check)', () => {
  it('turns only that flag off, in place, and changes nothing else', () => {
    const first = firstStartManifest(etcdYaml)!;
    expect(first).toContain('- --experimental-initial-corrupt-check=false');
    expect(first).not.toContain('--experimental-initial-corrupt-check=true');
    const lines = (t: string) => t.split('\n');
    const changed = lines(first).filter((l, i) => l !== lines(etcdYaml)[i]);
    expect(changed).toEqual(['    - --experimental-initial-corrupt-check=false']);
  });

  it('has nothing to do when the check is off or absent', () => {
    expect(firstStartManifest(firstStartManifest(etcdYaml)!)).toBeNull();
    expect(firstStartManifest(etcdYaml.replace(/^.*initial-corrupt-check.*\n/m, ''))).toBeNull();
  });
});

describe('kube-apiserver.yaml', () => {
  it('reads etcd wiring', () => {
    expect(readApiserverManifest(apiYaml)).toMatchObject({
      etcdServers: ['https://127.0.0.1:2379'],
      etcdCertFile: '/etc/kubernetes/pki/apiserver-etcd-client.crt',
      securePort: 6443,
    });
  });

  it('rewrites only --etcd-servers', () => {
    const out = editApiserverEtcdServers(apiYaml, ['https://198.18.0.20:2379', 'https://198.18.0.21:2379']);
    const changed = unifiedDiff('/x', apiYaml, out)
      .split('\n')
      .filter((l) => /^[-+][^-+]/.test(l));
    expect(changed).toEqual([
      '-    - --etcd-servers=https://127.0.0.1:2379',
      '+    - --etcd-servers=https://198.18.0.20:2379,https://198.18.0.21:2379',
    ]);
    expect(() => editApiserverEtcdServers(apiYaml, ['https://a:1 --evil'])).toThrow(/Not an etcd URL/);
    expect(() => editApiserverEtcdServers(apiYaml, [])).toThrow();
  });

  it('yields an empty diff when nothing changes', () => {
    expect(unifiedDiff('/x', apiYaml, apiYaml)).toBe('');
  });
});
