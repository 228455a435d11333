// Headless web mode's server: serves the built renderer and carries the API over a WebSocket,
// on 127.0.0.1 only. Access (README "Security notes", web mode):
// - The printed URL holds a random one-time token. The first request with it trades it for an
//   HttpOnly, SameSite=Strict session cookie AND a session key, handed to the page in the redirect's
//   URL fragment (`/#kes-key=…`, never sent over the wire again). The token is then spent, so a
//   leaked URL from shell history or a screenshot is useless.
// - Cookies do not separate ports: every other web server on 127.0.0.1 the browser visits receives
//   our cookie. So the cookie alone opens nothing but the static files. The WebSocket also needs
//   the session key, which the page keeps in its own origin's storage (scheme + host + PORT, so
//   pages of other ports cannot read it).
// - Every request must name a loopback host (127.0.0.1, localhost, [::1]; any port, so an SSH tunnel
//   `-L 8080:127.0.0.1:PORT` works) in `Host` (against DNS rebinding), and the WebSocket's `Origin`
//   must be exactly `http://` + that Host (cross-site WebSocket hijacking, incl. other local ports).
// - No input may take the server down: malformed requests get a 4xx, handler failures a 500 or an
//   error reply, and every socket has an error listener.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { promises as fs } from 'node:fs';
import { extname, join, normalize, sep } from 'node:path';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import type { WireMessage } from '@shared/contract';
import type { Dispatch, EventHub } from '../api/dispatch';

const COOKIE = 'kes_session';
/** Query parameter of the WebSocket URL that carries the session key (see the header comment). */
export const KEY_PARAM = 'key';
/** The redirect after the token exchange carries the session key in this URL fragment. */
export const KEY_FRAGMENT = 'kes-key';
const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.json': 'application/json',
};
/** Per-connection limits: a misbehaving page cannot make main buffer without bound. */
const MAX_MESSAGE = 2 * 1024 * 1024;
const MAX_BUFFERED = 16 * 1024 * 1024;

export interface WebServerOptions {
  rendererDir: string;
  dispatch: Dispatch;
  events: EventHub;
  port?: number;
  /** For tests: a fixed token instead of a random one. */
  token?: string;
  log?: (line: string) => void;
}

export interface WebServer {
  url: string;
  port: number;
  origin: string;
  close(): Promise<void>;
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function cookieOf(req: IncomingMessage): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === COOKIE) return v.join('=');
  }
  return undefined;
}

/**
 * A `Host` header value we serve: a loopback name — 127.0.0.1, localhost or [::1] — with any port
 * or none. Any port, because an SSH tunnel (`ssh -L 8080:127.0.0.1:PORT bastion`) makes the browser
 * talk to another port than ours; only the name must be loopback, which DNS rebinding cannot fake.
 */
export function isLoopbackHost(host: unknown): host is string {
  if (typeof host !== 'string') return false;
  const m = /^(?:127\.0\.0\.1|localhost|\[::1\])(?::(\d{1,5}))?$/i.exec(host);
  return m !== null && (m[1] === undefined || (Number(m[1]) >= 1 && Number(m[1]) <= 65535));
}

/** The WebSocket's Origin must be the page's own: `http://` + the Host it connected to. */
export function isOwnOrigin(origin: unknown, host: string): boolean {
  return typeof origin === 'string' && origin.toLowerCase() === `http://${host.toLowerCase()}`;
}

/** Path and query of an origin-form request target (`/x?y`); null for anything else or garbage. */
function parseTarget(target: string | undefined): URL | null {
  if (!target?.startsWith('/') || target.startsWith('//')) return null;
  try {
    return new URL(target, 'http://127.0.0.1');
  } catch {
    return null;
  }
}

/** A header value for a log line: bounded, quoted, control characters escaped. */
function show(v: unknown): string {
  return JSON.stringify(String(v)).slice(0, 120);
}

export function contentSecurityPolicy(origin: string): string {
  const ws = origin.replace(/^http/, 'ws');
  return [
    "default-src 'self'",
    "script-src 'self'",
    // xterm.js and Svelte transitions set inline style attributes.
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "font-src 'self' data:",
    `connect-src 'self' ${ws}`,
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/** Answer a refused upgrade on the raw socket, then close it (after the bytes are out). */
function refuseUpgrade(socket: Duplex, status: 400 | 403): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const reason = status === 400 ? 'Bad Request' : 'Forbidden';
  socket.once('finish', () => socket.destroy());
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}

export async function startWebServer(opts: WebServerOptions): Promise<WebServer> {
  let oneTimeToken: string | null = opts.token ?? randomBytes(24).toString('base64url');
  /** Session cookie value → session key (the second secret, kept by the page, never a cookie). */
  const sessions = new Map<string, string>();
  const log = opts.log ?? (() => undefined);

  const server: Server = createServer((req, res) => {
    handleHttp(req, res).catch((e) => {
      log(`http error: ${(e as Error)?.message}`);
      if (!res.headersSent) res.writeHead(500).end('Internal error');
      else res.destroy();
    });
  });

  function securityHeaders(res: ServerResponse, host: string): void {
    res.setHeader('Content-Security-Policy', contentSecurityPolicy(`http://${host}`));
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Referrer-Policy', 'no-referrer');
    res.setHeader('Cache-Control', 'no-store');
  }

  function plain(res: ServerResponse, status: number, text: string): void {
    res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8' }).end(text);
  }

  async function handleHttp(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const host = req.headers.host;
    if (!isLoopbackHost(host)) {
      plain(res, 403, 'Open the app through 127.0.0.1, localhost or [::1].\n');
      return;
    }
    securityHeaders(res, host);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405).end();
      return;
    }
    const url = parseTarget(req.url);
    if (!url) {
      plain(res, 400, 'Bad request\n');
      return;
    }
    const token = url.searchParams.get('token');
    if (token !== null) {
      if (oneTimeToken && safeEqual(token, oneTimeToken)) {
        oneTimeToken = null;
        const sid = randomBytes(32).toString('base64url');
        const key = randomBytes(32).toString('base64url');
        sessions.set(sid, key);
        res.writeHead(302, {
          'Set-Cookie': `${COOKIE}=${sid}; HttpOnly; SameSite=Strict; Path=/`,
          // Relative, so it stays on whatever host:port the browser used (e.g. a tunnel's).
          Location: `/#${KEY_FRAGMENT}=${key}`,
        });
        res.end();
        return;
      }
      plain(res, 403, 'This link was already used or is wrong. Restart `npm run web` for a new one.\n');
      return;
    }
    const sid = cookieOf(req);
    if (!sid || !sessions.has(sid)) {
      plain(res, 401, 'Open the URL printed by `npm run web` (it carries the access token).\n');
      return;
    }
    await serveStatic(url.pathname, res);
  }

  async function serveStatic(pathname: string, res: ServerResponse): Promise<void> {
    let rel: string;
    try {
      rel = pathname === '/' ? 'index.html' : decodeURIComponent(pathname).replace(/^\/+/, '');
    } catch {
      plain(res, 400, 'Bad request\n');
      return;
    }
    const file = normalize(join(opts.rendererDir, rel));
    if (rel.includes('\0') || !file.startsWith(normalize(opts.rendererDir) + sep)) {
      res.writeHead(404).end();
      return;
    }
    try {
      const body = await fs.readFile(file);
      res.writeHead(200, { 'Content-Type': MIME[extname(file)] ?? 'application/octet-stream' }).end(body);
    } catch {
      res.writeHead(404).end('Not found');
    }
  }

  /** Why an upgrade request may not become the API WebSocket; null when it may. */
  function upgradeRefusal(req: IncomingMessage): string | null {
    const host = req.headers.host;
    if (!isLoopbackHost(host)) return `host ${show(host)} is not loopback`;
    if (!isOwnOrigin(req.headers.origin, host)) return `origin ${show(req.headers.origin)} is not http://${host}`;
    const url = parseTarget(req.url);
    if (!url || url.pathname !== '/api') return `path ${show(req.url)}`;
    const sid = cookieOf(req);
    const key = sid === undefined ? undefined : sessions.get(sid);
    if (key === undefined) return `session ${sid ? 'unknown' : 'none'}`;
    const given = url.searchParams.get(KEY_PARAM);
    if (given === null || !safeEqual(given, key)) return `session key ${given === null ? 'missing' : 'wrong'}`;
    return null;
  }

  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    // Node hands the raw socket over without its own error listener: a reset would otherwise
    // be an uncaught 'error' and end the process.
    socket.on('error', () => undefined);
    try {
      const refusal = upgradeRefusal(req);
      if (refusal) {
        log(`refused websocket: ${refusal}`);
        refuseUpgrade(socket, 403);
        return;
      }
      wss.handleUpgrade(req, socket, head, (ws) => onClient(ws));
    } catch (e) {
      log(`bad upgrade request: ${show((e as Error)?.message)}`);
      refuseUpgrade(socket, 400);
    }
  });
  // Requests Node's parser rejects (bad request line, huge headers …) never get here: without a
  // 'clientError' listener Node answers them 400/431 and closes the socket.

  let clientSeq = 0;
  function onClient(ws: WebSocket): void {
    const client = `web#${++clientSeq}`;
    const send = (m: WireMessage) => {
      if (ws.readyState !== ws.OPEN) return;
      if (ws.bufferedAmount > MAX_BUFFERED) {
        // The page stopped reading: drop it rather than buffering forever.
        ws.terminate();
        return;
      }
      let text: string;
      try {
        text = JSON.stringify(m);
      } catch (e) {
        if (m.t !== 'res') return;
        log(`unserialisable reply to #${m.id}: ${show((e as Error)?.message)}`);
        text = JSON.stringify({
          t: 'res',
          id: m.id,
          ok: false,
          error: { code: 'INTERNAL', message: 'Reply could not be encoded' },
        });
      }
      ws.send(text);
    };
    const unsubscribe = opts.events.subscribe((event, payload) => send({ t: 'evt', event, payload }));
    ws.on('message', (raw: RawData, isBinary: boolean) => {
      if (isBinary) return; // the renderer only sends text
      let msg: unknown;
      try {
        msg = JSON.parse(raw.toString());
      } catch {
        return; // not ours; ignore
      }
      if (typeof msg !== 'object' || msg === null) return;
      const { t, id, method, input } = msg as { t?: unknown; id?: unknown; method?: unknown; input?: unknown };
      if (t !== 'req' || typeof id !== 'number') return;
      let pending: ReturnType<Dispatch>;
      try {
        pending = opts.dispatch(method, input, { client });
      } catch (e) {
        pending = Promise.reject(e);
      }
      pending
        .then(
          (r) => (r.ok ? { t: 'res', id, ok: true, value: r.value } : { t: 'res', id, ok: false, error: r.error }),
          (e: unknown) => {
            // The dispatcher answers with error shapes; this is a bug or a hostile payload
            // (e.g. a method name that cannot be turned into a string). Answer, do not crash.
            log(`request #${id} failed: ${show((e as Error)?.message)}`);
            return { t: 'res', id, ok: false, error: { code: 'INTERNAL', message: 'Request could not be handled' } };
          },
        )
        .then((m) => send(m as WireMessage))
        .catch(() => undefined);
    });
    ws.on('close', unsubscribe);
    ws.on('error', () => unsubscribe());
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const origin = `http://127.0.0.1:${port}`;
  const url = `${origin}/?token=${oneTimeToken}`;
  return {
    url,
    port,
    origin,
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close();
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}
