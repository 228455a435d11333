// The kubeadm configuration files the app hands `kubeadm init` and `kubeadm join` (v1beta4, the
// API kubeadm 1.31+ reads). Files, not flags: the bootstrap token and the certificate key go to
// the node in a 0600 file, never on a command line (the process list shows arguments), and the
// same file says everything `kubeadm init --control-plane-endpoint … --upload-certs` would.
// The app chooses the token and the key itself (kubeadm's formats), so it never has to scrape them
// from kubeadm's output, and masks them in every log (jobs/scope.ts maskInJob).
import { createHash, createPublicKey, randomBytes } from 'node:crypto';
import { stringify } from 'yaml';

export const CRI_SOCKET = 'unix:///var/run/containerd/containerd.sock';

export interface JoinSecrets {
  /** Bootstrap token "[a-z0-9]{6}.[a-z0-9]{16}" (kubeadm's format). */
  token: string;
  /** 32 bytes hex: encrypts the control-plane certificates kubeadm uploads for joining masters. */
  certificateKey: string;
}

export function newJoinSecrets(): JoinSecrets {
  const alnum = (n: number): string =>
    [...randomBytes(n)].map((b) => 'abcdefghijklmnopqrstuvwxyz0123456789'[b % 36]).join('');
  return { token: `${alnum(6)}.${alnum(16)}`, certificateKey: randomBytes(32).toString('hex') };
}

/** kubeadm's --discovery-token-ca-cert-hash: sha256 of the cluster CA's SubjectPublicKeyInfo. */
export function caCertHash(caPem: string): string {
  const spki = createPublicKey(caPem).export({ type: 'spki', format: 'der' });
  return `sha256:${createHash('sha256').update(spki).digest('hex')}`;
}

export interface ClusterShape {
  /** "host:port" of the load balancer, or of the only master. */
  endpoint: string;
  /** "v1.36.3": the installed kubeadm's own version (an unset version makes kubeadm ask dl.k8s.io). */
  kubernetesVersion: string;
  podCidr: string;
  serviceCidr: string;
  clusterName?: string;
}

export interface NodeShape {
  name: string;
  address: string;
  /** Masters keep kubeadm's control-plane taint unless the cluster has no workers. */
  taint: boolean;
}

const API = 'kubeadm.k8s.io/v1beta4';
const TOKEN_TTL = '2h0m0s'; // long enough for a slow join; kubeadm's uploaded certificates live 2 h too

function nodeRegistration(n: NodeShape): Record<string, unknown> {
  return { name: n.name, criSocket: CRI_SOCKET, ...(n.taint ? {} : { taints: [] }) };
}

function bootstrapTokens(s: JoinSecrets): unknown[] {
  return [
    {
      token: s.token,
      description: 'kube-etcd-switch: joins of this job',
      ttl: TOKEN_TTL,
      groups: ['system:bootstrappers:kubeadm:default-node-token'],
      usages: ['signing', 'authentication'],
    },
  ];
}

/** InitConfiguration + ClusterConfiguration for the first master (`kubeadm init --config … --upload-certs`). */
export function initConfig(shape: ClusterShape, first: NodeShape, s: JoinSecrets): string {
  const init = {
    apiVersion: API,
    kind: 'InitConfiguration',
    bootstrapTokens: bootstrapTokens(s),
    certificateKey: s.certificateKey,
    localAPIEndpoint: { advertiseAddress: first.address, bindPort: 6443 },
    nodeRegistration: nodeRegistration(first),
  };
  const cluster = {
    apiVersion: API,
    kind: 'ClusterConfiguration',
    ...(shape.clusterName ? { clusterName: shape.clusterName } : {}),
    kubernetesVersion: shape.kubernetesVersion,
    controlPlaneEndpoint: shape.endpoint,
    networking: { podSubnet: shape.podCidr, serviceSubnet: shape.serviceCidr },
  };
  return `${stringify(init)}---\n${stringify(cluster)}`;
}

/**
 * For a cluster that already runs: a new bootstrap token (`kubeadm token create --config`) and
 * the control-plane certificates uploaded again under a new key (`kubeadm init phase upload-certs
 * --upload-certs --config`) — what a later join needs.
 */
export function joinSecretsConfig(shape: ClusterShape, on: NodeShape, s: JoinSecrets): string {
  // The address and the version, as for init: without them kubeadm refuses a host with no default
  // route ("cannot use 0.0.0.0 as the bind address") and asks dl.k8s.io for the version.
  const init = {
    apiVersion: API,
    kind: 'InitConfiguration',
    bootstrapTokens: bootstrapTokens(s),
    certificateKey: s.certificateKey,
    localAPIEndpoint: { advertiseAddress: on.address, bindPort: 6443 },
    nodeRegistration: nodeRegistration(on),
  };
  const cluster = { apiVersion: API, kind: 'ClusterConfiguration', kubernetesVersion: shape.kubernetesVersion };
  return `${stringify(init)}---\n${stringify(cluster)}`;
}

/** JoinConfiguration for another master (`controlPlane`) or a worker. */
export function joinConfig(
  shape: Pick<ClusterShape, 'endpoint'>,
  node: NodeShape,
  s: JoinSecrets,
  caHash: string,
  controlPlane: boolean,
): string {
  return stringify({
    apiVersion: API,
    kind: 'JoinConfiguration',
    discovery: { bootstrapToken: { apiServerEndpoint: shape.endpoint, token: s.token, caCertHashes: [caHash] } },
    nodeRegistration: nodeRegistration(node),
    ...(controlPlane
      ? {
          controlPlane: {
            localAPIEndpoint: { advertiseAddress: node.address, bindPort: 6443 },
            certificateKey: s.certificateKey,
          },
        }
      : {}),
  });
}

/** "host:port" with IPv6 addresses bracketed. */
export function hostPort(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}
