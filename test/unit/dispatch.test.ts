// Intent: every payload is validated at the boundary; a bad payload gets a clear error, never a
// crash; unknown methods and thrown errors come back as stable error codes.
import { describe, expect, it } from 'vitest';
import { methods } from '../../src/shared/contract';
import { createDispatcher, type Handlers } from '../../src/main/api/dispatch';
import { ApiError } from '../../src/main/api/errors';

/** A handler table where every method echoes its parsed input (built from the contract keys). */
function echoHandlers(): Handlers {
  const h: Record<string, (i: unknown) => unknown> = {};
  for (const m of Object.keys(methods)) h[m] = (i) => ({ echoed: i });
  return h as unknown as Handlers;
}

describe('dispatch', () => {
  const dispatch = createDispatcher({
    ...echoHandlers(),
    'clusters.remove': () => {
      throw new ApiError('NOT_FOUND', 'No cluster with id x');
    },
    'clusters.list': () => {
      throw new TypeError('boom');
    },
  });
  const ctx = { client: 'test' };

  it('passes parsed input (with defaults applied) to the handler', async () => {
    const r = await dispatch(
      'nodes.upsert',
      { clusterId: 'c1', node: { name: 'm1', address: '198.18.0.2', auth: { method: 'agent' } } },
      ctx,
    );
    expect(r).toEqual({
      ok: true,
      value: {
        echoed: {
          clusterId: 'c1',
          node: {
            name: 'm1',
            address: '198.18.0.2',
            port: 22,
            user: 'root',
            roles: [],
            auth: { method: 'agent' },
            jumpNodeId: null,
          },
        },
      },
    });
  });

  it('rejects a bad payload with INVALID_INPUT and field paths', async () => {
    const r = await dispatch(
      'nodes.upsert',
      { clusterId: 'c1', node: { name: 'm1', address: '$(reboot)', port: 0, auth: { method: 'agent' } } },
      ctx,
    );
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error.code).toBe('INVALID_INPUT');
    const paths = (r.error.details as { issues: { path: string[] }[] }).issues.map((i) => i.path.join('.'));
    expect(paths).toEqual(expect.arrayContaining(['node.address', 'node.port']));
  });

  it.each([
    ['null payload', 'clusters.create', null],
    ['string payload', 'clusters.create', 'prod'],
    ['extra keys', 'clusters.create', { name: 'x', admin: true }],
    ['path traversal id', 'clusters.remove', { clusterId: '../../etc' }],
    ['huge terminal write', 'terminal.write', { id: 'abc', data: 'x'.repeat(2 * 1024 * 1024) }],
    ['prototype pollution', 'settings.set', JSON.parse('{"__proto__":{"polluted":1}}')],
  ])('refuses %s without throwing', async (_name, method, input) => {
    const r = await dispatch(method, input, ctx);
    expect(r.ok).toBe(false);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('refuses unknown and inherited method names', async () => {
    for (const m of ['nope', '__proto__', 'constructor', 'toString', 42]) {
      const r = await dispatch(m, {}, ctx);
      expect(r).toMatchObject({ ok: false, error: { code: 'UNKNOWN_METHOD' } });
    }
  });

  it('keeps the code of ApiErrors and hides other errors behind INTERNAL (message only)', async () => {
    expect(await dispatch('clusters.remove', { clusterId: 'x' }, ctx)).toEqual({
      ok: false,
      error: { code: 'NOT_FOUND', message: 'No cluster with id x' },
    });
    const r = await dispatch('clusters.list', {}, ctx);
    expect(r).toEqual({ ok: false, error: { code: 'INTERNAL', message: 'boom' } });
  });
});
