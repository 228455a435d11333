// Intent: a terminal flood cannot outrun the renderer — the source is paused above the high-water
// mark of unacknowledged output and resumed once the renderer acknowledges; UTF-8 split across
// chunks is never mangled.
import { describe, expect, it } from 'vitest';
import { EventHub } from '../../src/main/api/dispatch';
import { FLOW, TerminalManager, type TerminalSource } from '../../src/main/terminal/manager';

function fakeSource() {
  const calls: string[] = [];
  let emit: (d: string | Buffer) => void = () => undefined;
  let exit: (c: number | null) => void = () => undefined;
  const src: TerminalSource = {
    write: (d) => calls.push(`write:${d}`),
    resize: (c, r) => calls.push(`resize:${c}x${r}`),
    pause: () => calls.push('pause'),
    resume: () => calls.push('resume'),
    kill: () => calls.push('kill'),
    start: (d, e) => {
      emit = d;
      exit = e;
    },
  };
  return { src, calls, emit: (d: string | Buffer) => emit(d), exit: (c: number | null) => exit(c) };
}

const tick = (ms = FLOW.BATCH_MS + 5) => new Promise((r) => setTimeout(r, ms));

describe('TerminalManager flow control', () => {
  it('batches output, pauses above high water, resumes below low water', async () => {
    const hub = new EventHub();
    const got: string[] = [];
    hub.subscribe((e, p) => e === 'terminal.data' && got.push((p as { data: string }).data));
    const tm = new TerminalManager(hub);
    const f = fakeSource();
    const { id } = tm.attach('t', f.src);

    f.emit('a');
    f.emit('b');
    await tick();
    expect(got).toEqual(['ab']); // coalesced into one event

    const chunk = 'x'.repeat(10_000);
    for (let i = 0; i < 15; i++) f.emit(chunk);
    await tick();
    expect(f.calls).toContain('pause');
    expect(tm.stats(id)!.paused).toBe(true);

    const sent = got.reduce((n, s) => n + s.length, 0);
    tm.ack(id, sent - 5_000);
    expect(f.calls.filter((c) => c === 'resume')).toHaveLength(1);
    expect(tm.stats(id)).toEqual({ unacked: 5_000, paused: false });
  });

  it('never splits a multi-byte UTF-8 character across events', async () => {
    const hub = new EventHub();
    let text = '';
    hub.subscribe((e, p) => {
      if (e === 'terminal.data') text += (p as { data: string }).data;
    });
    const tm = new TerminalManager(hub);
    const f = fakeSource();
    tm.attach('t', f.src);
    const bytes = Buffer.from('☸ kube ☸ 日本', 'utf8');
    for (const b of bytes) f.emit(Buffer.from([b]));
    await tick();
    expect(text).toBe('☸ kube ☸ 日本');
  });

  it('reports exit once and refuses writes to a closed terminal', async () => {
    const hub = new EventHub();
    const exits: unknown[] = [];
    hub.subscribe((e, p) => e === 'terminal.exit' && exits.push(p));
    const tm = new TerminalManager(hub);
    const f = fakeSource();
    const { id } = tm.attach('t', f.src);
    tm.write(id, 'ls\n');
    tm.resize(id, 100, 30);
    f.exit(0);
    f.exit(0);
    expect(exits).toEqual([{ id, code: 0 }]);
    expect(() => tm.write(id, 'x')).toThrow(/closed/);
    expect(f.calls).toEqual(['write:ls\n', 'resize:100x30']);
  });
});
