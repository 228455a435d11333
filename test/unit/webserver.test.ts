// Intent: headless web mode is reachable only by whoever holds the printed URL — loopback only,
// a single-use token traded for an HttpOnly cookie plus a session key that is not a cookie (cookies
// are shared by every port of 127.0.0.1), WebSockets refused from other origins and other Hosts —
// and it still works through an SSH-style port forward (`ssh -L 8080:127.0.0.1:PORT`).
import { promises as fs } from 'node:fs';
import { get as httpGet } from 'node:http';
import { createServer, Socket, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createDispatcher, EventHub, type Handlers } from '../../src/main/api/dispatch';
import { methods } from '../../src/shared/contract';
import { isLoopbackHost, startWebServer, type WebServer } from '../../src/main/server/http';

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

/** Redeem the one-time token: the session cookie, and the key handed over in the redirect's fragment. */
async function login(url = server.url): Promise<{ cookie: string; key: string }> {
  const r = await fetch(url, { redirect: 'manual' });
  expect(r.status).toBe(302);
  const cookie = r.headers.get('set-cookie')!;
  expect(cookie).toMatch(/HttpOnly/);
  expect(cookie).toMatch(/SameSite=Strict/);
  const location = r.headers.get('location')!;
  const key = /^\/#kes-key=([A-Za-z0-9_-]{43})$/.exec(location)?.[1];
  expect(key, `redirect to ${location}`).toBeDefined();
  expect(cookie).not.toContain(key!);
  return { cookie: cookie.split(';')[0], key: key! };
}

function openWs(headers: Record<string, string>, key?: string, origin = server.origin): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const query = key === undefined ? '' : `?key=${encodeURIComponent(key)}`;
    const ws = new WebSocket(`${origin.replace('http', 'ws')}/api${query}`, { headers });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
  });
}

/** A TCP port forward on loopback, like `ssh -L PORT:127.0.0.1:target`: bytes pass unchanged. */
async function portForward(target: number): Promise<{ origin: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const fwd: Server = createServer((inbound) => {
    const outbound = new Socket();
    sockets.add(inbound).add(outbound);
    inbound.on('error', () => outbound.destroy());
    outbound.on('error', () => inbound.destroy());
    outbound.connect(target, '127.0.0.1', () => {
      inbound.pipe(outbound);
      outbound.pipe(inbound);
    });
  });
  await new Promise<void>((r) => fwd.listen(0, '127.0.0.1', r));
  const port = (fwd.address() as { port: number }).port;
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        fwd.close(() => r());
      }),
  };
}

describe('headless web server', () => {
  let cookie = '';
  let key = '';

  it('listens on 127.0.0.1 with a random port and a long random token', () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/\?token=[A-Za-z0-9_-]{32}$/);
  });

  it('refuses pages without a session', async () => {
    const r = await fetch(server.origin + '/');
    expect(r.status).toBe(401);
  });

  it('trades the token for a cookie and a session key once; a reused or wrong token is refused', async () => {
    ({ cookie, key } = await login());
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
    await expect(openWs({ origin: server.origin }, key)).rejects.toThrow(/403/);
    await expect(openWs({ origin: 'http://evil.example', cookie }, key)).rejects.toThrow(/403/);
    await expect(openWs({ cookie }, key)).rejects.toThrow(/403/);
  });

  it('refuses a WebSocket that has the cookie (which other local ports also receive) but not the session key', async () => {
    await expect(openWs({ origin: server.origin, cookie })).rejects.toThrow(/403/);
    await expect(openWs({ origin: server.origin, cookie }, '')).rejects.toThrow(/403/);
    await expect(
      openWs({ origin: server.origin, cookie }, key.slice(0, -1) + (key.endsWith('A') ? 'B' : 'A')),
    ).rejects.toThrow(/403/);
    // The page served with the cookie does not carry the key either: only the token exchange gives it out.
    const page = await fetch(server.origin + '/', { headers: { cookie } });
    expect(await page.text()).not.toContain(key);
  });

  it('refuses WebSockets from a page of another local port (cookies do not separate ports)', async () => {
    const otherPort = server.origin.replace(/:\d+$/, ':1');
    await expect(openWs({ origin: otherPort, cookie }, key)).rejects.toThrow(/403/);
    await expect(openWs({ origin: server.origin.replace('127.0.0.1', 'localhost'), cookie }, key)).rejects.toThrow(
      /403/,
    );
  });

  it('refuses requests whose Host is not a loopback name (DNS rebinding), pages and WebSockets alike', async () => {
    const { port } = server;
    const rebound = { host: `evil.example:${port}`, origin: `http://evil.example:${port}`, cookie };
    await expect(openWs(rebound, key)).rejects.toThrow(/403/);
    const page = await new Promise<number>((resolve, reject) => {
      // fetch() cannot set Host; node:http can.
      const req = httpGet(
        { host: '127.0.0.1', port, path: '/', headers: { host: `evil.example:${port}`, cookie } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
    });
    expect(page).toBe(403);
  });

  it('accepts loopback Host names with any port, and nothing else', () => {
    for (const ok of ['127.0.0.1:8080', 'localhost:1', '[::1]:65535', 'LOCALHOST:80', '127.0.0.1'])
      expect(isLoopbackHost(ok), ok).toBe(true);
    for (const bad of [
      undefined,
      '',
      'evil.example:8080',
      '127.0.0.1.evil.example',
      'localhost.:80',
      '127.0.0.2:80',
      '[::1]:0',
      '127.0.0.1:99999',
      '127.0.0.1:80@evil',
      'localhost:80 ',
    ])
      expect(isLoopbackHost(bad), String(bad)).toBe(false);
  });

  it('carries requests, replies and events over an authorised WebSocket', async () => {
    const ws = await openWs({ origin: server.origin, cookie }, key);
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

  it('works through an SSH-style port forward: the printed URL opened on the forwarded port', async () => {
    // A second server, so its one-time URL is still fresh.
    const other = await startWebServer({
      rendererDir: dir,
      dispatch: createDispatcher(
        Object.fromEntries(Object.keys(methods).map((m) => [m, () => 'ok'])) as unknown as Handlers,
      ),
      events,
    });
    const tunnel = await portForward(other.port);
    try {
      const viaTunnel = other.url.replace(other.origin, tunnel.origin);
      const s = await login(viaTunnel);
      const page = await fetch(tunnel.origin + '/', { headers: { cookie: s.cookie } });
      expect(page.status).toBe(200);
      // The browser's Origin is the tunnel's (http://127.0.0.1:TUNNEL), and so is its Host.
      const ws = await openWs({ origin: tunnel.origin, cookie: s.cookie }, s.key, tunnel.origin);
      const reply = new Promise((r) => ws.once('message', (m) => r(JSON.parse(m.toString()))));
      ws.send(JSON.stringify({ t: 'req', id: 7, method: 'clusters.list', input: {} }));
      await expect(reply).resolves.toEqual({ t: 'res', id: 7, ok: true, value: 'ok' });
      ws.close();
      // Still not from another port's page, even through the tunnel.
      await expect(openWs({ origin: other.origin, cookie: s.cookie }, s.key, tunnel.origin)).rejects.toThrow(/403/);
    } finally {
      await tunnel.close();
      await other.close();
    }
  });
});
