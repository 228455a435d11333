// Intent: a command queued for one of a connection's session slots waits no longer than its own
// timeout (TIMEOUT) and stops waiting when cancelled (CANCELLED); a wait that gave up never takes
// a slot later, and slots given back still reach the commands that wait.
import { describe, expect, it } from 'vitest';
import { Connection, MAX_SESSIONS } from '../../src/main/ssh/connection';
import type { SshTarget } from '../../src/main/ssh/types';

const target = { nodeId: 'n1', label: 'n1', host: '127.0.0.1', port: 22, user: 'root', auth: { method: 'agent' } };
const conn = () => new Connection('k', target as SshTarget);

async function fill(c: Connection): Promise<Array<() => void>> {
  return Promise.all(Array.from({ length: MAX_SESSIONS }, () => c.session()));
}

describe('session slots', () => {
  it('times a queued wait out with the caller timeout', async () => {
    const c = conn();
    const held = await fill(c);
    const started = Date.now();
    await expect(c.session({ timeoutMs: 100 })).rejects.toMatchObject({
      code: 'TIMEOUT',
      message: expect.stringMatching(/within 100 ms .*waiting for one of the 8 sessions/),
    });
    expect(Date.now() - started).toBeLessThan(2000);
    // The timed-out wait is gone: a freed slot goes to the next real waiter, then back to the pool.
    const next = c.session({ timeoutMs: 1000 });
    held[0]();
    const slot = await next;
    slot();
    for (const r of held.slice(1)) r();
    const again = await fill(c); // all MAX_SESSIONS are free again
    expect(again).toHaveLength(MAX_SESSIONS);
  });

  it('stops waiting when cancelled', async () => {
    const c = conn();
    await fill(c);
    const ac = new AbortController();
    const waiting = c.session({ timeoutMs: 60_000, signal: ac.signal });
    setTimeout(() => ac.abort(), 20);
    await expect(waiting).rejects.toMatchObject({ code: 'CANCELLED' });
    await expect(c.session({ signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'CANCELLED' });
  });

  it('gives a free slot at once, whatever the timeout', async () => {
    const c = conn();
    const release = await c.session({ timeoutMs: 1 });
    await new Promise((r) => setTimeout(r, 10)); // the timer must not fire on a granted slot
    release();
    expect(await fill(c)).toHaveLength(MAX_SESSIONS);
  });
});
