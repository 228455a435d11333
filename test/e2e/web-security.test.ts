// Headless web mode's access rules, checked from outside: the one-time token, the session cookie
// and the WebSocket's Origin check (cross-site WebSocket hijacking).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { Browser } from 'playwright-core';
import { launchBrowser, openApp, startWebApp, type Session, type WebApp } from './support/app';

let app: WebApp;
let browser: Browser;
let session: Session;
let cookie: string;

/** Open a WebSocket to /api with the given headers; resolves with how it ended. */
function tryWebSocket(headers: Record<string, string>): Promise<{ opened: boolean; status?: number; reply?: unknown }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(app.origin.replace(/^http/, 'ws') + '/api', { headers });
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

  it('trades the one-time token for an HttpOnly SameSite=Strict cookie and drops the token from the address bar', async () => {
    session = await openApp(browser, app);
    expect(new URL(session.page.url()).search).toBe('');
    const cookies = await session.context.cookies(app.origin);
    const c = cookies.find((k) => k.name === 'kes_session');
    expect(c).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
    cookie = `${c!.name}=${c!.value}`;
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

  it('accepts the API WebSocket only with the session cookie and our own Origin', async () => {
    const good = await tryWebSocket({ Cookie: cookie, Origin: app.origin });
    expect(good.opened).toBe(true);
    expect(good.reply).toMatchObject({ t: 'res', id: 1, ok: true, value: { transport: 'web' } });

    const foreign = await tryWebSocket({ Cookie: cookie, Origin: 'http://evil.example' });
    expect(foreign).toMatchObject({ opened: false, status: 403 });

    const lookalike = await tryWebSocket({ Cookie: cookie, Origin: app.origin.replace('127.0.0.1', 'localhost') });
    expect(lookalike).toMatchObject({ opened: false, status: 403 });

    const noCookie = await tryWebSocket({ Origin: app.origin });
    expect(noCookie).toMatchObject({ opened: false, status: 403 });

    const badCookie = await tryWebSocket({ Cookie: 'kes_session=forged', Origin: app.origin });
    expect(badCookie).toMatchObject({ opened: false, status: 403 });
  });

  it('refuses a WebSocket opened by a page of another origin', async () => {
    // A page served from a different origin (localhost vs 127.0.0.1) tries to reach the API.
    const page = await session.context.newPage();
    try {
      await page.goto('about:blank');
      // A string, so the bundler cannot rewrite `WebSocket` into the `ws` import of this file.
      const wsUrl = app.origin.replace(/^http/, 'ws') + '/api';
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
