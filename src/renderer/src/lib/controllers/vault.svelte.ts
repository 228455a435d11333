// Snapshots and states of one cluster (the local vault), and the snapshot schedule. Created by
// the cluster page for its cluster; lists are reloaded when a job of the cluster ends.
import type { Schedule } from '@shared/jobs';
import type { SnapshotMeta, StateManifest } from '@shared/vault';
import { api } from '../api';
import { errorMessage } from '../errors';

export type SnapshotSort = 'date' | 'size' | 'revision';

export class SnapshotsController {
  list = $state.raw<SnapshotMeta[]>([]);
  loaded = $state(false);
  error = $state<string | null>(null);
  /** id → action in flight ('verify', 'delete', …). */
  busy = $state.raw<Record<string, string>>({});
  sort = $state<SnapshotSort>('date');
  desc = $state(true);
  filter = $state('');
  schedule = $state.raw<Schedule | null>(null);

  constructor(readonly clusterId: string) {}

  /** Filtered (text in note, node, source) and sorted. */
  shown = $derived.by(() => {
    const q = this.filter.trim().toLowerCase();
    const rows = q
      ? this.list.filter((m) =>
          [m.note, m.source.node, m.source.clusterName, m.source.mode, m.source.originalName, m.source.kind]
            .filter(Boolean)
            .some((v) => String(v).toLowerCase().includes(q)),
        )
      : [...this.list];
    const key = (m: SnapshotMeta): number =>
      this.sort === 'size' ? m.size : this.sort === 'revision' ? (m.revision ?? -1) : Date.parse(m.createdAt);
    rows.sort((a, b) => (this.desc ? key(b) - key(a) : key(a) - key(b)));
    return rows;
  });

  setSort(s: SnapshotSort): void {
    if (this.sort === s) this.desc = !this.desc;
    else {
      this.sort = s;
      this.desc = true;
    }
  }

  async load(): Promise<void> {
    try {
      // This cluster's snapshots and imported files (which belong to no cluster and can be restored anywhere).
      const all = await api.invoke('snapshots.list', {});
      this.list = all.filter((m) => m.source.clusterId === this.clusterId || m.source.kind === 'import');
      this.error = null;
    } catch (e) {
      this.error = errorMessage(e);
    } finally {
      this.loaded = true;
    }
  }

  private put(meta: SnapshotMeta): void {
    this.list = this.list.some((m) => m.id === meta.id)
      ? this.list.map((m) => (m.id === meta.id ? meta : m))
      : [meta, ...this.list];
  }

  private async withBusy<T>(id: string, what: string, fn: () => Promise<T>): Promise<T> {
    this.busy = { ...this.busy, [id]: what };
    try {
      return await fn();
    } finally {
      const next = { ...this.busy };
      delete next[id];
      this.busy = next;
    }
  }

  async updateNote(id: string, note: string): Promise<void> {
    this.put(await this.withBusy(id, 'note', () => api.invoke('snapshots.update', { id, note })));
  }

  async verify(id: string): Promise<SnapshotMeta> {
    const meta = await this.withBusy(id, 'verify', () =>
      api.invoke('snapshots.verify', { id, clusterId: this.clusterId }),
    );
    this.put(meta);
    return meta;
  }

  exportTo(id: string, path: string): Promise<void> {
    return this.withBusy(id, 'export', () => api.invoke('snapshots.export', { id, path }));
  }

  async importFile(path: string, note: string): Promise<SnapshotMeta> {
    const meta = await api.invoke('snapshots.import', { path, note });
    this.put(meta);
    return meta;
  }

  async remove(id: string): Promise<void> {
    await this.withBusy(id, 'delete', () => api.invoke('snapshots.delete', { id }));
    this.list = this.list.filter((m) => m.id !== id);
  }

  async loadSchedule(): Promise<void> {
    this.schedule = await api.invoke('snapshots.schedule.get', { clusterId: this.clusterId });
  }

  async saveSchedule(s: { enabled: boolean; everyHours: number; keep: number }): Promise<Schedule> {
    this.schedule = await api.invoke('snapshots.schedule.set', { clusterId: this.clusterId, ...s });
    return this.schedule;
  }
}

export class StatesController {
  list = $state.raw<StateManifest[]>([]);
  loaded = $state(false);
  error = $state<string | null>(null);

  constructor(readonly clusterId: string) {}

  async load(): Promise<void> {
    try {
      const list = await api.invoke('states.list', { clusterId: this.clusterId });
      this.list = [...list].sort((a, b) => b.createdAt.localeCompare(a.createdAt));
      this.error = null;
    } catch (e) {
      this.error = errorMessage(e);
    } finally {
      this.loaded = true;
    }
  }
}
