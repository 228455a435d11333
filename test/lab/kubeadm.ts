// The configuration the lab hands the REAL kubeadm (built from k8s.io/kubernetes, see binaries.ts):
// `kubeadm init --config` on the first master, `kubeadm join --config` on the others and the workers.
// kubeadm itself then writes the PKI, the kubeconfigs, the static pod manifests, the kubelet's config
// and the kubeadm-config ConfigMap — the lab renders none of those files any more.
// Lab-specific choices (README "real vs stand-in"):
// - preflight is skipped (it needs a container runtime and pulls images; nothing here can pull);
// - the CoreDNS and kube-proxy addons are skipped (no container runtime, no CNI, nothing to route);
// - the etcd image tag names the etcd binary that really runs (the kubelet stand-in maps images to
//   cached binaries), and for the etcd 3.4/3.5 matrix the two flags kubeadm 1.36 spells the 3.6 way
//   are patched back to the spelling kubeadm used with those etcd minors;
// - the service and pod CIDRs are flag values inside 198.18.0.0/15 (the lab names no other range;
//   they are never routed).
import { caCertHash, newJoinSecrets } from '../../src/main/kube/kubeadm-configs';
import { join } from 'node:path';
import { kubernetesBinDir, type EtcdMinor } from './binaries';
import type { SeedFile } from './host';
import type { HostSpec, LabState } from './types';

export { KUBERNETES_VERSION } from './binaries';
export const SERVICE_SUBNET = '198.19.255.0/24';
export const POD_SUBNET = '198.18.192.0/18';
export const K8S_CLUSTER_NAME = 'kubernetes'; // kubeadm's default ClusterConfiguration.clusterName
export const CRI_SOCKET = 'unix:///var/run/containerd/containerd.sock';
/** Shared by every host through the lower layer of its /usr/local overlay, and each host's own stand-ins. */
export const LAB_LIB = '/usr/local/lib/kes-lab';
/** Where the lab leaves kubeadm's config on each node (as an admin would keep it). */
export const KUBEADM_CONFIG_PATH = '/root/kubeadm-config.yaml';

export interface KubeadmSecrets {
  /** Bootstrap token "[a-z0-9]{6}.[a-z0-9]{16}" for the joins. */
  token: string;
  /** 32-byte hex key encrypting the uploaded control-plane certificates (kubeadm-certs Secret). */
  certificateKey: string;
}

/** The lab makes its join secrets and CA hash the way the app does (kubeadm's formats). */
export function newKubeadmSecrets(): KubeadmSecrets {
  return newJoinSecrets();
}

export function controlPlaneEndpoint(state: LabState): string {
  const lb = state.hosts.find((h) => h.role === 'lb');
  const first = state.hosts.find((h) => h.role === 'master');
  return `${(lb ?? first!).address}:6443`;
}

export { caCertHash };

/** etcd image tag for the binary that really runs: "3.6.16" → "3.6.16-0" (kubeadm's tag style). */
export function etcdImageTag(version: string): string {
  return `${version}-0`;
}

function nodeRegistration(h: HostSpec, taints: boolean): string {
  return `nodeRegistration:
  name: ${h.name}
  criSocket: ${CRI_SOCKET}
  imagePullPolicy: IfNotPresent
  ignorePreflightErrors:
  - all
${taints ? '' : '  taints: []\n'}`;
}

/** The KubeletConfiguration document kubeadm gets in the real-kubelet mode (cluster-wide). */
export const REAL_KUBELET_CONFIG = `---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
failCgroupV1: false
protectKernelDefaults: true
`;

/** InitConfiguration + ClusterConfiguration (v1beta4) for the first master. */
export function initConfig(state: LabState, first: HostSpec, secrets: KubeadmSecrets, etcdVersion: string): string {
  return `apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
bootstrapTokens:
- token: "${secrets.token}"
  description: kes-lab joins
  ttl: 24h0m0s
  groups:
  - system:bootstrappers:kubeadm:default-node-token
  usages:
  - signing
  - authentication
certificateKey: "${secrets.certificateKey}"
localAPIEndpoint:
  advertiseAddress: ${first.address}
  bindPort: 6443
${nodeRegistration(first, true)}skipPhases:
- preflight
- addon/coredns
- addon/kube-proxy
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
clusterName: ${K8S_CLUSTER_NAME}
kubernetesVersion: ${state.k8sVersion}
controlPlaneEndpoint: "${controlPlaneEndpoint(state)}"
certificatesDir: /etc/kubernetes/pki
imageRepository: registry.k8s.io
networking:
  dnsDomain: cluster.local
  serviceSubnet: ${SERVICE_SUBNET}
  podSubnet: ${POD_SUBNET}
etcd:
  local:
    imageTag: ${etcdImageTag(etcdVersion)}
    dataDir: /var/lib/etcd
${state.kubelet === 'real' ? REAL_KUBELET_CONFIG : ''}`;
}

/** JoinConfiguration (v1beta4) for another master (controlPlane) or a worker. */
export function joinConfig(
  state: LabState,
  h: HostSpec,
  secrets: KubeadmSecrets,
  caHash: string,
  controlPlane: boolean,
): string {
  return `apiVersion: kubeadm.k8s.io/v1beta4
kind: JoinConfiguration
discovery:
  bootstrapToken:
    apiServerEndpoint: "${controlPlaneEndpoint(state)}"
    token: "${secrets.token}"
    caCertHashes:
    - "${caHash}"
${nodeRegistration(h, controlPlane)}${
    controlPlane
      ? `controlPlane:
  localAPIEndpoint:
    advertiseAddress: ${h.address}
    bindPort: 6443
  certificateKey: "${secrets.certificateKey}"
`
      : ''
  }skipPhases:
- preflight
`;
}

/**
 * kubeadm 1.36 writes etcd 3.6's flag names; kubeadm releases that shipped etcd 3.4/3.5 wrote the
 * experimental spellings. For the version matrix the lab patches the two that differ, as a user of
 * an older etcd image would (`kubeadm --patches` can only replace whole command lists).
 */
export function etcdFlagsFor(minor: EtcdMinor, manifest: string): string {
  if (minor === '3.6') return manifest;
  return manifest
    .replace('- --feature-gates=InitialCorruptCheck=true', '- --experimental-initial-corrupt-check=true')
    .replace('- --watch-progress-notify-interval=5s', '- --experimental-watch-progress-notify-interval=5s');
}

/** The kubelet unit as the kubelet .deb writes it (the binary is the lab's stand-in, see emul/kubelet.ts). */
export const KUBELET_UNIT = `[Unit]
Description=kubelet: The Kubernetes Node Agent
Documentation=https://kubernetes.io/docs/
Wants=network-online.target
After=network-online.target

[Service]
ExecStart=/usr/bin/kubelet
Restart=always
StartLimitInterval=0
RestartSec=10

[Install]
WantedBy=multi-user.target
`;

/** kubeadm's drop-in (kubeadm .deb: /usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf). */
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
ExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS
`;

export type KubePackage = 'kubeadm' | 'kubectl' | 'kubelet' | 'cri-tools';

/**
 * What the kubeadm, kubectl, kubelet and cri-tools packages install, by package: the cached real
 * kubeadm/kubectl, the kubelet and crictl stand-ins (bundled into `emulDir`), the kubelet unit and
 * kubeadm's drop-in. The default lab seeds all of it onto masters and workers before they boot; a bare
 * lab's apt stand-in installs it on demand (bare.ts).
 */
export function kubePackageFiles(emulDir: string): Record<KubePackage, SeedFile[]> {
  const kube = kubernetesBinDir();
  return {
    kubeadm: [
      { path: '/usr/bin/kubeadm', copyFrom: join(kube, 'kubeadm') },
      { path: '/etc/systemd/system/kubelet.service.d/10-kubeadm.conf', content: KUBELET_DROPIN },
    ],
    kubectl: [{ path: '/usr/bin/kubectl', copyFrom: join(kube, 'kubectl') }],
    kubelet: [
      { path: `${LAB_LIB}/kubelet.cjs`, copyFrom: join(emulDir, 'kubelet.cjs') },
      {
        path: '/usr/bin/kubelet',
        content: `#!/bin/sh\n# kubelet stand-in of the test lab (test/lab/emul/kubelet.ts)\nexec /usr/bin/node ${LAB_LIB}/kubelet.cjs "$@"\n`,
        mode: 0o755,
      },
      { path: '/etc/systemd/system/kubelet.service', content: KUBELET_UNIT },
    ],
    'cri-tools': [
      { path: `${LAB_LIB}/crictl.cjs`, copyFrom: join(emulDir, 'crictl.cjs') },
      {
        path: '/usr/bin/crictl',
        content: `#!/bin/sh\n# crictl stand-in of the test lab (test/lab/emul/crictl.ts): the lab's pods as containers\nexec /usr/bin/node ${LAB_LIB}/crictl.cjs "$@"\n`,
        mode: 0o755,
      },
    ],
  };
}
