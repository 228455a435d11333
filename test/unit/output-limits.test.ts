// Intent: command output that reaches job logs is bounded and cheap to process (issue 9, items 13
// and 14): lines are split incrementally and cut when too long, a job's log keeps its head and tail
// and says how much was left out, and a failed script's error never quotes secret stdout.
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { JobHistory } from '../../src/main/jobs/history';
import { JobRunner } from '../../src/main/jobs/runner';
import type { JobDef, StepContext } from '../../src/main/jobs/types';
import { ScriptFailed } from '../../src/main/remote/scripts';
import { LineSplitter } from '../../src/main/ssh/exec';
import type { ExecResult } from '../../src/main/ssh/types';

let dir: string;
beforeEach(async () => {
  dir = await fs.mkdtemp(join(tmpdir(), 'kes-limits-'));
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

function split(chunks: Buffer[], max?: number): string[] {
  const out: string[] = [];
  const s = new LineSplitter((l) => out.push(l), max);
  for (const c of chunks) s.write(c);
  s.end();
  return out;
}

describe('LineSplitter', () => {
  it('splits across chunk borders and keeps a multi-byte character split between chunks whole', () => {
    const bytes = Buffer.from('ab\nçé€\n\nlast');
    const chunks = [...bytes].map((b) => Buffer.from([b]));
    expect(split(chunks)).toEqual(['ab', 'çé€', '', 'last']);
  });

  it('cuts a long line on a character boundary and says how many bytes were dropped', () => {
    const line = '€'.repeat(10); // 30 bytes
    const [cut] = split([Buffer.from(line + '\n')], 8);
    // 8 bytes hold two whole euro signs (6 bytes); the other 24 bytes are reported.
    expect(cut).toBe('€€… [line truncated: 24 more bytes]');
  });

  it('handles a 32 MB single line in 32 KB chunks in linear time', () => {
    const chunk = Buffer.alloc(32 * 1024, 0x61);
    const out: string[] = [];
    const s = new LineSplitter((l) => out.push(l));
    const t0 = performance.now();
    for (let i = 0; i < 1024; i++) s.write(chunk);
    s.write(Buffer.from('\nnext\n'));
    s.end();
    const ms = performance.now() - t0;
    expect(out).toHaveLength(2);
    expect(out[0]).toMatch(
      new RegExp(`^a{${16 * 1024}}… \\[line truncated: ${32 * 1024 * 1024 - 16 * 1024} more bytes\\]$`),
    );
    expect(out[1]).toBe('next');
    expect(ms).toBeLessThan(250);
  });
});

describe('job log caps', () => {
  async function runFlood(
    opts: ConstructorParameters<typeof JobRunner>[0] extends infer O ? Partial<O> : never,
    flood: (s: StepContext) => void,
  ) {
    const history = await JobHistory.open(dir);
    const runner = new JobRunner({ history, ...opts });
    const def: JobDef<null> = {
      kind: 'test',
      title: 'flood',
      destructive: false,
      clusterId: 'c1',
      clusterName: 'c1',
      steps: [{ id: 'flood', title: 'Flood', run: async (_c, s) => flood(s) }],
    };
    const rec = await runner.run(await runner.plan(def, null), def, null);
    await history.flush();
    const onDisk = await fs.readFile(join(dir, 'jobs', `${rec.id}.json`), 'utf8');
    return { rec, onDisk };
  }

  it('keeps the head and the tail of a long log, with one line saying how much was left out', async () => {
    const N = 200_000;
    const { rec, onDisk } = await runFlood({ maxLogLines: 1000 }, (s) => {
      for (let i = 0; i < N; i++) s.log('stdout', `line ${i}`);
    });
    const texts = rec.log.map((l) => l.text);
    expect(rec.log.length).toBeLessThanOrEqual(1001);
    expect(texts).toContain('line 0');
    expect(texts).toContain(`line ${N - 1}`);
    expect(texts.at(-1)).toBe('finish: Flood');
    const markers = texts.filter((t) => /log lines .* left out/.test(t));
    expect(markers).toHaveLength(1);
    const dropped = Number(/… (\d+) log lines/.exec(markers[0])![1]);
    // Every line is either kept or counted (+2: the start/finish lines of the step).
    expect(dropped + texts.filter((t) => t.startsWith('line ')).length).toBe(N);
    // The head comes before the marker, the tail after it, both in order.
    const at = texts.indexOf(markers[0]);
    expect(
      texts
        .slice(0, at)
        .filter((t) => t.startsWith('line '))
        .at(-1),
    ).toMatch(/^line \d{1,3}$/);
    expect(texts[at + 1]).toMatch(/^line \d{6}$/);
    expect(onDisk.length).toBeLessThan(200_000);
  });

  it('bounds the log by bytes too, and cuts a single huge line with a marker', async () => {
    const { rec, onDisk } = await runFlood({ maxLogBytes: 256 * 1024, maxLogLineChars: 1000 }, (s) => {
      s.log('stdout', 'x'.repeat(5_000_000));
      for (let i = 0; i < 5000; i++) s.log('stdout', 'y'.repeat(900));
    });
    expect(rec.log[1].text).toBe(`${'x'.repeat(1000)}… [line truncated: ${5_000_000 - 1000} more characters]`);
    expect(onDisk.length).toBeLessThan(300 * 1024);
    expect(rec.log.some((l) => /log lines \(.*(KiB|MiB)\) left out/.test(l.text))).toBe(true);
    expect(rec.log.at(-1)!.text).toBe('finish: Flood');
  });
});

describe('ScriptFailed', () => {
  const KEY_B64 = Buffer.from(
    '-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEArbgpDVjG2YxSY0y0fLFIgEdVyTqsu1fEHBDXbIK5j510UvhR\n-----END RSA PRIVATE KEY-----\n',
  ).toString('base64');
  const result = (stdout: string, stderr = ''): ExecResult => ({ code: 1, stdout, stderr, durationMs: 1 });

  it('never quotes the stdout of a secret-returning script, by option or by script name', () => {
    const out = `KES_FILE=/etc/kubernetes/pki/etcd/ca.key|600|${KEY_B64}\n`;
    for (const e of [
      new ScriptFailed('collect-files.sh', 'm1', result(out)),
      new ScriptFailed('other.sh', 'm1', result(out), { secretOutput: true }),
    ]) {
      expect(e.message).toMatch(/exited with 1 \(its output is not shown: it may contain secrets\)$/);
      expect(e.message).not.toContain(KEY_B64.slice(0, 20));
      expect(e.result.stdout).toBe('');
    }
    // stderr is still the explanation when there is one.
    expect(new ScriptFailed('collect-files.sh', 'm1', result(out, 'base64: ca.key: Permission denied')).message).toBe(
      'collect-files.sh on m1 exited with 1: base64: ca.key: Permission denied',
    );
  });

  it('falls back to stdout for other scripts, leaving data-like lines out, and reads only the tail', () => {
    const e = new ScriptFailed('x.sh', 'm1', result(`${'noise\n'.repeat(1_000_000)}blob ${KEY_B64}\nno leader\n`));
    expect(e.message).toBe('x.sh on m1 exited with 1: noise | [data left out] | no leader');
  });
});
