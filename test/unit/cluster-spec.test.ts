// Intent: the cluster wizard's rules report every problem with the path of its field — errors for
// what kubeadm or the load balancer would refuse (no master, duplicate hosts, a worker that is a
// master, an LB on a master's 6443, several masters without an LB, bad or overlapping CIDRs, bad
// names and versions), warnings for what works badly (even master counts) — and the defaults
// follow kubeadm (service CIDR) and the CNI's own manifest (pod CIDR, release URL).
import { describe, expect, it } from 'vitest';
import {
  addressKind,
  ClusterSpecSchema,
  defaultCniManifestUrl,
  defaultPodCidr,
  isIPv6,
  newClusterSpec,
  validateClusterSpec,
  type ClusterSpec,
  type Issue,
  type NodeRef,
} from '../../src/shared/cluster-spec';

const node = (name: string, address: string, port = 22): NodeRef => ({ name, address, port, user: 'root' });

function ha(patch: Partial<ClusterSpec> = {}): ClusterSpec {
  return {
    ...newClusterSpec(),
    name: 'prod',
    lb: { kind: 'haproxy', node: node('lb', '198.18.0.2'), port: 6443 },
    masters: [node('m1', '198.18.0.3'), node('m2', '198.18.0.4'), node('m3', '198.18.0.5')],
    workers: [node('w1', '198.18.0.6')],
    ...patch,
  };
}

const fields = (issues: Issue[]) => issues.map((i) => i.field);
const errorAt = (spec: ClusterSpec, field: string) => validateClusterSpec(spec).errors.find((e) => e.field === field);

describe('defaults', () => {
  it('fills kubeadm and calico defaults into a fresh form', () => {
    expect(newClusterSpec()).toEqual({
      name: '',
      lb: { kind: 'haproxy', port: 6443 },
      masters: [],
      workers: [],
      options: {
        kubernetesMinor: '1.36',
        podCidr: '192.168.0.0/16',
        serviceCidr: '10.96.0.0/12',
        cni: 'calico',
        cniManifest: {
          source: 'url',
          url: 'https://raw.githubusercontent.com/projectcalico/calico/v3.32.2/manifests/calico-vxlan.yaml',
        },
      },
    });
  });

  it("takes flannel's own pod CIDR and manifest when flannel is chosen", () => {
    const spec = ClusterSpecSchema.parse({ ...ha(), options: { cni: 'flannel' } });
    expect(spec.options.podCidr).toBe('10.244.0.0/16');
    expect(spec.options.cniManifest).toEqual({
      source: 'url',
      url: 'https://github.com/flannel-io/flannel/releases/latest/download/kube-flannel.yml',
    });
    expect(defaultPodCidr('calico')).toBe('192.168.0.0/16');
  });

  it('renders pinned release URLs and refuses anything but a version', () => {
    expect(defaultCniManifestUrl('calico', '3.31.4')).toBe(
      'https://raw.githubusercontent.com/projectcalico/calico/v3.31.4/manifests/calico-vxlan.yaml',
    );
    expect(defaultCniManifestUrl('flannel', 'v0.28.5')).toBe(
      'https://github.com/flannel-io/flannel/releases/download/v0.28.5/kube-flannel.yml',
    );
    expect(() => defaultCniManifestUrl('calico', 'master/../x')).toThrow(/release version/);
  });
});

describe('validateClusterSpec', () => {
  it('accepts an HA cluster of three masters behind haproxy with no remark', () => {
    expect(validateClusterSpec(ha())).toEqual({ errors: [], warnings: [] });
  });

  it('needs at least one master and warns about an even count', () => {
    expect(errorAt(ha({ masters: [] }), 'masters')?.message).toMatch(/At least one master/);
    const two = validateClusterSpec(ha({ masters: [node('m1', '198.18.0.3'), node('m2', '198.18.0.4')] }));
    expect(two.errors).toEqual([]);
    expect(two.warnings).toEqual([{ field: 'masters', message: expect.stringMatching(/no more failures than 1/) }]);
  });

  it('refuses two nodes on one address:port, but not one address with two SSH ports', () => {
    const dup = ha({ masters: [node('m1', '198.18.0.3'), node('m2', '198.18.0.4'), node('m3', '198.18.0.3')] });
    expect(errorAt(dup, 'masters.2.address')?.message).toMatch(/198\.18\.0\.3:22 is already masters\.0/);
    const nat = ha({
      masters: [node('m1', '203.0.113.9', 2201), node('m2', '203.0.113.9', 2202), node('m3', 'm3.lan')],
    });
    expect(validateClusterSpec(nat).errors).toEqual([]);
  });

  it('refuses a worker that is also a master', () => {
    const spec = ha({ workers: [node('w1', '198.18.0.4')] });
    expect(errorAt(spec, 'workers.0.address')?.message).toMatch(/also a master \(masters\.1\)/);
  });

  it('lets the LB share a master host only on another port than the apiserver', () => {
    const onMaster = (port: number) => ha({ lb: { kind: 'nginx', node: node('m1', '198.18.0.3'), port } });
    expect(errorAt(onMaster(6443), 'lb.port')?.message).toMatch(/kube-apiserver listens on 6443 \(use another port/);
    expect(errorAt(onMaster(2379), 'lb.port')?.message).toMatch(/etcd/);
    expect(validateClusterSpec(onMaster(6643)).errors).toEqual([]);
    // on a worker, 6443 is free
    expect(
      validateClusterSpec(ha({ lb: { kind: 'envoy', node: node('w1', '198.18.0.6'), port: 6443 } })).errors,
    ).toEqual([]);
  });

  it('checks the LB port range and needs an LB node', () => {
    for (const port of [0, 65536, 1.5, NaN])
      expect(errorAt(ha({ lb: { kind: 'haproxy', node: node('lb', '198.18.0.2'), port } }), 'lb.port')).toBeDefined();
    expect(errorAt(ha({ lb: { kind: 'haproxy', port: 6443 } }), 'lb.node')?.message).toMatch(/Choose the node/);
    expect(
      errorAt(ha({ lb: { kind: 'haproxy', node: node('m2', '198.18.0.2'), port: 6443 } }), 'lb.node.name')?.message,
    ).toMatch(/masters\.1 is already named m2/);
    expect(
      errorAt(ha({ lb: { kind: 'haproxy', node: node('lb', '198.18.0.2'), port: 22 } }), 'lb.port')?.message,
    ).toMatch(/sshd/);
  });

  it('allows no LB only with exactly one master', () => {
    expect(errorAt(ha({ lb: { kind: 'none', port: 6443 } }), 'lb.kind')?.message).toMatch(
      /3 masters need a load balancer/,
    );
    const single = ha({ lb: { kind: 'none', port: 6443 }, masters: [node('m1', '198.18.0.3')] });
    expect(validateClusterSpec(single)).toEqual({ errors: [], warnings: [] });
  });

  it('wants RFC 1123 node names, unique, and valid addresses, ports and users', () => {
    const spec = ha({
      masters: [node('M1', '198.18.0.3'), node('m_2', '198.18.0.4'), node('m3', '300.1.1.1', 0)],
      workers: [{ ...node('m3', '198.18.0.6'), user: 'Bad User' }],
    });
    expect(fields(validateClusterSpec(spec).errors)).toEqual([
      'masters.0.name',
      'masters.1.name',
      'masters.2.address',
      'masters.2.port',
      'workers.0.user',
      'workers.0.name',
    ]);
  });

  it('checks CIDRs: form, host bits, size, overlap, and node addresses inside them', () => {
    const withOpts = (o: Partial<ClusterSpec['options']>) => ha({ options: { ...newClusterSpec().options, ...o } });
    expect(errorAt(withOpts({ podCidr: '10.244.0.0' }), 'options.podCidr')?.message).toMatch(/IPv4 CIDR/);
    expect(errorAt(withOpts({ podCidr: '10.244.1.0/16' }), 'options.podCidr')?.message).toMatch(
      /host bits.*10\.244\.0\.0\/16/,
    );
    expect(errorAt(withOpts({ serviceCidr: '10.0.0.0/8' }), 'options.serviceCidr')?.message).toMatch(/\/12 and \/28/);
    expect(errorAt(withOpts({ podCidr: '127.0.0.0/16' }), 'options.podCidr')?.message).toMatch(/loopback/);
    expect(errorAt(withOpts({ podCidr: '10.96.0.0/16' }), 'options.serviceCidr')?.message).toMatch(
      /overlaps the pod CIDR/,
    );
    expect(errorAt(withOpts({ podCidr: '198.18.0.0/16' }), 'masters.0.address')?.message).toMatch(
      /inside the pod CIDR/,
    );
    expect(errorAt(withOpts({ podCidr: '198.18.0.0/16' }), 'lb.node.address')).toBeDefined();
    expect(validateClusterSpec(withOpts({ podCidr: '10.244.0.0/16', serviceCidr: '10.96.0.0/16' })).errors).toEqual([]);
  });

  it('wants a Kubernetes minor version N.NN that pkgs.k8s.io publishes', () => {
    const minor = (kubernetesMinor: string) =>
      errorAt(ha({ options: { ...newClusterSpec().options, kubernetesMinor } }), 'options.kubernetesMinor');
    expect(minor('1.36')).toBeUndefined();
    expect(minor('1.24')).toBeUndefined();
    expect(minor('v1.36')?.message).toMatch(/like 1\.36/);
    expect(minor('1.36.2')?.message).toMatch(/like 1\.36/);
    expect(minor('1.23')?.message).toMatch(/pkgs\.k8s\.io/);
  });

  it("warns when flannel's manifest and the pod CIDR disagree, and checks the manifest source", () => {
    const flannel = ha({
      options: {
        ...newClusterSpec().options,
        cni: 'flannel',
        cniManifest: { source: 'url', url: defaultCniManifestUrl('flannel') },
      },
    });
    expect(validateClusterSpec(flannel).warnings).toEqual([
      { field: 'options.podCidr', message: expect.stringMatching(/net-conf\.json "Network" must be changed/) },
    ]);
    const opts = newClusterSpec().options;
    const bad = (cniManifest: ClusterSpec['options']['cniManifest']) =>
      validateClusterSpec(ha({ options: { ...opts, cniManifest } }));
    expect(fields(bad({ source: 'url', url: 'ftp://mirror/calico.yaml' }).errors)).toEqual(['options.cniManifest.url']);
    expect(fields(bad({ source: 'url', url: 'https://u:p@mirror/calico.yaml' }).errors)).toEqual([
      'options.cniManifest.url',
    ]);
    expect(fields(bad({ source: 'file', path: 'calico.yaml' }).errors)).toEqual(['options.cniManifest.path']);
    expect(bad({ source: 'file', path: '/srv/manifests/calico-vxlan.yaml' })).toEqual({ errors: [], warnings: [] });
    expect(fields(bad({ source: 'url', url: defaultCniManifestUrl('flannel') }).warnings)).toEqual([
      'options.cniManifest.url',
    ]);
  });

  it('warns about loopback addresses: they name the desktop', () => {
    const spec = ha({ lb: { kind: 'none', port: 6443 }, masters: [node('m1', 'localhost')], workers: [] });
    expect(validateClusterSpec(spec).warnings).toEqual([
      { field: 'masters.0.address', message: expect.stringMatching(/loopback/) },
    ]);
  });
});

describe('ClusterSpecSchema', () => {
  it('normalises bracketed IPv6 addresses and applies node defaults', () => {
    const spec = ClusterSpecSchema.parse({
      name: 'v6',
      lb: { kind: 'none' },
      masters: [{ name: 'm1', address: ' [2001:db8::3] ' }],
    });
    expect(spec.masters[0]).toEqual({ name: 'm1', address: '2001:db8::3', port: 22, user: 'root' });
    expect(spec.lb.port).toBe(6443);
  });

  it('turns rule errors into issues with the field path', () => {
    const r = ClusterSpecSchema.safeParse({ ...ha(), workers: [node('w1', '198.18.0.3')] });
    expect(r.success).toBe(false);
    expect(r.error!.issues.map((i) => i.path)).toEqual([['workers', 0, 'address']]);
  });

  it('refuses payloads of the wrong shape or size', () => {
    expect(ClusterSpecSchema.safeParse({ ...ha(), lb: { kind: 'traefik', port: 6443 } }).success).toBe(false);
    expect(ClusterSpecSchema.safeParse({ ...ha(), masters: Array(16).fill(node('m', '198.18.0.3')) }).success).toBe(
      false,
    );
    expect(ClusterSpecSchema.safeParse({ ...ha(), name: 'x'.repeat(64) }).success).toBe(false);
  });
});

describe('address parsing', () => {
  it('tells IPv4, IPv6 and host names apart and refuses the rest', () => {
    expect(['198.18.0.1', '2001:db8::1', '[::1]', '::ffff:192.0.2.1', 'm1.example.com', 'M1'].map(addressKind)).toEqual(
      ['ipv4', 'ipv6', 'ipv6', 'ipv6', 'hostname', 'hostname'],
    );
    for (const bad of ['300.1.1.1', '1.2.3', 'a b', 'm1;reboot', '-m1', '1:2:3:4:5:6:7:8:9', ':::', 'fe80::1%eth0', ''])
      expect(addressKind(bad)).toBeNull();
    expect(isIPv6('1:2:3:4:5:6:7:8')).toBe(true);
    expect(isIPv6('1:2:3:4:5:6:7')).toBe(false);
    expect(isIPv6('1:2:3:4:5:6:1.2.3.4')).toBe(true);
  });
});
