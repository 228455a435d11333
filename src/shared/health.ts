// What the health view shows; computed in src/main/cluster/health.ts.
import { z } from 'zod';
import type { ModeName } from './domain';

/** A Kubernetes namespace name (RFC 1123 label): the only form a namespace chooser accepts. */
export const NamespaceName = z
  .string()
  .max(63)
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'Not a namespace name (lower-case letters, digits and -)');
/** The namespaces whose workloads health shows (several allowed; none shows no workloads). */
export const WorkloadNamespaces = z.array(NamespaceName).max(12);

export interface ApiserverHealth {
  nodeId: string;
  name: string;
  ready: boolean;
  /** From its manifest (the parked one when the app parked it). */
  etcdServers: string[] | null;
  /** Its manifest is parked by the app (moved to /etc/kubernetes/kes-parked: stopped). */
  parked?: boolean;
  error?: string;
}

/**
 * A static-pod manifest the app moved aside (stopped) on a master. `expected` when that is how the
 * cluster runs (the stacked etcd of a master whose apiserver uses an external etcd); otherwise a
 * job left it so (cut short by a crash, or still running): bring back a state or finish the job.
 */
export interface ParkedManifest {
  nodeId: string;
  node: string;
  component: 'kube-apiserver' | 'etcd';
  path: string;
  expected: boolean;
}

export interface MemberHealth {
  id: string;
  name: string;
  peerUrls: string[];
  clientUrls: string[];
  isLearner: boolean;
  reachable: boolean;
  isLeader: boolean;
  version: string | null;
  dbSize: number | null;
  dbSizeInUse: number | null;
  raftIndex: number | null;
  raftTerm: number | null;
  revision: number | null;
  alarms: string[];
}

export interface PodHealth {
  name: string;
  node: string | null;
  phase: string;
  ready: string;
  restarts: number;
}

/** A Deployment, StatefulSet or DaemonSet: ready replicas (pods) of the desired number. */
export interface WorkloadController {
  namespace: string;
  kind: 'Deployment' | 'StatefulSet' | 'DaemonSet';
  name: string;
  ready: number;
  desired: number;
}

export interface WorkloadPod extends PodHealth {
  namespace: string;
}

/** Workloads of the chosen namespaces (remembered per cluster; `default` until chosen). */
export interface WorkloadsHealth {
  namespaces: string[];
  /** Every namespace of the cluster (for the chooser); empty when it could not be listed. */
  available: string[];
  controllers: WorkloadController[];
  pods: WorkloadPod[];
  /** Lists that could not be read (the others still show). */
  errors: string[];
}

export interface ServiceHealth {
  node: string;
  unit: string;
  /** active, inactive, failed … ("unknown": the node did not answer). */
  state: string;
}

export interface HealthReport {
  at: string;
  mode: ModeName;
  modeDetails: string[];
  apiservers: ApiserverHealth[];
  members: MemberHealth[];
  clusterId: string | null;
  pods: PodHealth[];
  /** Deployments, StatefulSets, DaemonSets and pods of the chosen namespaces (read with kube-system's pods). */
  workloads: WorkloadsHealth;
  /** Manifests the app parked, per master and component. */
  parked: ParkedManifest[];
  /** The kubelet of every master and worker, and the load balancer's unit (systemctl is-active). */
  services: ServiceHealth[];
  errors: string[];
}
