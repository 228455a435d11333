// Job records on disk (<dataDir>/jobs/<id>.json), so history survives restarts and a job that was
// running when the app died is shown as interrupted — with what was done and what to do next.
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic, writeJsonAtomic } from '../util/jsonfile';
import type { JobRecord } from './types';

/** Per job: the write in progress, and the one queued behind it (not started yet). */
interface Writes {
  busy: Promise<void>;
  queued: Promise<void> | null;
  rec: JobRecord;
}

export class JobHistory {
  private writes = new Map<string, Writes>();

  private constructor(readonly dir: string) {}

  static async open(dataDir: string): Promise<JobHistory> {
    const h = new JobHistory(join(dataDir, 'jobs'));
    await fs.mkdir(h.dir, { recursive: true, mode: 0o700 });
    await h.markInterrupted();
    return h;
  }

  /**
   * Write a record now (atomically). The runner calls this at every step transition and awaits
   * it, so the file on disk always names the steps that are running: after a crash (SIGKILL,
   * power loss) the next start sees exactly which steps were in flight. Writes of one job never
   * overlap; a save asked for while one is in progress queues one more write, which serialises
   * the record when it starts (so it carries every change made until then, and any number of
   * saves asked for meanwhile share it).
   */
  save(rec: JobRecord): Promise<void> {
    const file = this.file(rec.id);
    const w = this.writes.get(rec.id);
    if (w?.queued) {
      w.rec = rec;
      return w.queued;
    }
    const entry: Writes = w ?? { busy: Promise.resolve(), queued: null, rec };
    entry.rec = rec;
    const write = entry.busy
      .catch(() => undefined)
      .then(() => {
        entry.queued = null;
        // Serialised synchronously here: the snapshot is the record as it is when the write starts.
        return writeFileAtomic(file, JSON.stringify(entry.rec, null, 2) + '\n');
      });
    entry.queued = write;
    entry.busy = write;
    this.writes.set(rec.id, entry);
    void write
      .catch(() => undefined)
      .then(() => {
        if (this.writes.get(rec.id) === entry && entry.busy === write && !entry.queued) this.writes.delete(rec.id);
      });
    return write;
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
    await Promise.all([...this.writes.values()].map((w) => w.busy.catch(() => undefined)));
  }

  private file(id: string): string {
    if (!/^[0-9a-f-]{36}$/.test(id)) throw new Error('Malformed job id');
    return join(this.dir, `${id}.json`);
  }

  /**
   * Any record still "running" belongs to a process that is gone (the app was killed or the
   * machine stopped). It becomes "interrupted": the steps it was running are marked interrupted
   * (whether they finished on the nodes is unknown), the ones it had not reached cancelled, and the
   * outcome says what was done, what was in flight and what to do next. Its end time is the last
   * time the record was written (the last step transition the app lived to see).
   */
  private async markInterrupted(): Promise<void> {
    for (const name of await fs.readdir(this.dir)) {
      if (!name.endsWith('.json')) continue;
      const path = join(this.dir, name);
      let rec: JobRecord;
      let lastWrite: Date;
      try {
        rec = JSON.parse(await fs.readFile(path, 'utf8')) as JobRecord;
        lastWrite = (await fs.stat(path)).mtime;
      } catch {
        continue;
      }
      if (rec.status !== 'running') continue;
      interrupt(rec, lastWrite);
      await writeJsonAtomic(path, rec);
    }
  }
}

/** Turn the record of a job whose process died into an "interrupted" one (see markInterrupted). */
export function interrupt(rec: JobRecord, lastWrite: Date): void {
  const top = (s: JobRecord['steps'][number]) => s.path !== 'rollback';
  const done = rec.steps.filter((s) => s.status === 'done' && top(s)).map((s) => s.title);
  // The innermost running steps say most (a parent runs while its children do).
  const running = rec.steps.filter(
    (s) => s.status === 'running' && !rec.steps.some((c) => c.status === 'running' && c.path.startsWith(s.path + '/')),
  );
  const inRollback = running.some((s) => s.path === 'rollback');
  rec.status = 'interrupted';
  rec.endedAt ??= lastWrite.toISOString();
  for (const s of rec.steps) {
    if (s.status === 'running') {
      s.status = 'interrupted';
      s.error ??= 'The app stopped while this step was running; whether it finished on the node is unknown';
    } else if (s.status === 'pending') s.status = 'cancelled';
  }
  rec.error ??= 'Interrupted: the app stopped while this job was running';
  rec.outcome = [
    'The app stopped while this job was running.',
    done.length ? `Completed: ${done.join('; ')}.` : 'No step had completed.',
    running.length ? `In progress when it stopped: ${running.map((s) => s.title).join('; ')}.` : '',
    inRollback ? 'It was rolling back after a failure.' : '',
    'Check the cluster health (it names manifests the job left parked); if it is not healthy, restore the state saved before this job.',
  ]
    .filter(Boolean)
    .join(' ');
}
