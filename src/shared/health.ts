// What the health view shows; computed in src/main/cluster/health.ts.
import type { ModeName } from './domain';

export interface ApiserverHealth {
  nodeId: string;
  name: string;
  ready: boolean;
  etcdServers: string[] | null;
  error?: string;
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

export interface HealthReport {
  at: string;
  mode: ModeName;
  modeDetails: string[];
  apiservers: ApiserverHealth[];
  members: MemberHealth[];
  clusterId: string | null;
  pods: PodHealth[];
  errors: string[];
}
