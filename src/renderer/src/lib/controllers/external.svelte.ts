// The external etcd of one cluster as the renderer drives it: every action is a job planned
// here and shown in the plan preview (provision, start/stop units, restore onto it, switch,
// member remove/add, defragment, disarm alarms). A removal refused for lack of quorum
// (QUORUM_LOST) is kept so the view can explain it and offer the way out: restore the latest
// snapshot onto the external cluster.
import type { SwitchData } from '@shared/jobs';
import { api } from '../api';
import { errorCode, errorMessage } from '../errors';
import { latestSnapshot } from '../external';
import type { JobRequestInput, JobsController } from './jobs.svelte';
import type { HostKeyController } from './hostkeys.svelte';

/** Plan `restore-external` with the newest snapshot of the cluster and show its preview. */
export async function planRestoreLatest(jobs: JobsController, clusterId: string): Promise<void> {
  const latest = latestSnapshot(await api.invoke('snapshots.list', { clusterId }), clusterId);
  if (!latest) throw new Error('This cluster has no snapshot in the vault yet: take one first (Snapshots tab)');
  await jobs.planAndPreview(clusterId, { kind: 'restore-external', snapshotId: latest.id }, 'Planning the restore…');
}

export class ExternalController {
  /** Explanation of a refusal for lack of quorum, seen while planning a member change here. */
  quorum = $state<string | null>(null);
  /** Error of the last action planned from the member table or the unit buttons. */
  error = $state<string | null>(null);

  constructor(
    readonly clusterId: string,
    private readonly jobs: JobsController,
    private readonly hostKeys?: HostKeyController,
  ) {}

  /** Plan and preview; QUORUM_LOST is remembered for the explanation, other errors are thrown. */
  private async plan(job: JobRequestInput, label: string): Promise<void> {
    this.error = null;
    try {
      await this.jobs.planAndPreview(this.clusterId, job, label);
    } catch (e) {
      if (errorCode(e) === 'QUORUM_LOST') this.quorum = errorMessage(e);
      throw e;
    }
  }

  /** Same, for buttons without a dialog: the error is kept for the view instead of thrown. */
  private async act(job: JobRequestInput, label: string): Promise<void> {
    try {
      await this.plan(job, label);
    } catch (e) {
      if (errorCode(e) !== 'QUORUM_LOST') this.error = `${label.replace(/…$/, '')} failed: ${errorMessage(e)}`;
    }
  }

  /**
   * Nodes never contacted before answer with HOST_KEYS_UNKNOWN: their keys are confirmed in one
   * table (as at initialize), then the plan is asked again.
   */
  async provision(nodeIds: string[], startEmpty: boolean): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.plan({ kind: 'provision-external', nodeIds, startEmpty }, 'Planning the external etcd…');
      } catch (e) {
        if (!this.hostKeys || errorCode(e) !== 'HOST_KEYS_UNKNOWN' || attempt >= 3) throw e;
        await this.hostKeys.confirmMany(this.clusterId, (e as { details?: unknown }).details, errorMessage(e), {
          title: 'Confirm the host keys of the new etcd nodes',
        });
      }
    }
  }

  /** A restore or a switch chosen in a dialog (lib/restore.ts builds it). */
  planJob(job: JobRequestInput, label: string): Promise<void> {
    return this.plan(job, label);
  }

  switchTo(
    direction: 'to-external' | 'to-embedded',
    keepExternalRunning: boolean,
    data: SwitchData = 'fresh-snapshot',
  ): Promise<void> {
    return this.plan({ kind: 'switch', direction, keepExternalRunning, data }, 'Planning the switch…');
  }

  unit(nodeIds: string[], action: 'start' | 'stop'): Promise<void> {
    return this.act(
      { kind: 'external-unit', nodeIds, action },
      action === 'start' ? 'Planning start…' : 'Planning stop…',
    );
  }

  removeMember(nodeId: string): Promise<void> {
    return this.act({ kind: 'member-remove', nodeId }, 'Planning the removal…');
  }

  addMember(nodeId: string): Promise<void> {
    return this.act({ kind: 'member-add', nodeId }, 'Planning the addition…');
  }

  defrag(): Promise<void> {
    return this.act({ kind: 'defrag' }, 'Planning defragmentation…');
  }

  disarm(): Promise<void> {
    return this.act({ kind: 'alarm-disarm' }, 'Planning alarm disarm…');
  }

  async restoreLatest(): Promise<void> {
    this.error = null;
    try {
      await planRestoreLatest(this.jobs, this.clusterId);
      this.quorum = null;
    } catch (e) {
      this.error = errorMessage(e);
    }
  }

  dismissQuorum(): void {
    this.quorum = null;
  }
}
