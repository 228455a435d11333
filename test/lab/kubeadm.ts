// The files `kubeadm init` / `kubeadm join --control-plane` leave on a node, rendered the way kubeadm
// renders them (sigs.k8s.io/yaml style: sorted keys, "- " list items at the parent's indent), so the
// app's discovery and manifest editing meet the real shapes. Paths and flags are kubeadm v1.32's.
// Deliberate differences (README "real vs emulated"): the etcd image tag says 3.4.23 because the etcd
// binary really running is Debian's 3.4.23; etcd probes use /health (3.4 has no /livez, /readyz); the
// service CIDR is inside 198.18.0.0/15 because the lab may name no other range (it is never routed).
import { join } from 'node:path';
import type { Pki } from './pki';
import type { HostSpec, LabState } from './types';

export const KUBERNETES_VERSION = 'v1.32.4';
export const ETCD_IMAGE_TAG = '3.4.23-0';
export const SERVICE_SUBNET = '198.19.255.0/24';
export const SERVICE_IP = '198.19.255.1'; // first service IP: the `kubernetes` Service, a SAN of apiserver.crt
export const DNS_IP = '198.19.255.10';
export const K8S_CLUSTER_NAME = 'kubernetes'; // kubeadm's default ClusterConfiguration.clusterName

export interface Endpoint {
  name: string;
  address: string;
}

/** What the lab needs to render a master's files. */
export interface MasterCtx {
  host: HostSpec;
  controlPlaneEndpoint: string; // "198.19.x.2:6443" (LB) or the first master
}

// ---------------------------------------------------------------- PKI

/** Lab-wide PKI dir layout: <pki>/{ca,front-proxy-ca,etcd/ca,sa.*,admin,super-admin,etcd/lab-client}, <pki>/<host>/... */
export async function buildPki(pki: Pki, state: LabState): Promise<void> {
  const d = pki.dir;
  const masters = state.hosts.filter((h) => h.role === 'master');
  const kubeletHosts = state.hosts.filter((h) => h.role === 'master' || h.role === 'worker');
  const cpe = controlPlaneEndpoint(state).split(':')[0];
  await Promise.all([
    pki.cert({ out: join(d, 'ca'), cn: 'kubernetes' }),
    pki.cert({ out: join(d, 'front-proxy-ca'), cn: 'front-proxy-ca' }),
    pki.cert({ out: join(d, 'etcd', 'ca'), cn: 'etcd-ca' }),
    pki.saKeyPair(d),
  ]);
  const ca = join(d, 'ca');
  const fp = join(d, 'front-proxy-ca');
  const eca = join(d, 'etcd', 'ca');
  const jobs: Promise<void>[] = [
    pki.cert({ out: join(d, 'admin'), cn: 'kubernetes-admin', o: ['kubeadm:cluster-admins'], ca }),
    pki.cert({ out: join(d, 'super-admin'), cn: 'kubernetes-super-admin', o: ['system:masters'], ca }),
    pki.cert({ out: join(d, 'etcd', 'lab-client'), cn: 'kube-etcd-healthcheck-client', ca: eca }),
    // serving cert of the controller-manager/scheduler stand-ins (the real ones self-sign in memory)
    pki.cert({ out: join(d, 'idle'), cn: 'lab-idle-serving' }),
  ];
  for (const m of masters) {
    const o = join(d, m.name);
    const names = [m.name, 'localhost'];
    const ips = [m.address, '127.0.0.1', '0:0:0:0:0:0:0:1'];
    jobs.push(
      pki.cert({
        out: join(o, 'apiserver'),
        cn: 'kube-apiserver',
        ca,
        usage: 'server',
        dns: [
          m.name,
          'kubernetes',
          'kubernetes.default',
          'kubernetes.default.svc',
          'kubernetes.default.svc.cluster.local',
        ],
        ips: [...new Set([SERVICE_IP, m.address, cpe])],
      }),
      pki.cert({
        out: join(o, 'apiserver-kubelet-client'),
        cn: 'kube-apiserver-kubelet-client',
        o: ['kubeadm:cluster-admins'],
        ca,
      }),
      pki.cert({ out: join(o, 'apiserver-etcd-client'), cn: 'kube-apiserver-etcd-client', ca: eca }),
      pki.cert({ out: join(o, 'front-proxy-client'), cn: 'front-proxy-client', ca: fp }),
      pki.cert({ out: join(o, 'etcd', 'server'), cn: m.name, ca: eca, usage: 'both', dns: names, ips }),
      pki.cert({ out: join(o, 'etcd', 'peer'), cn: m.name, ca: eca, usage: 'both', dns: names, ips }),
      pki.cert({ out: join(o, 'etcd', 'healthcheck-client'), cn: 'kube-etcd-healthcheck-client', ca: eca }),
      pki.cert({ out: join(o, 'controller-manager'), cn: 'system:kube-controller-manager', ca }),
      pki.cert({ out: join(o, 'scheduler'), cn: 'system:kube-scheduler', ca }),
    );
  }
  for (const k of kubeletHosts) {
    jobs.push(
      pki.cert({ out: join(d, k.name, 'kubelet-client'), cn: `system:node:${k.name}`, o: ['system:nodes'], ca }),
    );
  }
  await Promise.all(jobs);
}

/** Number of pool keys buildPki takes (so the pool can be filled first). */
export function pkiKeyCount(state: LabState): number {
  const masters = state.hosts.filter((h) => h.role === 'master').length;
  const workers = state.hosts.filter((h) => h.role === 'worker').length;
  return 8 + masters * 10 + workers;
}

export function controlPlaneEndpoint(state: LabState): string {
  const lb = state.hosts.find((h) => h.role === 'lb');
  const first = state.hosts.find((h) => h.role === 'master');
  return `${(lb ?? first!).address}:6443`;
}

// ---------------------------------------------------------------- kubeconfig

const b64 = (s: string | Buffer): string => Buffer.from(s).toString('base64');

export function kubeconfig(opts: {
  server: string;
  user: string;
  caPem: string;
  cert: string | { file: string };
  key: string | { file: string };
}): string {
  const certLine =
    typeof opts.cert === 'string'
      ? `client-certificate-data: ${b64(opts.cert)}`
      : `client-certificate: ${opts.cert.file}`;
  const keyLine = typeof opts.key === 'string' ? `client-key-data: ${b64(opts.key)}` : `client-key: ${opts.key.file}`;
  const ctx = `${opts.user}@${K8S_CLUSTER_NAME}`;
  return `apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: ${b64(opts.caPem)}
    server: ${opts.server}
  name: ${K8S_CLUSTER_NAME}
contexts:
- context:
    cluster: ${K8S_CLUSTER_NAME}
    user: ${opts.user}
  name: ${ctx}
current-context: ${ctx}
kind: Config
preferences: {}
users:
- name: ${opts.user}
  user:
    ${certLine}
    ${keyLine}
`;
}

// ---------------------------------------------------------------- static pod manifests

function probe(
  kind: string,
  host: string,
  path: string,
  port: number,
  scheme: string,
  failure: number,
  initialDelay: boolean,
  period: number,
): string {
  return `    ${kind}:
      failureThreshold: ${failure}
      httpGet:
        host: ${host}
        path: ${path}
        port: ${port}
        scheme: ${scheme}
${initialDelay ? '      initialDelaySeconds: 10\n' : ''}      periodSeconds: ${period}
      timeoutSeconds: 15
`;
}

export interface EtcdManifestOpts {
  name: string;
  address: string;
  initialCluster: Endpoint[];
  state: 'new' | 'existing';
  dataDir?: string;
  token?: string;
}

export function peerUrl(e: Endpoint): string {
  return `https://${e.address}:2380`;
}

export function initialClusterFlag(members: Endpoint[]): string {
  return members.map((m) => `${m.name}=${peerUrl(m)}`).join(',');
}

/** etcd.yaml exactly as kubeadm renders it (the init master has state "new", joined ones "existing"). */
export function etcdManifest(o: EtcdManifestOpts): string {
  const dataDir = o.dataDir ?? '/var/lib/etcd';
  const flags = [
    `--advertise-client-urls=https://${o.address}:2379`,
    '--cert-file=/etc/kubernetes/pki/etcd/server.crt',
    '--client-cert-auth=true',
    `--data-dir=${dataDir}`,
    '--experimental-initial-corrupt-check=true',
    '--experimental-watch-progress-notify-interval=5s',
    `--initial-advertise-peer-urls=https://${o.address}:2380`,
    `--initial-cluster=${initialClusterFlag(o.initialCluster)}`,
    ...(o.state === 'existing' ? ['--initial-cluster-state=existing'] : []),
    ...(o.token ? [`--initial-cluster-token=${o.token}`] : []),
    '--key-file=/etc/kubernetes/pki/etcd/server.key',
    `--listen-client-urls=https://127.0.0.1:2379,https://${o.address}:2379`,
    '--listen-metrics-urls=http://127.0.0.1:2381',
    `--listen-peer-urls=https://${o.address}:2380`,
    `--name=${o.name}`,
    '--peer-cert-file=/etc/kubernetes/pki/etcd/peer.crt',
    '--peer-client-cert-auth=true',
    '--peer-key-file=/etc/kubernetes/pki/etcd/peer.key',
    '--peer-trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt',
    '--snapshot-count=10000',
    '--trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt',
  ];
  return `apiVersion: v1
kind: Pod
metadata:
  annotations:
    kubeadm.kubernetes.io/etcd.advertise-client-urls: https://${o.address}:2379
  creationTimestamp: null
  labels:
    component: etcd
    tier: control-plane
  name: etcd
  namespace: kube-system
spec:
  containers:
  - command:
    - etcd
${flags.map((f) => `    - ${f}`).join('\n')}
    image: registry.k8s.io/etcd:${ETCD_IMAGE_TAG}
    imagePullPolicy: IfNotPresent
${probe('livenessProbe', '127.0.0.1', '/health?exclude=NOSPACE&serializable=true', 2381, 'HTTP', 8, true, 10)}    name: etcd
    resources:
      requests:
        cpu: 100m
        memory: 100Mi
${probe('startupProbe', '127.0.0.1', '/health?serializable=false', 2381, 'HTTP', 24, true, 10)}    volumeMounts:
    - mountPath: ${dataDir}
      name: etcd-data
    - mountPath: /etc/kubernetes/pki/etcd
      name: etcd-certs
  hostNetwork: true
  priority: 2000001000
  priorityClassName: system-node-critical
  securityContext:
    seccompProfile:
      type: RuntimeDefault
  volumes:
  - hostPath:
      path: /etc/kubernetes/pki/etcd
      type: DirectoryOrCreate
    name: etcd-certs
  - hostPath:
      path: ${dataDir}
      type: DirectoryOrCreate
    name: etcd-data
status: {}
`;
}

interface Vol {
  name: string;
  path: string;
  type: string;
  readOnly?: boolean;
}

function volumesYaml(vols: Vol[]): { mounts: string; volumes: string } {
  const sorted = [...vols].sort((a, b) => a.path.localeCompare(b.path));
  const mounts = sorted
    .map((v) => `    - mountPath: ${v.path}\n      name: ${v.name}\n${v.readOnly ? '      readOnly: true\n' : ''}`)
    .join('');
  const volumes = [...vols]
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((v) => `  - hostPath:\n      path: ${v.path}\n      type: ${v.type}\n    name: ${v.name}\n`)
    .join('');
  return { mounts, volumes };
}

const CA_VOLS: Vol[] = [
  { name: 'ca-certs', path: '/etc/ssl/certs', type: 'DirectoryOrCreate', readOnly: true },
  { name: 'etc-ca-certificates', path: '/etc/ca-certificates', type: 'DirectoryOrCreate', readOnly: true },
  { name: 'k8s-certs', path: '/etc/kubernetes/pki', type: 'DirectoryOrCreate', readOnly: true },
  {
    name: 'usr-local-share-ca-certificates',
    path: '/usr/local/share/ca-certificates',
    type: 'DirectoryOrCreate',
    readOnly: true,
  },
  { name: 'usr-share-ca-certificates', path: '/usr/share/ca-certificates', type: 'DirectoryOrCreate', readOnly: true },
];

function controlPlanePod(o: {
  component: string;
  flags: string[];
  annotations?: string;
  probeHost: string;
  probePath: string;
  port: number;
  readiness?: boolean;
  cpu: string;
  vols: Vol[];
}): string {
  const { mounts, volumes } = volumesYaml(o.vols);
  return `apiVersion: v1
kind: Pod
metadata:
${o.annotations ?? ''}  creationTimestamp: null
  labels:
    component: ${o.component}
    tier: control-plane
  name: ${o.component}
  namespace: kube-system
spec:
  containers:
  - command:
    - ${o.component}
${o.flags.map((f) => `    - ${f}`).join('\n')}
    image: registry.k8s.io/${o.component}:${KUBERNETES_VERSION}
    imagePullPolicy: IfNotPresent
${probe('livenessProbe', o.probeHost, o.probePath === '/readyz' ? '/livez' : o.probePath, o.port, 'HTTPS', 8, true, 10)}    name: ${o.component}
${o.readiness ? probe('readinessProbe', o.probeHost, '/readyz', o.port, 'HTTPS', 3, false, 1) : ''}    resources:
      requests:
        cpu: ${o.cpu}
${probe('startupProbe', o.probeHost, o.probePath === '/readyz' ? '/livez' : o.probePath, o.port, 'HTTPS', 24, true, 10)}    volumeMounts:
${mounts}  hostNetwork: true
  priority: 2000001000
  priorityClassName: system-node-critical
  securityContext:
    seccompProfile:
      type: RuntimeDefault
  volumes:
${volumes}status: {}
`;
}

export function apiserverManifest(address: string, etcdServers = 'https://127.0.0.1:2379'): string {
  return controlPlanePod({
    component: 'kube-apiserver',
    annotations: `  annotations:\n    kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint: ${address}:6443\n`,
    flags: [
      `--advertise-address=${address}`,
      '--allow-privileged=true',
      '--authorization-mode=Node,RBAC',
      '--client-ca-file=/etc/kubernetes/pki/ca.crt',
      '--enable-admission-plugins=NodeRestriction',
      '--enable-bootstrap-token-auth=true',
      '--etcd-cafile=/etc/kubernetes/pki/etcd/ca.crt',
      '--etcd-certfile=/etc/kubernetes/pki/apiserver-etcd-client.crt',
      '--etcd-keyfile=/etc/kubernetes/pki/apiserver-etcd-client.key',
      `--etcd-servers=${etcdServers}`,
      '--kubelet-client-certificate=/etc/kubernetes/pki/apiserver-kubelet-client.crt',
      '--kubelet-client-key=/etc/kubernetes/pki/apiserver-kubelet-client.key',
      '--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname',
      '--proxy-client-cert-file=/etc/kubernetes/pki/front-proxy-client.crt',
      '--proxy-client-key-file=/etc/kubernetes/pki/front-proxy-client.key',
      '--requestheader-allowed-names=front-proxy-client',
      '--requestheader-client-ca-file=/etc/kubernetes/pki/front-proxy-ca.crt',
      '--requestheader-extra-headers-prefix=X-Remote-Extra-',
      '--requestheader-group-headers=X-Remote-Group',
      '--requestheader-username-headers=X-Remote-User',
      '--secure-port=6443',
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      '--service-account-key-file=/etc/kubernetes/pki/sa.pub',
      '--service-account-signing-key-file=/etc/kubernetes/pki/sa.key',
      `--service-cluster-ip-range=${SERVICE_SUBNET}`,
      '--tls-cert-file=/etc/kubernetes/pki/apiserver.crt',
      '--tls-private-key-file=/etc/kubernetes/pki/apiserver.key',
    ],
    probeHost: address,
    probePath: '/readyz',
    port: 6443,
    readiness: true,
    cpu: '250m',
    vols: CA_VOLS,
  });
}

export function controllerManagerManifest(): string {
  return controlPlanePod({
    component: 'kube-controller-manager',
    flags: [
      '--authentication-kubeconfig=/etc/kubernetes/controller-manager.conf',
      '--authorization-kubeconfig=/etc/kubernetes/controller-manager.conf',
      '--bind-address=127.0.0.1',
      '--client-ca-file=/etc/kubernetes/pki/ca.crt',
      `--cluster-name=${K8S_CLUSTER_NAME}`,
      '--cluster-signing-cert-file=/etc/kubernetes/pki/ca.crt',
      '--cluster-signing-key-file=/etc/kubernetes/pki/ca.key',
      '--controllers=*,bootstrapsigner,tokencleaner',
      '--kubeconfig=/etc/kubernetes/controller-manager.conf',
      '--leader-elect=true',
      '--requestheader-client-ca-file=/etc/kubernetes/pki/front-proxy-ca.crt',
      '--root-ca-file=/etc/kubernetes/pki/ca.crt',
      '--service-account-private-key-file=/etc/kubernetes/pki/sa.key',
      '--use-service-account-credentials=true',
    ],
    probeHost: '127.0.0.1',
    probePath: '/healthz',
    port: 10257,
    cpu: '200m',
    vols: [
      ...CA_VOLS,
      {
        name: 'flexvolume-dir',
        path: '/usr/libexec/kubernetes/kubelet-plugins/volume/exec',
        type: 'DirectoryOrCreate',
      },
      { name: 'kubeconfig', path: '/etc/kubernetes/controller-manager.conf', type: 'FileOrCreate', readOnly: true },
    ],
  });
}

export function schedulerManifest(): string {
  return controlPlanePod({
    component: 'kube-scheduler',
    flags: [
      '--authentication-kubeconfig=/etc/kubernetes/scheduler.conf',
      '--authorization-kubeconfig=/etc/kubernetes/scheduler.conf',
      '--bind-address=127.0.0.1',
      '--kubeconfig=/etc/kubernetes/scheduler.conf',
      '--leader-elect=true',
    ],
    probeHost: '127.0.0.1',
    probePath: '/healthz',
    port: 10259,
    cpu: '100m',
    vols: [{ name: 'kubeconfig', path: '/etc/kubernetes/scheduler.conf', type: 'FileOrCreate', readOnly: true }],
  });
}

// ---------------------------------------------------------------- kubelet

export function kubeletConfig(): string {
  return `apiVersion: kubelet.config.k8s.io/v1beta1
authentication:
  anonymous:
    enabled: false
  webhook:
    cacheTTL: 0s
    enabled: true
  x509:
    clientCAFile: /etc/kubernetes/pki/ca.crt
authorization:
  mode: Webhook
  webhook:
    cacheAuthorizedTTL: 0s
    cacheUnauthorizedTTL: 0s
cgroupDriver: systemd
clusterDNS:
- ${DNS_IP}
clusterDomain: cluster.local
containerRuntimeEndpoint: ""
cpuManagerReconcilePeriod: 0s
evictionPressureTransitionPeriod: 0s
fileCheckFrequency: 0s
healthzBindAddress: 127.0.0.1
healthzPort: 10248
httpCheckFrequency: 0s
imageMaximumGCAge: 0s
imageMinimumGCAge: 0s
kind: KubeletConfiguration
logging:
  flushFrequency: 0
  options:
    json:
      infoBufferSize: "0"
    text:
      infoBufferSize: "0"
  verbosity: 0
memorySwap: {}
nodeStatusReportFrequency: 0s
nodeStatusUpdateFrequency: 0s
resolvConf: /run/systemd/resolve/resolv.conf
rotateCertificates: true
runtimeRequestTimeout: 0s
shutdownGracePeriod: 0s
shutdownGracePeriodCriticalPods: 0s
staticPodPath: /etc/kubernetes/manifests
streamingConnectionIdleTimeout: 0s
syncFrequency: 0s
volumeStatsAggPeriod: 0s
`;
}

/** The kubelet unit as the kubelet .deb + kubeadm drop-in write it, pointing at the lab's stand-in. */
export const KUBELET_UNIT = `[Unit]
Description=kubelet: The Kubernetes Node Agent
Documentation=https://kubernetes.io/docs/
Wants=network-online.target
After=network-online.target

[Service]
ExecStart=/usr/local/lib/kes-lab/bin/kubelet
Restart=always
StartLimitInterval=0
RestartSec=10

[Install]
WantedBy=multi-user.target
`;

export const KUBELET_DROPIN = `# Note: This dropin only works with kubeadm and kubelet v1.11+
[Service]
Environment="KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf"
Environment="KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml"
# This is a file that "kubeadm init" and "kubeadm join" generates at runtime, populating the KUBELET_KUBEADM_ARGS variable dynamically
EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env
# This is a file that the user can use for overrides of the kubelet args as a last resort. Preferably, the user should use
# the .NodeRegistration.KubeletExtraArgs object in the configuration files instead. KUBELET_EXTRA_ARGS should be sourced from this file.
EnvironmentFile=-/etc/default/kubelet
ExecStart=
ExecStart=/usr/local/lib/kes-lab/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS
`;
