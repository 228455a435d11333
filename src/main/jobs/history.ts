// Job records on disk (<dataDir>/jobs/<id>.json), so history survives restarts and a job that was
// running when the app died is shown as interrupted — with what was done and what to do next.
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { writeJsonAtomic } from '../util/jsonfile';
import type { JobRecord } from './types';

const SAVE_EVERY_MS = 500;

export class JobHistory {
  private lastSave = new Map<string, number>();
  private pending = new Map<string, NodeJS.Timeout>();
  private chain = new Map<string, Promise<void>>();

  private constructor(readonly dir: string) {}

  static async open(dataDir: string): Promise<JobHistory> {
    const h = new JobHistory(join(dataDir, 'jobs'));
    await fs.mkdir(h.dir, { recursive: true, mode: 0o700 });
    await h.markInterrupted();
    return h;
  }

  /** Save a record; frequent saves during a run are coalesced, `now` forces a write. */
  save(rec: JobRecord, now = false): Promise<void> {
    const last = this.lastSave.get(rec.id) ?? 0;
    if (!now && Date.now() - last < SAVE_EVERY_MS) {
      if (!this.pending.has(rec.id)) {
        this.pending.set(
          rec.id,
          setTimeout(() => {
            this.pending.delete(rec.id);
            void this.save(rec, true);
          }, SAVE_EVERY_MS),
        );
      }
      return Promise.resolve();
    }
    const t = this.pending.get(rec.id);
    if (t) clearTimeout(t);
    this.pending.delete(rec.id);
    this.lastSave.set(rec.id, Date.now());
    const snapshot = structuredClone(rec);
    const prev = this.chain.get(rec.id) ?? Promise.resolve();
    const next = prev.catch(() => undefined).then(() => writeJsonAtomic(this.file(rec.id), snapshot));
    this.chain.set(rec.id, next);
    return next;
  }

  async get(id: string): Promise<JobRecord | null> {
    try {
      return JSON.parse(await fs.readFile(this.file(id), 'utf8')) as JobRecord;
    } catch {
      return null;
    }
  }

  /** Newest first; the log is left out of the list (fetch one record for it). */
  async list(clusterId?: string): Promise<Omit<JobRecord, 'log' | 'plan'>[]> {
    const out: Omit<JobRecord, 'log' | 'plan'>[] = [];
    for (const name of await fs.readdir(this.dir)) {
      if (!name.endsWith('.json')) continue;
      try {
        const rec = JSON.parse(await fs.readFile(join(this.dir, name), 'utf8')) as JobRecord;
        if (clusterId && rec.clusterId !== clusterId) continue;
        const { log: _log, plan: _plan, ...rest } = rec;
        out.push(rest);
      } catch {
        // a half-written file cannot exist (atomic writes); anything else unreadable is skipped
      }
    }
    return out.sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  }

  /** Wait for queued writes (tests, shutdown). */
  async flush(): Promise<void> {
    await Promise.all([...this.chain.values()].map((p) => p.catch(() => undefined)));
  }

  private file(id: string): string {
    if (!/^[0-9a-f-]{36}$/.test(id)) throw new Error('Malformed job id');
    return join(this.dir, `${id}.json`);
  }

  /** Any record still "running" belongs to a process that is gone. */
  private async markInterrupted(): Promise<void> {
    for (const name of await fs.readdir(this.dir)) {
      if (!name.endsWith('.json')) continue;
      const path = join(this.dir, name);
      let rec: JobRecord;
      try {
        rec = JSON.parse(await fs.readFile(path, 'utf8')) as JobRecord;
      } catch {
        continue;
      }
      if (rec.status !== 'running') continue;
      const done = rec.steps.filter((s) => s.status === 'done').map((s) => s.title);
      const running = rec.steps.filter((s) => s.status === 'running').map((s) => s.title);
      rec.status = 'interrupted';
      rec.endedAt ??= new Date().toISOString();
      for (const s of rec.steps)
        if (s.status === 'running' || s.status === 'pending')
          s.status = s.status === 'running' ? 'failed' : 'cancelled';
      rec.outcome = [
        'The app stopped while this job was running.',
        done.length ? `Completed: ${done.join('; ')}.` : 'No step had completed.',
        running.length ? `In progress when it stopped: ${running.join('; ')}.` : '',
        'Check the cluster health; if it is not healthy, restore the state saved before this job.',
      ]
        .filter(Boolean)
        .join(' ');
      await writeJsonAtomic(path, rec);
    }
  }
}
