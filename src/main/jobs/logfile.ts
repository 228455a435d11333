// The full log of each job, as plain text in <dataDir>/jobs/<id>.log, beside the record. The record
// keeps a bounded log (its start and its end, see runner.ts) for the screens; this file keeps every
// line, for "Download full log". Lines are buffered and appended in batches (a flood of 100 000
// lines costs a few hundred writes), and the file is bounded too: past FULL_LOG_MAX_BYTES one line
// says so and the rest is left out, so a runaway script cannot fill the disk.
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import type { LogChunk, LogLine } from '@shared/jobs';

export const FULL_LOG_MAX_BYTES = 256 * 1024 * 1024;
/** Most bytes one jobs.logChunk answer carries (it ends on a line break when it can). */
export const LOG_CHUNK_BYTES = 1024 * 1024;
const FLUSH_MS = 200;
const FLUSH_BYTES = 256 * 1024;

/** One line of the full log: `ISO-time stream path text` (`-` for lines of no step). */
export function formatLogLine(l: LogLine): string {
  return `${new Date(l.t).toISOString()} ${l.stream.padEnd(6)} ${l.path || '-'} ${l.stream === 'cmd' ? '$ ' : ''}${l.text}\n`;
}

interface Pending {
  chunks: string[];
  bytes: number;
  /** Bytes given to the file so far (this process). */
  written: number;
  capped: boolean;
  timer: NodeJS.Timeout | null;
  /** Appends of one job never overlap. */
  chain: Promise<void>;
}

export class JobLogFiles {
  private jobs = new Map<string, Pending>();

  constructor(
    readonly dir: string,
    private readonly maxBytes = FULL_LOG_MAX_BYTES,
  ) {}

  path(jobId: string): string {
    if (!/^[0-9a-f-]{36}$/.test(jobId)) throw new Error('Malformed job id');
    return join(this.dir, `${jobId}.log`);
  }

  append(jobId: string, line: LogLine): void {
    let p = this.jobs.get(jobId);
    if (!p)
      this.jobs.set(
        jobId,
        (p = { chunks: [], bytes: 0, written: 0, capped: false, timer: null, chain: Promise.resolve() }),
      );
    if (p.capped) return;
    let text = formatLogLine(line);
    let bytes = Buffer.byteLength(text);
    if (p.written + p.bytes + bytes > this.maxBytes) {
      p.capped = true;
      text = `${new Date(line.t).toISOString()} info   - … the full log stops here: it reached ${this.maxBytes / (1024 * 1024)} MiB; later lines are left out …\n`;
      bytes = Buffer.byteLength(text);
    }
    p.chunks.push(text);
    p.bytes += bytes;
    if (p.bytes >= FLUSH_BYTES || p.capped) void this.write(jobId, p);
    else p.timer ??= setTimeout(() => void this.write(jobId, p), FLUSH_MS);
  }

  /** Write what is buffered for `jobId` (or every job) and wait for it. */
  async flush(jobId?: string): Promise<void> {
    const ids = jobId ? [jobId] : [...this.jobs.keys()];
    await Promise.all(
      ids.map((id) => {
        const p = this.jobs.get(id);
        return p ? this.write(id, p) : undefined;
      }),
    );
  }

  /** Forget a finished job's buffer (after its last flush). */
  async close(jobId: string): Promise<void> {
    await this.flush(jobId);
    this.jobs.delete(jobId);
  }

  /**
   * Up to LOG_CHUNK_BYTES of the file from `offset`, cut after the last line break in it (or on a
   * UTF-8 character boundary when a line is longer), so pieces join into exactly the file.
   * Null when the job has no full log file.
   */
  async read(jobId: string, offset: number): Promise<LogChunk | null> {
    await this.flush(jobId);
    let fh: fs.FileHandle;
    try {
      fh = await fs.open(this.path(jobId), 'r');
    } catch {
      return null;
    }
    try {
      const size = (await fh.stat()).size;
      if (offset >= size) return { text: '', next: null };
      const want = Math.min(LOG_CHUNK_BYTES, size - offset);
      const buf = Buffer.alloc(want);
      const { bytesRead } = await fh.read(buf, 0, want, offset);
      let end = bytesRead;
      if (offset + end < size) {
        const nl = buf.lastIndexOf(0x0a, end - 1);
        if (nl >= 0) end = nl + 1;
        else end = wholeChars(buf, end);
      }
      const next = offset + end;
      return { text: buf.toString('utf8', 0, end), next: next >= size ? null : next };
    } finally {
      await fh.close();
    }
  }

  private write(jobId: string, p: Pending): Promise<void> {
    if (p.timer) clearTimeout(p.timer);
    p.timer = null;
    if (p.chunks.length) {
      const text = p.chunks.join('');
      p.written += p.bytes;
      p.chunks = [];
      p.bytes = 0;
      const file = this.path(jobId);
      // Best effort: the record (history.ts) is what the app relies on; a failed append (disk
      // full) leaves a gap in the downloadable log, not a failed job.
      p.chain = p.chain.then(() => fs.appendFile(file, text, { mode: 0o600 })).catch(() => undefined);
    }
    return p.chain;
  }
}

/** `end`, moved back so that buf[0, end) does not end inside a multi-byte UTF-8 character. */
export function wholeChars(buf: Buffer, end: number): number {
  let start = end - 1;
  while (start > 0 && end - start < 4 && (buf[start] & 0xc0) === 0x80) start--;
  const lead = buf[start];
  const len = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
  return start + len > end ? start : end;
}
