// Lab self-test, bare mode: hosts with nothing of Kubernetes (bare.ts). Everything below runs over
// real SSH as root, the way the app creates a cluster on fresh Debian hosts: the apt repository of
// pkgs.k8s.io and its keyring, apt-get update/install, apt-mark hold, containerd's config, the real
// kubeadm init on m1 (LB endpoint: haproxy installed and configured on the lb host), kubeadm join
// --control-plane on m2, kubeadm join on the worker w1, then kubeadm reset -f on w1.
// Also the package-tool stand-ins' strictness (apt's messages and exit codes).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { upTestLab } from './helpers';
import { EtcdClient, isClean, Lab } from './index';
import { waitFor } from './util';

let lab: Lab;
const t0 = Date.now();
const log = (m: string): void => {
  if (process.env.KES_LAB_VERBOSE) console.log(`[bare] ${m} (+${Date.now() - t0} ms)`);
};

/** kubeadm preflight errors a real Debian 12 host would not have, ignored in the lab only (README). */
const LAB_IGNORE_PREFLIGHT = 'SystemVerification';
const POD_SUBNET = '198.18.192.0/18';
const SERVICE_SUBNET = '198.19.255.0/24';
const KEYRING = '/etc/apt/keyrings/kubernetes-apt-keyring.gpg';
const REPO_LINE = `deb [signed-by=${KEYRING}] https://pkgs.k8s.io/core:/stable:/v1.36/deb/ /`;
/** A dearmored (binary OpenPGP) keyring: the lab has no network to fetch the real Release.key. */
const KEY = Buffer.concat([Buffer.from([0x99, 0x01, 0x0d]), Buffer.from('kes-lab placeholder key')]);

/** What the app runs on every Kubernetes node before kubeadm (as root). */
const NODE_PREP = `set -e
swapoff -a
printf 'overlay\\nbr_netfilter\\n' > /etc/modules-load.d/k8s.conf
modprobe overlay
modprobe br_netfilter
printf 'net.ipv4.ip_forward = 1\\n' > /etc/sysctl.d/99-kubernetes.conf
sysctl --system
apt-get update
apt-get install -y apt-transport-https ca-certificates curl gpg
install -d -m 0755 /etc/apt/keyrings
test -s ${KEYRING}
echo '${REPO_LINE}' > /etc/apt/sources.list.d/kubernetes.list
apt-get update
apt-get install -y containerd kubelet kubeadm kubectl
apt-mark hold kubelet kubeadm kubectl
mkdir -p /etc/containerd
containerd config default > /etc/containerd/config.toml
sed -i -e 's/SystemdCgroup = false/SystemdCgroup = true/' \\
  -e 's#sandbox_image = ".*"#sandbox_image = "registry.k8s.io/pause:3.10.2"#' /etc/containerd/config.toml
systemctl restart containerd
systemctl enable --now kubelet
`;

async function root(host: string, command: string, input?: string | Buffer) {
  return lab.ssh(host, command, { input, allowFail: true });
}

beforeAll(async () => {
  lab = await upTestLab({ bare: true, masters: 2, workers: 1, lb: 'haproxy' });
  log('bare lab up');
});

afterAll(async () => {
  if (!lab) return;
  await lab.down();
  expect(isClean(await lab.leftovers())).toBe(true);
});

describe('lab: bare hosts', () => {
  it('have nothing of Kubernetes, etcd, containerd, haproxy or nginx', async () => {
    for (const h of ['lb', 'm1', 'w1']) {
      const r = await root(
        h,
        'for b in kubeadm kubelet kubectl crictl etcd etcdctl etcdutl containerd ctr runc haproxy nginx; do command -v $b; done; ' +
          'ls /etc/kubernetes /etc/haproxy /etc/nginx /etc/containerd /var/lib/etcd /usr/sbin/policy-rc.d 2>/dev/null; ' +
          'systemctl cat kubelet >/dev/null 2>&1 && echo kubelet-unit; systemctl cat haproxy >/dev/null 2>&1 && echo haproxy-unit; true',
      );
      expect(r.stdout.trim()).toBe('');
    }
    const dpkg = await root('m1', 'dpkg -s kubeadm');
    expect(dpkg.code).toBe(1);
    expect(dpkg.stderr).toContain("package 'kubeadm' is not installed");
    expect((await root('m1', 'hostname; getent hosts m2 lb')).stdout).toMatch(/^m1\n\S+\s+m2\n\S+\s+lb\n$/);
  });

  it('apt-get: without the Kubernetes repository kubeadm cannot be located (exit 100, as apt)', async () => {
    const r = await root('w1', 'apt-get install -y kubelet kubeadm kubectl');
    expect(r.code).toBe(100);
    expect(r.stderr).toContain('E: Unable to locate package kubeadm');
    // not in Debian
    const envoy = await root('w1', 'apt-get install -y envoy');
    expect(envoy.code).toBe(100);
    expect(envoy.stderr).toContain('E: Unable to locate package envoy');
    // already on the image
    const base = await root('w1', 'apt-get install -y apt-transport-https ca-certificates curl gpg');
    expect(base.code).toBe(0);
    expect(base.stdout).toMatch(/curl is already the newest version \(.+\)\./);
    expect(lab.toolCalls('w1').map((c) => [c.tool, c.args[0], c.exit])).toEqual([
      ['apt-get', 'install', 100],
      ['apt-get', 'install', 100],
      ['apt-get', 'install', 0],
    ]);
  });

  it('apt-get: the repository needs its keyring and an update; another minor is not in the lab', async () => {
    await root(
      'w1',
      `install -d -m 0755 /etc/apt/keyrings && echo '${REPO_LINE}' > /etc/apt/sources.list.d/kubernetes.list`,
    );
    let r = await root('w1', 'apt-get update');
    expect(r.code).toBe(100);
    expect(r.stderr).toContain(
      "E: The repository 'https://pkgs.k8s.io/core:/stable:/v1.36/deb  InRelease' is not signed.",
    );
    // an armored key in a .gpg file is what `curl … > x.gpg` without `gpg --dearmor` leaves
    await root(
      'w1',
      `cat > ${KEYRING}`,
      '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nx\n-----END PGP PUBLIC KEY BLOCK-----\n',
    );
    r = await root('w1', 'apt-get update');
    expect(r.code).toBe(100);
    expect(r.stdout).toContain('unsupported filetype');
    await root('w1', `cat > ${KEYRING}`, KEY);
    r = await root('w1', 'apt-get install -y kubeadm');
    expect(r.code).toBe(100); // configured but not updated yet
    expect(r.stderr).toContain('E: Unable to locate package kubeadm');
    await root('w1', 'sed -i s#/v1.36/#/v1.35/# /etc/apt/sources.list.d/kubernetes.list');
    r = await root('w1', 'apt-get update');
    expect(r.code).toBe(100);
    expect(r.stdout).toContain('Kubernetes 1.36.3 only');
    await root('w1', 'sed -i s#/v1.35/#/v1.36/# /etc/apt/sources.list.d/kubernetes.list');
    r = await root('w1', 'apt-get update && apt-cache madison kubeadm');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /kubeadm \| 1\.36\.3-1\.1 \| https:\/\/pkgs\.k8s\.io\/core:\/stable:\/v1\.36\/deb {2}Packages/,
    );
    r = await root('w1', 'apt-get install -y kubeadm=1.36.2-1.1');
    expect(r.code).toBe(100);
    expect(r.stderr).toContain("E: Version '1.36.2-1.1' for 'kubeadm' was not found");
  });

  it('modprobe, swapoff, sysctl: recorded, nothing of the machine changed; net.* is per host', async () => {
    const r = await root(
      'w1',
      'modprobe br_netfilter && modprobe overlay && echo ok; modprobe no_such_module; echo rc=$?; ' +
        'sysctl -w net.ipv4.ip_forward=1 && swapoff -a && echo swapoff-ok',
    );
    expect(r.stdout).toContain('ok\nrc=1\nnet.ipv4.ip_forward = 1\nswapoff-ok');
    expect(r.stderr).toMatch(/modprobe: FATAL: Module no_such_module not found in directory \/lib\/modules\//);
    // only this host's network namespace changed
    expect((await root('m2', 'sysctl -n net.ipv4.ip_forward')).stdout.trim()).toBe('0');
  });
});

describe('lab: the app creates a cluster on bare hosts with the real kubeadm', () => {
  let join = '';
  let certKey = '';

  it('prepares the nodes: repository, packages held, containerd configured', async () => {
    await Promise.all(
      ['m1', 'm2', 'w1'].map((h) => root(h, `install -d -m 0755 /etc/apt/keyrings && cat > ${KEYRING}`, KEY)),
    );
    const t = Date.now();
    const rs = await Promise.all(['m1', 'm2', 'w1'].map((h) => root(h, NODE_PREP)));
    log(`node prep (3 hosts in parallel): ${Date.now() - t} ms`);
    for (const r of rs) expect(r.code, r.stderr).toBe(0);
    const m1 = await root(
      'm1',
      "apt-mark showhold; dpkg-query -W -f='${Package} ${Version} ${Status}\\n' kubeadm kubelet kubectl cri-tools containerd; systemctl is-active containerd; systemctl is-enabled kubelet; kubeadm version -o short; kubelet --version",
    );
    expect(m1.stdout).toMatch(
      /^kubeadm\nkubectl\nkubelet\nkubeadm 1\.36\.3-1\.1 hold ok installed\nkubelet 1\.36\.3-1\.1 hold ok installed\nkubectl 1\.36\.3-1\.1 hold ok installed\ncri-tools 1\.36\.0-1\.1 install ok installed\ncontainerd \S+ install ok installed\nactive\nenabled\nv1\.36\.3\nKubernetes v1\.36\.3\n$/,
    );
    // a held package does not change without --allow-change-held-packages
    const rm = await root('m1', 'apt-get remove -y kubeadm');
    expect(rm.code).toBe(100);
    expect(rm.stderr).toContain('E: Held packages were changed and -y was used without --allow-change-held-packages.');
    expect(lab.toolCalls('m1').some((c) => c.tool === 'modprobe' && c.args[0] === 'br_netfilter' && c.exit === 0)).toBe(
      true,
    );
  });

  it('puts haproxy in front of the masters (installed and configured as the app would)', async () => {
    const [m1, m2] = lab.masters;
    const r = await root(
      'lb',
      `set -e
apt-get install -y haproxy
cat > /etc/haproxy/haproxy.cfg <<'EOF'
global
    log stdout format raw local0 info
defaults
    mode tcp
    log global
    option tcplog
    timeout connect 2s
    timeout client 1h
    timeout server 1h
    timeout check 2s
frontend kube-apiserver
    bind *:6443
    default_backend kube-apiserver
backend kube-apiserver
    option httpchk
    http-check connect ssl
    http-check send meth GET uri /healthz
    http-check expect status 200
    balance roundrobin
    default-server inter 1s fall 2 rise 1
    server m1 ${m1.address}:6443 check verify none
    server m2 ${m2.address}:6443 check verify none
EOF
haproxy -c -f /etc/haproxy/haproxy.cfg
systemctl restart haproxy
systemctl is-active haproxy`,
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n').at(-1)).toBe('active');
  });

  it('kubeadm init on m1 (config file, certificates uploaded)', async () => {
    const m1 = lab.host('m1');
    const lb = lab.host('lb');
    const key = (await root('m1', 'kubeadm certs certificate-key')).stdout.trim();
    expect(key).toMatch(/^[0-9a-f]{64}$/);
    const config = `apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
certificateKey: "${key}"
localAPIEndpoint:
  advertiseAddress: ${m1.address}
  bindPort: 6443
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: v1.36.3
controlPlaneEndpoint: "${lb.address}:6443"
networking:
  podSubnet: ${POD_SUBNET}
  serviceSubnet: ${SERVICE_SUBNET}
`;
    await root('m1', 'umask 077 && cat > /root/kubeadm-init.yaml', config);
    const t = Date.now();
    const r = await root(
      'm1',
      `kubeadm init --config /root/kubeadm-init.yaml --upload-certs --ignore-preflight-errors=${LAB_IGNORE_PREFLIGHT}`,
    );
    log(`kubeadm init: ${Date.now() - t} ms`);
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toContain('Your Kubernetes control-plane has initialized successfully!');
    expect(r.stdout).toContain(`[upload-certs] Using certificate key:\n${key}\n`);
    // the images kubeadm pulled through the CRI (the containerd stand-in's catalogue)
    const images = await root('m1', 'crictl images');
    expect(images.stdout).toMatch(/registry\.k8s\.io\/etcd\s+3\.6\.\d+-0/);
    expect(images.stdout).toMatch(/registry\.k8s\.io\/pause\s+3\.10\.2/);
  });

  it('prints the join command and re-uploads the certificates', async () => {
    const r = await root('m1', 'kubeadm token create --print-join-command');
    expect(r.code).toBe(0);
    const m =
      /^(kubeadm join \S+:6443 --token [a-z0-9]{6}\.[a-z0-9]{16} --discovery-token-ca-cert-hash sha256:[0-9a-f]{64})\s*$/.exec(
        r.stdout,
      );
    expect(m, r.stdout).toBeTruthy();
    join = m![1];
    const up = await root('m1', 'kubeadm init phase upload-certs --upload-certs --config /root/kubeadm-init.yaml');
    expect(up.code, up.stderr).toBe(0);
    const k = /\[upload-certs\] Using certificate key:\n([0-9a-f]{64})\n$/.exec(up.stdout);
    expect(k, up.stdout).toBeTruthy();
    certKey = k![1];
  });

  it('kubeadm join --control-plane on m2, kubeadm join on w1', async () => {
    let t = Date.now();
    const cp = await root(
      'm2',
      `${join} --control-plane --certificate-key ${certKey} --apiserver-advertise-address ${lab.host('m2').address} --ignore-preflight-errors=${LAB_IGNORE_PREFLIGHT}`,
    );
    log(`kubeadm join --control-plane m2: ${Date.now() - t} ms`);
    expect(cp.code, `${cp.stdout}\n${cp.stderr}`).toBe(0);
    expect(cp.stdout).toContain('This node has joined the cluster and a new control plane instance was created');
    t = Date.now();
    const w = await root('w1', `${join} --ignore-preflight-errors=${LAB_IGNORE_PREFLIGHT}`);
    log(`kubeadm join w1: ${Date.now() - t} ms`);
    expect(w.code, `${w.stdout}\n${w.stderr}`).toBe(0);
    expect(w.stdout).toContain('This node has joined the cluster');
  });

  it('has 2 healthy stacked etcd members, 3 nodes and the control plane Running', async () => {
    const pem = async (f: string): Promise<Buffer> =>
      Buffer.from((await root('m1', `base64 -w0 /etc/kubernetes/pki/etcd/${f}`)).stdout, 'base64');
    const etcd = new EtcdClient(
      lab.masters.map((m) => `https://${m.address}:2379`),
      { ca: await pem('ca.crt'), cert: await pem('healthcheck-client.crt'), key: await pem('healthcheck-client.key') },
      lab.state.subnet,
    );
    try {
      const members = await etcd.memberList();
      expect(members.map((x) => x.name).sort()).toEqual(['m1', 'm2']);
      for (const m of lab.masters) expect(await etcd.healthy(`https://${m.address}:2379`)).toBe(true);
    } finally {
      etcd.close();
    }
    const kubectl = 'KUBECONFIG=/etc/kubernetes/admin.conf kubectl';
    await waitFor(
      '3 nodes Ready',
      async () =>
        (await root('m1', `${kubectl} get nodes --no-headers`)).stdout
          .trim()
          .split('\n')
          .filter((l) => /\sReady\s/.test(l)).length === 3,
      30_000,
      500,
    );
    const nodes = (await root('m1', `${kubectl} get nodes -o name`)).stdout.trim().split('\n').sort();
    expect(nodes).toEqual(['node/m1', 'node/m2', 'node/w1']);
    await waitFor(
      'static pods Running',
      async () => {
        const pods = JSON.parse((await root('m1', `${kubectl} -n kube-system get pods -o json`)).stdout) as {
          items: { metadata: { name: string }; status: { phase: string } }[];
        };
        const running = pods.items.filter((p) => p.status.phase === 'Running').map((p) => p.metadata.name);
        return ['m1', 'm2'].every((m) =>
          ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler'].every((c) =>
            running.includes(`${c}-${m}`),
          ),
        );
      },
      30_000,
      500,
    );
  });

  it('kubeadm reset -f on the worker', async () => {
    const t = Date.now();
    const r = await root('w1', 'kubeadm reset -f');
    log(`kubeadm reset w1: ${Date.now() - t} ms`);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('[reset] Stopping the kubelet service');
    const after = await root(
      'w1',
      'ls -A /etc/kubernetes/manifests /etc/kubernetes/pki /var/lib/kubelet; ls /etc/kubernetes/kubelet.conf 2>&1 | head -1; ' +
        'systemctl is-active kubelet; systemctl is-enabled kubelet; crictl pods -q | wc -l; crictl ps -a -q | wc -l; apt-mark showhold | wc -l',
    );
    expect(after.stdout).toMatch(
      /^\/etc\/kubernetes\/manifests:\n\n\/etc\/kubernetes\/pki:\n\n\/var\/lib\/kubelet:\nls: cannot access '\/etc\/kubernetes\/kubelet.conf': No such file or directory\ninactive\nenabled\n0\n0\n3\n$/,
    );
  });
});
