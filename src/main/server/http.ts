// Headless web mode's server: serves the built renderer and carries the API over a WebSocket,
// on 127.0.0.1 only. Access: the printed URL holds a random one-time token; the first request
// with it trades it for an HttpOnly, SameSite=Strict session cookie (the token is then spent, so a
// leaked URL from shell history or a screenshot is useless). The WebSocket upgrade needs that
// cookie AND an Origin equal to our own, so another site open in the same browser cannot drive
// the API (cross-site WebSocket hijacking).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { promises as fs } from 'node:fs';
import { extname, join, normalize, sep } from 'node:path';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import type { WireMessage, WireRequest } from '@shared/contract';
import type { Dispatch, EventHub } from '../api/dispatch';

const COOKIE = 'kes_session';
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

export async function startWebServer(opts: WebServerOptions): Promise<WebServer> {
  let oneTimeToken: string | null = opts.token ?? randomBytes(24).toString('base64url');
  const sessions = new Set<string>();
  const log = opts.log ?? (() => undefined);
  let origin = '';

  const server: Server = createServer((req, res) => {
    handleHttp(req, res).catch((e) => {
      log(`http error: ${(e as Error).message}`);
      if (!res.headersSent) res.writeHead(500).end('Internal error');
    });
  });

  function securityHeaders(res: ServerResponse): void {
    res.setHeader('Content-Security-Policy', contentSecurityPolicy(origin));
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Referrer-Policy', 'no-referrer');
    res.setHeader('Cache-Control', 'no-store');
  }

  async function handleHttp(req: IncomingMessage, res: ServerResponse): Promise<void> {
    securityHeaders(res);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405).end();
      return;
    }
    const url = new URL(req.url ?? '/', origin);
    const token = url.searchParams.get('token');
    if (token !== null) {
      if (oneTimeToken && safeEqual(token, oneTimeToken)) {
        oneTimeToken = null;
        const sid = randomBytes(32).toString('base64url');
        sessions.add(sid);
        res.writeHead(302, {
          'Set-Cookie': `${COOKIE}=${sid}; HttpOnly; SameSite=Strict; Path=/`,
          Location: '/',
        });
        res.end();
        return;
      }
      res
        .writeHead(403, { 'Content-Type': 'text/plain; charset=utf-8' })
        .end('This link was already used or is wrong. Restart `npm run web` for a new one.\n');
      return;
    }
    const sid = cookieOf(req);
    if (!sid || !sessions.has(sid)) {
      res
        .writeHead(401, { 'Content-Type': 'text/plain; charset=utf-8' })
        .end('Open the URL printed by `npm run web` (it carries the access token).\n');
      return;
    }
    await serveStatic(url.pathname, res);
  }

  async function serveStatic(pathname: string, res: ServerResponse): Promise<void> {
    const rel = pathname === '/' ? 'index.html' : decodeURIComponent(pathname).replace(/^\/+/, '');
    const file = normalize(join(opts.rendererDir, rel));
    if (!file.startsWith(normalize(opts.rendererDir) + sep)) {
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

  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE });
  server.on('upgrade', (req, socket, head) => {
    const sid = cookieOf(req);
    const okOrigin = req.headers.origin === origin;
    const url = new URL(req.url ?? '/', origin);
    if (url.pathname !== '/api' || !okOrigin || !sid || !sessions.has(sid)) {
      log(
        `refused websocket: path=${url.pathname} origin=${String(req.headers.origin)} session=${sid ? 'unknown' : 'none'}`,
      );
      socket.write('HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\n');
      socket.destroy();
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => onClient(ws));
  });

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
      ws.send(JSON.stringify(m));
    };
    const unsubscribe = opts.events.subscribe((event, payload) => send({ t: 'evt', event, payload }));
    ws.on('message', (raw) => {
      let msg: WireRequest;
      try {
        msg = JSON.parse(raw.toString()) as WireRequest;
      } catch {
        return; // not ours; ignore
      }
      if (msg?.t !== 'req' || typeof msg.id !== 'number') return;
      void opts
        .dispatch(msg.method, msg.input, { client })
        .then((r) =>
          send(
            r.ok
              ? { t: 'res', id: msg.id, ok: true, value: r.value }
              : { t: 'res', id: msg.id, ok: false, error: r.error },
          ),
        );
    });
    ws.on('close', unsubscribe);
    ws.on('error', () => unsubscribe());
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  origin = `http://127.0.0.1:${port}`;
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
