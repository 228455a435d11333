// Intent: a job's full log is kept on disk beside its bounded record (issue 12, "the UI under
// load"): every line, in order, read back in pieces that join into exactly the file and never split
// a character; the file itself is bounded; live lines reach the renderer in batches, not one event
// per line, and the job's summary counts every line.
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EventHub } from '../../src/main/api/dispatch';
import { JobHistory } from '../../src/main/jobs/history';
import { JobLogFiles, LOG_CHUNK_BYTES, wholeChars } from '../../src/main/jobs/logfile';
import { JobService } from '../../src/main/jobs/service';
import type { JobDef, LogLine } from '../../src/main/jobs/types';

let dir: string;
beforeEach(async () => {
  dir = await fs.mkdtemp(join(tmpdir(), 'kes-fulllog-'));
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

const ID = '0b6f1c1e-3a52-4a4f-9c55-2f5c1f3f8a10';
const line = (text: string, i = 0): LogLine => ({ t: 1_700_000_000_000 + i, path: 'a/b', stream: 'stdout', text });

async function readAll(files: JobLogFiles, id: string): Promise<{ text: string; pieces: number }> {
  let text = '';
  let pieces = 0;
  let offset: number | null = 0;
  while (offset !== null) {
    const c = await files.read(id, offset);
    if (!c) throw new Error('no full log');
    text += c.text;
    offset = c.next;
    pieces++;
  }
  return { text, pieces };
}

describe('full job log file', () => {
  it('keeps every line and reads back in whole-line pieces of at most LOG_CHUNK_BYTES', async () => {
    const files = new JobLogFiles(dir);
    const n = 30_000;
    for (let i = 0; i < n; i++) files.append(ID, line(`line ${i} ${'é'.repeat(20)}`, i));
    const { text, pieces } = await readAll(files, ID);
    const lines = text.split('\n').slice(0, -1);
    expect(lines).toHaveLength(n);
    expect(lines[0]).toMatch(/^2023-11-14T22:13:20\.000Z stdout a\/b line 0 é+$/);
    expect(lines[n - 1]).toContain(`line ${n - 1} `);
    expect(pieces).toBeGreaterThan(1);
    expect(Buffer.byteLength(text)).toBe((await fs.stat(files.path(ID))).size);
    const first = await files.read(ID, 0);
    expect(first!.text.endsWith('\n')).toBe(true);
    expect(Buffer.byteLength(first!.text)).toBeLessThanOrEqual(LOG_CHUNK_BYTES);
  });

  it('never cuts a character in two', () => {
    const buf = Buffer.from('ab€'); // € is 3 bytes: e2 82 ac
    expect(wholeChars(buf, 5)).toBe(5);
    expect(wholeChars(buf, 4)).toBe(2);
    expect(wholeChars(buf, 3)).toBe(2);
    expect(wholeChars(buf, 2)).toBe(2);
  });

  it('stops at its byte cap with one line saying so', async () => {
    const files = new JobLogFiles(dir, 64 * 1024);
    for (let i = 0; i < 5000; i++) files.append(ID, line(`x${i}`.padEnd(60, '.'), i));
    const { text } = await readAll(files, ID);
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(64 * 1024 + 200);
    expect(text.trimEnd().split('\n').pop()).toMatch(/the full log stops here: it reached 0\.0625 MiB/);
  });
});

describe('job service log events', () => {
  it('batches a flood of lines into few events, counts them all, and serves the full log', async () => {
    const hub = new EventHub();
    let events = 0;
    let received = 0;
    hub.subscribe((event, payload) => {
      if (event !== 'job.log') return;
      events++;
      received += (payload as { lines: LogLine[] }).lines.length;
    });
    const history = await JobHistory.open(dir);
    const jobs = new JobService(history, hub);
    const n = 50_000;
    const def: JobDef<object> = {
      kind: 'flood',
      title: 'Flood',
      destructive: false,
      clusterId: 'c1',
      clusterName: 'c',
      steps: [
        {
          id: 'print',
          title: 'Print',
          run: async (_c, s) => {
            for (let i = 0; i < n; i++) {
              s.log('stdout', `flood line ${i}`);
              if (i % 5000 === 0) await new Promise((r) => setTimeout(r, 1));
            }
          },
        },
      ],
    };
    const rec = await jobs.plan(def, {});
    const done = await jobs.runToEnd(rec.id);
    expect(done.status).toBe('succeeded');
    expect(done.logLines).toBeGreaterThanOrEqual(n);
    // The record keeps a bounded log; the events and the full log carry every line.
    expect(done.log.length).toBeLessThan(n);
    expect(received).toBe(done.logLines);
    expect(events).toBeLessThan(n / 50);
    let text = '';
    let offset: number | null = 0;
    while (offset !== null) {
      const c = await jobs.logChunk(rec.id, offset);
      text += c.text;
      offset = c.next;
    }
    const flood = text.split('\n').filter((l) => / flood line \d+$/.test(l));
    expect(flood).toHaveLength(n);
    expect(flood[n - 1]).toMatch(/flood line 49999$/);
  });
});
