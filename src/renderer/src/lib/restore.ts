// Which job a restore or a switch is, from what the user chose and what the cluster runs on.
// A restore never moves the apiservers; "restore onto X and point the apiservers at it" is a
// switch towards X with a snapshot from the vault (one job, one plan), and "use the data already on
// the target" is a switch that copies nothing. Pure, so the choices are unit-tested.
import type { JobSummary } from '@shared/jobs';
import type { JobRequestInput } from './controllers/jobs.svelte';

export type EtcdSide = 'embedded' | 'external';

/** The etcd the apiservers use in this mode, or null when the cluster is down, mixed or unknown. */
export function inUse(mode: string | null | undefined): EtcdSide | null {
  return mode === 'embedded-up' ? 'embedded' : mode === 'external-up' ? 'external' : null;
}

/**
 * The job for "restore snapshot S onto `target`", with the apiservers pointed at it or not. When
 * they already use the target, or the mode is not one a switch starts from, it is the plain restore.
 */
export function restoreRequest(
  snapshotId: string,
  target: EtcdSide,
  pointApiservers: boolean,
  mode: string | null | undefined,
): JobRequestInput {
  const uses = inUse(mode);
  if (pointApiservers && uses && uses !== target)
    return {
      kind: 'switch',
      direction: target === 'external' ? 'to-external' : 'to-embedded',
      data: 'vault-snapshot',
      snapshotId,
    };
  return target === 'external' ? { kind: 'restore-external', snapshotId } : { kind: 'restore-embedded', snapshotId };
}

/** What the restore dialog says the apiservers use when the job ends. */
export function apiserversAfter(target: EtcdSide, pointApiservers: boolean, mode: string | null | undefined): string {
  const uses = inUse(mode);
  if (!uses)
    return 'The cluster is not up on one etcd: the restore leaves the apiservers on the etcd their manifests name.';
  if (uses === target)
    return `The apiservers use the ${target} etcd already: they serve the restored data when the job ends.`;
  return pointApiservers
    ? `When the job ends, the apiservers use the ${target} etcd, with the restored data.`
    : `When the job ends, the apiservers still use the ${uses} etcd; the restored ${target} etcd stands by.`;
}

/**
 * True when the newest job that changed the switch's target was a successful restore onto it
 * (nothing switched since): its data is what the user meant to run on, so the switch dialog
 * offers "use the data already on the target" first.
 */
export function targetJustRestored(
  jobs: JobSummary[],
  clusterId: string,
  direction: 'to-external' | 'to-embedded',
): boolean {
  const wanted = direction === 'to-external' ? 'restore-external' : 'restore-embedded';
  const relevant = jobs
    .filter((j) => j.clusterId === clusterId && j.status === 'succeeded' && j.endedAt)
    .filter(
      (j) =>
        j.kind === wanted ||
        j.kind.startsWith('switch') ||
        j.kind.startsWith('restore-') ||
        j.kind === 'provision-external',
    )
    .sort((a, b) => Date.parse(b.endedAt!) - Date.parse(a.endedAt!));
  return relevant[0]?.kind === wanted;
}
