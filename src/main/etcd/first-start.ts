// Members rebuilt from one verified snapshot first start with etcd's initial corruption check off
// (see `firstStartManifest`), which takes ~14 s off the time the cluster is down. Once the
// apiservers are back, each member gets the user's own etcd.yaml again, one at a time, so quorum
// holds and at least two apiservers keep serving: its apiserver stopped first (a load balancer
// passes a refused connection on to another master — haproxy's `option redispatch` — but not the
// errors of an apiserver whose etcd is restarting), etcd parked, written, unparked, every member
// healthy, the apiserver back and ready; then the next master.
import type { ClusterNode } from '@shared/domain';
import type { Log } from '../cluster/ops';
import type { PlanItem, StepDef } from '../jobs/types';
import type { EtcdDeps } from './deps';
import { PARKED, putFile, staticPod, staticPodCommand } from './files';
import { waitHealthy } from './state';

export interface FirstStartMember {
  node: ClusterNode;
  /** The manifest the member must end with (the user's, with the restore's edits). */
  finalManifest: string;
  /** What it first starts with; absent when that is the final manifest already. */
  firstStart?: string;
}

export const FIRST_START_NOTE =
  "The restored members first start with etcd's initial corruption check off: they were all just rebuilt " +
  'from the same verified snapshot, and the check would make each wait ~7 s per peer that is still starting. ' +
  'Once the apiservers are back, etcd.yaml as shown is put back on one master at a time.';

export function needsCorruptCheckBack(members: FirstStartMember[]): boolean {
  return members.some((m) => m.firstStart);
}

/** The plan of the step that puts the user's etcd.yaml back (the final file is in the manifests step's diff). */
export function corruptCheckPlan(members: FirstStartMember[]): PlanItem[] {
  const back = members.filter((m) => m.firstStart);
  if (!back.length) return [];
  return [
    { kind: 'note', text: FIRST_START_NOTE },
    ...back.flatMap((m) => [
      { kind: 'command' as const, node: m.node.name, command: staticPodCommand('park', 'kube-apiserver') },
      { kind: 'command' as const, node: m.node.name, command: staticPodCommand('park', 'etcd') },
      {
        kind: 'command' as const,
        node: m.node.name,
        command: 'bash install-file.sh UPLOADED /etc/kubernetes/kes-parked/etcd.yaml 0600',
      },
      { kind: 'command' as const, node: m.node.name, command: staticPodCommand('unpark', 'etcd') },
      { kind: 'command' as const, node: m.node.name, command: staticPodCommand('unpark', 'kube-apiserver') },
    ]),
  ];
}

/** Put every member's final etcd.yaml back, one master at a time; all healthy and ready after each. */
export async function turnCorruptCheckBackOn(
  deps: EtcdDeps,
  clusterId: string,
  members: FirstStartMember[],
  allMasters: ClusterNode[],
  opts: { timeoutMs: number; log: Log; signal?: AbortSignal },
): Promise<void> {
  for (const m of members.filter((x) => x.firstStart)) {
    opts.log('info', `${m.node.name}: restart etcd with its own etcd.yaml (initial corruption check on)`);
    await staticPod(deps, clusterId, m.node, 'park', 'kube-apiserver', { log: opts.log });
    await staticPod(deps, clusterId, m.node, 'park', 'etcd', { log: opts.log });
    await putFile(deps, clusterId, m.node, `${PARKED}/etcd.yaml`, m.finalManifest, 0o600, opts.log);
    await staticPod(deps, clusterId, m.node, 'unpark', 'etcd', { log: opts.log });
    await waitHealthy(deps, clusterId, allMasters, { etcd: true, apiserver: false, ...opts });
    await staticPod(deps, clusterId, m.node, 'unpark', 'kube-apiserver', { log: opts.log });
    await waitHealthy(deps, clusterId, [m.node], { etcd: false, apiserver: true, ...opts });
  }
}

/** Write the etcd.yaml a restored member first starts with (parked, ready to unpark). */
export function writeFirstStartManifest(
  deps: EtcdDeps,
  clusterId: string,
  m: FirstStartMember,
  log?: Log,
): Promise<void> {
  return putFile(deps, clusterId, m.node, `${PARKED}/etcd.yaml`, m.firstStart ?? m.finalManifest, 0o600, log);
}

/**
 * The job step that puts the user's etcd.yaml back after a restore or a switch to embedded. A
 * failure marks the context, so the job says the restore itself succeeded and does not roll back.
 */
export function corruptCheckStep<C extends { checkBackFailed?: boolean; gateTimeoutMs: number }>(
  deps: EtcdDeps,
  clusterId: string,
  members: (c: C) => FirstStartMember[],
  masters: (c: C) => ClusterNode[],
): StepDef<C> {
  return {
    id: 'corrupt-check',
    title: "Put each master's etcd.yaml back with the initial corruption check on, one at a time",
    safePoint: false,
    runIf: (c) => needsCorruptCheckBack(members(c)),
    plan: (c) => corruptCheckPlan(members(c)),
    run: async (c, s) =>
      turnCorruptCheckBackOn(deps, clusterId, members(c), masters(c), {
        timeoutMs: c.gateTimeoutMs,
        log: s.log,
        signal: s.signal,
      }).catch((e) => {
        c.checkBackFailed = true;
        throw e;
      }),
  };
}
