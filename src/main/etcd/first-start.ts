// Members rebuilt from one verified snapshot first start with etcd's initial corruption check off
// (see `firstStartManifest`), which takes ~14 s off the time the cluster is down. Once the
// apiservers are back, each member gets the user's own etcd.yaml again, one at a time, so quorum
// holds and at least two apiservers keep serving: park (port closed), write, unpark (port
// open), and wait until every member is healthy before the next.
import type { ClusterNode } from '@shared/domain';
import type { Log } from '../cluster/ops';
import type { PlanItem } from '../jobs/types';
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
      { kind: 'command' as const, node: m.node.name, command: staticPodCommand('park', 'etcd') },
      {
        kind: 'command' as const,
        node: m.node.name,
        command: 'bash install-file.sh UPLOADED /etc/kubernetes/kes-parked/etcd.yaml 0600',
      },
      { kind: 'command' as const, node: m.node.name, command: staticPodCommand('unpark', 'etcd') },
    ]),
  ];
}

/** Put every member's final etcd.yaml back, one master at a time; all members healthy after each. */
export async function turnCorruptCheckBackOn(
  deps: EtcdDeps,
  clusterId: string,
  members: FirstStartMember[],
  allMasters: ClusterNode[],
  opts: { timeoutMs: number; log: Log; signal?: AbortSignal },
): Promise<void> {
  for (const m of members.filter((x) => x.firstStart)) {
    opts.log('info', `${m.node.name}: restart etcd with its own etcd.yaml (initial corruption check on)`);
    await staticPod(deps, clusterId, m.node, 'park', 'etcd', { log: opts.log });
    await putFile(deps, clusterId, m.node, `${PARKED}/etcd.yaml`, m.finalManifest, 0o600, opts.log);
    await staticPod(deps, clusterId, m.node, 'unpark', 'etcd', { log: opts.log });
    await waitHealthy(deps, clusterId, allMasters, { etcd: true, apiserver: false, ...opts });
  }
  // The apiserver next to each restarted member lost its etcd for a moment: all ready again.
  await waitHealthy(deps, clusterId, allMasters, { etcd: false, apiserver: true, ...opts });
}
