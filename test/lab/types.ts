// Shared shapes of the lab: the options a test or the CLI passes, and the state written to
// <lab dir>/state.json so `lab down`/`lab status` (another process) can find everything again.

import type { EtcdMinor } from './binaries';
import type { KubeadmSecrets } from './kubeadm';

export type LbKind = 'haproxy' | 'nginx' | 'none';
/** 'stand-in': emul/kubelet.ts + emul/crictl.ts (default); 'real': kubelet 1.36 + containerd + crictl (README). */
export type KubeletKind = 'stand-in' | 'real';
export type HostRole = 'lb' | 'master' | 'worker' | 'spare';
/** Roles as the app's inventory names them (a spare host has none until the app gives it one). */
export type NodeRole = 'lb' | 'master' | 'worker' | 'etcd';

export interface LabOptions {
  /** Unique per lab: names the netns (<prefix>-<host>), bridge (<prefix>-br), veths, lab dir. [a-z][a-z0-9]{1,7} */
  prefix?: string;
  /** A /24 (or larger /16../29) inside 198.18.0.0/15. Default: a free /24 in 198.19.0.0/16. */
  subnet?: string;
  masters?: number; // 1..5, default 3
  workers?: number; // default 0
  spares?: number; // 0..5, default 0: hosts with only sshd + etcd tools, for an external etcd
  lb?: LbKind; // default haproxy
  /** 'root' (default) or a user name: that account gets the key and passwordless sudo. */
  user?: string;
  /**
   * Only with a sudo `user`: that user's sudo `secure_path` (a `Defaults:<user> secure_path=…` line in
   * its sudoers.d file), e.g. "/usr/sbin:/usr/bin:/sbin:/bin" — /usr/local/bin left out as on many
   * distributions. Default: the machine's own sudoers setting.
   */
  sudoSecurePath?: string;
  /** etcd minor of the static pods and the hosts' etcd tools (default KES_LAB_ETCD or 3.6). */
  etcd?: EtcdMinor;
  /** Hosts (by name, e.g. 's1') whose /usr/bin has no etcd/etcdctl. */
  noEtcdTools?: string[];
  /** Kubelet of masters and workers (default KES_LAB_KUBELET or 'stand-in'); 'real' = kubelet + containerd + crictl. */
  kubelet?: KubeletKind;
  /**
   * Bare hosts (bare.ts, README "Bare mode"): sshd, the systemctl stand-in, /etc/hosts — no Kubernetes
   * tools, no kubelet unit, no etcd tools, no LB configuration, no kubeadm run (the `lb` host, if any, is
   * a plain host); what a fresh Debian lacks is hidden, and apt-get & co. are stand-ins that install
   * the lab's cached packages. `up` returns once sshd answers (waitReady is ignored). Default false.
   */
  bare?: boolean;
  /** Size cap of each host's /var upper layer (tmpfs); fillDisk() shrinks it at runtime. Default 2048. */
  varQuotaMB?: number;
  /** Parent of the per-lab dir. Default /tmp/kes-lab (hosts get a private /tmp so they cannot see it). */
  baseDir?: string;
  /** Run kubeadm and wait for etcd, apiservers, LB and nodes (default true); false returns once sshd answers. */
  waitReady?: boolean;
  /** Tear the lab down on SIGINT/SIGTERM/exit of this process (default true for the API, false for `lab up`). */
  cleanupOnExit?: boolean;
  clusterName?: string;
  log?: (msg: string) => void;
}

export interface HostSpec {
  name: string;
  role: HostRole;
  address: string;
  netns: string;
  veth: string; // root-side end of the host's veth pair (the "cable" cut by faults)
  dir: string; // <lab dir>/hosts/<name>
  etcdTools: boolean;
  pid?: number; // the `unshare` process outside the host (its child is sshd, PID 1 inside)
}

export interface LabState {
  version: 1;
  prefix: string;
  subnet: string;
  bridge: string;
  bridgeAddress: string;
  dir: string;
  clusterName: string;
  lb: LbKind;
  user: string;
  /** See LabOptions.sudoSecurePath. */
  sudoSecurePath?: string;
  varQuotaMB: number;
  k8sVersion: string;
  etcdMinor: EtcdMinor;
  etcdVersion: string; // "3.6.16": the etcd that runs (static pods) and the hosts' etcd tools
  /** Absent in labs made before the option existed: 'stand-in'. */
  kubelet?: KubeletKind;
  /** LabOptions.bare (absent: false). */
  bare?: boolean;
  kubeadm: KubeadmSecrets; // bootstrap token + certificate key of the lab's joins
  createdAt: string;
  hosts: HostSpec[];
}

/** The inventory the app can import: what a user would type for a real cluster. */
export interface LabInventory {
  name: string;
  nodes: { name: string; address: string; port: number; user: string; roles: NodeRole[] }[];
}
