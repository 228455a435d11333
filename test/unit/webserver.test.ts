// Intent: headless web mode is reachable only by whoever holds the printed URL — loopback only,
// a single-use token traded for an HttpOnly cookie, and WebSockets refused from other origins.
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createDispatcher, EventHub, type Handlers } from '../../src/main/api/dispatch';
import { methods } from '../../src/shared/contract';
import { startWebServer, type WebServer } from '../../src/main/server/http';

let server: WebServer;
let dir: string;
const events = new EventHub();

beforeAll(async () => {
  dir = await fs.mkdtemp(join(tmpdir(), 'kes-web-'));
  await fs.writeFile(join(dir, 'index.html'), '<!doctype html><title>kes</title>');
  const h: Record<string, () => unknown> = {};
  for (const m of Object.keys(methods)) h[m] = () => ({ method: m });
  server = await startWebServer({ rendererDir: dir, dispatch: createDispatcher(h as unknown as Handlers), events });
});
afterAll(async () => {
  await server.close();
  await fs.rm(dir, { recursive: true, force: true });
});

async function login(): Promise<string> {
  const r = await fetch(server.url, { redirect: 'manual' });
  expect(r.status).toBe(302);
  const cookie = r.headers.get('set-cookie')!;
  expect(cookie).toMatch(/HttpOnly/);
  expect(cookie).toMatch(/SameSite=Strict/);
  return cookie.split(';')[0];
}

function openWs(headers: Record<string, string>): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${server.origin.replace('http', 'ws')}/api`, { headers });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
  });
}

describe('headless web server', () => {
  let cookie = '';

  it('listens on 127.0.0.1 with a random port and a long random token', () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/\?token=[A-Za-z0-9_-]{32}$/);
  });

  it('refuses pages without a session', async () => {
    const r = await fetch(server.origin + '/');
    expect(r.status).toBe(401);
  });

  it('trades the token for a cookie once; a reused or wrong token is refused', async () => {
    cookie = await login();
    const again = await fetch(server.url, { redirect: 'manual' });
    expect(again.status).toBe(403);
    const page = await fetch(server.origin + '/', { headers: { cookie } });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toMatch(/default-src 'self'/);
    expect(page.headers.get('content-security-policy')).toMatch(/frame-ancestors 'none'/);
  });

  it('does not serve files outside the renderer folder', async () => {
    const r = await fetch(server.origin + '/..%2f..%2fetc%2fpasswd', { headers: { cookie } });
    expect(r.status).toBe(404);
  });

  it('refuses WebSockets without the cookie or from another origin', async () => {
    await expect(openWs({ origin: server.origin })).rejects.toThrow(/403/);
    await expect(openWs({ origin: 'http://evil.example', cookie })).rejects.toThrow(/403/);
    await expect(openWs({ cookie })).rejects.toThrow(/403/);
  });

  it('carries requests, replies and events over an authorised WebSocket', async () => {
    const ws = await openWs({ origin: server.origin, cookie });
    const messages: unknown[] = [];
    ws.on('message', (m) => messages.push(JSON.parse(m.toString())));
    ws.send(JSON.stringify({ t: 'req', id: 1, method: 'clusters.list', input: {} }));
    ws.send(JSON.stringify({ t: 'req', id: 2, method: 'clusters.create', input: { name: '$(bad name)' } }));
    ws.send('not json');
    events.emit('node.status', { clusterId: 'c', nodeId: 'n', state: 'connected' });
    await new Promise((r) => setTimeout(r, 200));
    expect(messages).toContainEqual({ t: 'res', id: 1, ok: true, value: { method: 'clusters.list' } });
    expect(messages).toContainEqual(
      expect.objectContaining({
        t: 'res',
        id: 2,
        ok: false,
        error: expect.objectContaining({ code: 'INVALID_INPUT' }),
      }),
    );
    expect(messages).toContainEqual({
      t: 'evt',
      event: 'node.status',
      payload: { clusterId: 'c', nodeId: 'n', state: 'connected' },
    });
    ws.close();
  });
});
