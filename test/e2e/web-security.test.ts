// Headless web mode's access rules, checked from outside: the one-time token, the session cookie,
// the session key the page keeps in its own origin's storage (cookies are shared by every port of
// 127.0.0.1, so another local web server the browser visits gets the cookie — and must still not
// reach the API), the Host and Origin checks (DNS rebinding, cross-site WebSocket hijacking), and
// the README's SSH-tunnel recipe (the printed URL opened on another port) working in the browser.
import { createServer as createHttpServer } from 'node:http';
import { createServer, Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { Browser } from 'playwright-core';
import { launchBrowser, openApp, startWebApp, type Session, type WebApp } from './support/app';

let app: WebApp;
let browser: Browser;
let session: Session;
let cookie: string;
let key: string;

/** Open a WebSocket to /api (with `?key=` when given) and headers; resolves with how it ended. */
function tryWebSocket(
  headers: Record<string, string>,
  sessionKey?: string,
): Promise<{ opened: boolean; status?: number; reply?: unknown }> {
  return new Promise((resolve) => {
    const query = sessionKey === undefined ? '' : `?key=${encodeURIComponent(sessionKey)}`;
    const ws = new WebSocket(app.origin.replace(/^http/, 'ws') + '/api' + query, { headers });
    const timer = setTimeout(() => {
      ws.terminate();
      resolve({ opened: false });
    }, 5000);
    ws.on('unexpected-response', (_req, res) => {
      clearTimeout(timer);
      resolve({ opened: false, status: res.statusCode });
      ws.terminate();
    });
    ws.on('error', () => {
      clearTimeout(timer);
      resolve({ opened: false });
    });
    ws.on('open', () => ws.send(JSON.stringify({ t: 'req', id: 1, method: 'app.info', input: {} })));
    ws.on('message', (data) => {
      clearTimeout(timer);
      resolve({ opened: true, reply: JSON.parse(String(data)) });
      ws.close();
    });
  });
}

beforeAll(async () => {
  app = await startWebApp();
  browser = await launchBrowser();
});

afterAll(async () => {
  await session?.context.close().catch(() => undefined);
  await browser?.close().catch(() => undefined);
  await app?.stop();
});

describe('web mode access', () => {
  it('refuses a request without the token or a session with 401', async () => {
    const res = await fetch(app.origin + '/', { redirect: 'manual' });
    expect(res.status).toBe(401);
    expect(await res.text()).not.toContain('<script');
  });

  it('trades the one-time token for an HttpOnly SameSite=Strict cookie and a session key, and drops both token and key from the address bar', async () => {
    session = await openApp(browser, app);
    expect(new URL(session.page.url()).search).toBe('');
    expect(session.page.url()).not.toContain('kes-key');
    const cookies = await session.context.cookies(app.origin);
    const c = cookies.find((k) => k.name === 'kes_session');
    expect(c).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
    cookie = `${c!.name}=${c!.value}`;
    key = String(await session.page.evaluate('localStorage.getItem("kes.webKey")'));
    expect(key).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(c!.value).not.toBe(key);
    await expect(session.page.getByTestId('status-transport').getAttribute('data-transport')).resolves.toBe('web');
    expect(session.errors).toEqual([]);
  });

  it('answers a reused token with 403, and a wrong one too', async () => {
    expect((await fetch(app.url, { redirect: 'manual' })).status).toBe(403);
    const wrong = new URL(app.url);
    wrong.searchParams.set('token', 'x'.repeat(32));
    expect((await fetch(wrong, { redirect: 'manual' })).status).toBe(403);
  });

  it('serves the UI with a strict Content-Security-Policy to a session', async () => {
    const res = await fetch(app.origin + '/', { headers: { cookie } });
    expect(res.status).toBe(200);
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("object-src 'none'");
    expect(csp).not.toMatch(/script-src[^;]*unsafe-inline/);
  });

  it('accepts the API WebSocket only with the session cookie, the session key and our own Origin', async () => {
    const good = await tryWebSocket({ Cookie: cookie, Origin: app.origin }, key);
    expect(good.opened).toBe(true);
    expect(good.reply).toMatchObject({ t: 'res', id: 1, ok: true, value: { transport: 'web' } });

    const noKey = await tryWebSocket({ Cookie: cookie, Origin: app.origin });
    expect(noKey).toMatchObject({ opened: false, status: 403 });

    const wrongKey = await tryWebSocket({ Cookie: cookie, Origin: app.origin }, 'x'.repeat(43));
    expect(wrongKey).toMatchObject({ opened: false, status: 403 });

    const foreign = await tryWebSocket({ Cookie: cookie, Origin: 'http://evil.example' }, key);
    expect(foreign).toMatchObject({ opened: false, status: 403 });

    const lookalike = await tryWebSocket({ Cookie: cookie, Origin: app.origin.replace('127.0.0.1', 'localhost') }, key);
    expect(lookalike).toMatchObject({ opened: false, status: 403 });

    const otherPort = await tryWebSocket({ Cookie: cookie, Origin: 'http://127.0.0.1:1' }, key);
    expect(otherPort).toMatchObject({ opened: false, status: 403 });

    const noCookie = await tryWebSocket({ Origin: app.origin }, key);
    expect(noCookie).toMatchObject({ opened: false, status: 403 });

    const badCookie = await tryWebSocket({ Cookie: 'kes_session=forged', Origin: app.origin }, key);
    expect(badCookie).toMatchObject({ opened: false, status: 403 });

    // DNS rebinding: a foreign name that resolves to 127.0.0.1 arrives with its own Host (and Origin).
    const port = new URL(app.origin).port;
    const rebound = await tryWebSocket(
      { Cookie: cookie, Host: `evil.example:${port}`, Origin: `http://evil.example:${port}` },
      key,
    );
    expect(rebound).toMatchObject({ opened: false, status: 403 });
  });

  it('another local web server the browser visits gets the cookie, yet cannot reach the API with it', async () => {
    // A stranger's server on another 127.0.0.1 port, visited in the same browser profile.
    const seen: string[] = [];
    const thief = createHttpServer((req, res) => {
      seen.push(req.headers.cookie ?? '');
      res.writeHead(200, { 'Content-Type': 'text/html' }).end('<!doctype html><title>other</title>');
    });
    await new Promise<void>((r) => thief.listen(0, '127.0.0.1', r));
    const thiefOrigin = `http://127.0.0.1:${(thief.address() as { port: number }).port}`;
    await session.context.unrouteAll(); // openApp only let our own origin through
    const page = await session.context.newPage();
    try {
      await page.goto(thiefOrigin + '/');
      // The premise: cookies do not separate ports.
      expect(seen.join(';')).toContain(cookie);
      // The page of the other port cannot read our session key (storage is per origin, port included)…
      expect(await page.evaluate('localStorage.getItem("kes.webKey")')).toBeNull();
      // …and its own WebSocket to our API is refused (with a stolen cookie, but no key and a foreign Origin).
      const wsUrl = app.origin.replace(/^http/, 'ws') + '/api';
      const outcome = await page.evaluate(`new Promise((resolve) => {
        const ws = new WebSocket(${JSON.stringify(wsUrl)});
        ws.onopen = () => resolve('open');
        ws.onerror = () => resolve('refused');
        setTimeout(() => resolve('timeout'), 5000);
      })`);
      expect(outcome).toBe('refused');
      // The server behind that port, using the stolen cookie and any headers it likes, gets the
      // static page but neither the key nor the API.
      const stolen = /kes_session=[^;\s]+/.exec(seen.join(';'))![0];
      const html = await (await fetch(app.origin + '/', { headers: { cookie: stolen } })).text();
      expect(html).toContain('<div id="app">');
      expect(html).not.toContain(key);
      const forged = await tryWebSocket({ Cookie: stolen, Origin: app.origin });
      expect(forged).toMatchObject({ opened: false, status: 403 });
    } finally {
      await page.close();
      await new Promise<void>((r) => thief.close(() => r()));
    }
  });

  it('refuses a WebSocket opened by a page of another origin', async () => {
    // A page served from a different origin (localhost vs 127.0.0.1) tries to reach the API.
    const page = await session.context.newPage();
    try {
      await page.goto('about:blank');
      // A string, so the bundler cannot rewrite `WebSocket` into the `ws` import of this file.
      // Even with the key (so only the Origin check stands in the way).
      const wsUrl = app.origin.replace(/^http/, 'ws') + '/api?key=' + encodeURIComponent(key);
      const outcome = await page.evaluate(`new Promise((resolve) => {
        const ws = new WebSocket(${JSON.stringify(wsUrl)});
        ws.onopen = () => resolve('open');
        ws.onerror = () => resolve('refused');
        setTimeout(() => resolve('timeout'), 5000);
      })`);
      expect(outcome).toBe('refused');
    } finally {
      await page.close();
    }
  });
});

describe('web mode through an SSH tunnel', () => {
  it('works when the printed URL is opened on a forwarded port (ssh -L 8080:127.0.0.1:PORT)', async () => {
    const served = await startWebApp();
    // A byte-for-byte TCP forward on loopback, which is what `ssh -L` gives the browser.
    const sockets = new Set<Socket>();
    const tunnel = createServer((inbound) => {
      const outbound = new Socket();
      sockets.add(inbound).add(outbound);
      inbound.on('error', () => outbound.destroy());
      outbound.on('error', () => inbound.destroy());
      outbound.connect(Number(new URL(served.origin).port), '127.0.0.1', () => {
        inbound.pipe(outbound);
        outbound.pipe(inbound);
      });
    });
    await new Promise<void>((r) => tunnel.listen(0, '127.0.0.1', r));
    const tunnelOrigin = `http://127.0.0.1:${(tunnel.address() as { port: number }).port}`;
    let tunnelled: Session | undefined;
    try {
      const url = served.url.replace(served.origin, tunnelOrigin);
      // openApp waits until the UI's WebSocket is open; CSP or Origin refusals would show as errors.
      tunnelled = await openApp(browser, { ...served, url, origin: tunnelOrigin });
      expect(new URL(tunnelled.page.url()).origin).toBe(tunnelOrigin);
      await expect(tunnelled.page.getByTestId('status-transport').getAttribute('data-transport')).resolves.toBe('web');
      expect(tunnelled.errors).toEqual([]);
    } finally {
      await tunnelled?.context.close().catch(() => undefined);
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => tunnel.close(() => r()));
      await served.stop();
    }
  });
});
