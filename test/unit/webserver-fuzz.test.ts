// Intent: no input takes the headless web server down. Raw sockets send malformed request lines,
// bad and huge headers, bad URLs and bad upgrade requests (among them the reported crash,
// `GET http://[ HTTP/1.1` with `Upgrade: websocket`); after a valid handshake, garbage WebSocket
// frames, invalid JSON, hostile requests and oversized messages. Afterwards the server must still
// answer a normal page request and a normal API call, and nothing may have escaped as an uncaught
// exception or unhandled rejection (in `node out/main/web.js` either one ends the process).
import { promises as fs } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createDispatcher, EventHub, type Handlers } from '../../src/main/api/dispatch';
import { methods } from '../../src/shared/contract';
import { startWebServer, type WebServer } from '../../src/main/server/http';

let server: WebServer;
let dir: string;
let cookie = '';
let key = '';
const escaped: string[] = [];
const onUncaught = (e: unknown) => escaped.push(`uncaught: ${String((e as Error)?.stack ?? e)}`);
const onRejection = (e: unknown) => escaped.push(`unhandled rejection: ${String((e as Error)?.stack ?? e)}`);

beforeAll(async () => {
  process.on('uncaughtException', onUncaught);
  process.on('unhandledRejection', onRejection);
  dir = await fs.mkdtemp(join(tmpdir(), 'kes-web-fuzz-'));
  await fs.writeFile(join(dir, 'index.html'), '<!doctype html><title>kes</title>');
  const h: Record<string, () => unknown> = {};
  for (const m of Object.keys(methods)) h[m] = () => ({ method: m });
  // A handler whose reply cannot be encoded: the server must still answer (with an error).
  h['clusters.list'] = () => ({ big: BigInt(1) });
  server = await startWebServer({
    rendererDir: dir,
    dispatch: createDispatcher(h as unknown as Handlers),
    events: new EventHub(),
  });
  const r = await fetch(server.url, { redirect: 'manual' });
  cookie = r.headers.get('set-cookie')!.split(';')[0];
  key = /#kes-key=(.+)$/.exec(r.headers.get('location')!)![1];
});

afterAll(async () => {
  process.off('uncaughtException', onUncaught);
  process.off('unhandledRejection', onRejection);
  await server?.close();
  await fs.rm(dir, { recursive: true, force: true });
});

/** Deterministic pseudo-random bytes (xorshift), so a failure can be replayed. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}
function randomBytesSeeded(next: () => number, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = next() & 0xff;
  return b;
}

/**
 * Send raw bytes on a fresh TCP connection; resolve with what came back once the server closes the
 * connection or `ms` passes. Connection errors (resets) count as an answer, not as a failure.
 */
function raw(data: Buffer | string | (Buffer | string)[], ms = 400): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const sock = connect(server.port, '127.0.0.1');
    const done = () => {
      clearTimeout(timer);
      sock.destroy();
      resolve(Buffer.concat(chunks).toString('latin1'));
    };
    const timer = setTimeout(done, ms);
    sock.on('data', (d) => chunks.push(d));
    sock.on('error', done);
    sock.on('close', done);
    sock.on('connect', () => {
      for (const part of Array.isArray(data) ? data : [data]) sock.write(part);
    });
  });
}

const host = () => `Host: 127.0.0.1:${server.port}\r\n`;
const upgradeHeaders = () =>
  `Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n`;
const authHeaders = () => `${host()}Origin: http://127.0.0.1:${server.port}\r\nCookie: ${cookie}\r\n`;

/** The server still serves a page and the API after the abuse. */
async function stillServes(): Promise<void> {
  const page = await fetch(server.origin + '/', { headers: { cookie } });
  expect(page.status).toBe(200);
  const ws = new WebSocket(`${server.origin.replace('http', 'ws')}/api?key=${key}`, {
    headers: { origin: server.origin, cookie },
  });
  const reply = await new Promise<unknown>((resolve, reject) => {
    ws.once('open', () => ws.send(JSON.stringify({ t: 'req', id: 99, method: 'app.info', input: {} })));
    ws.once('message', (m) => resolve(JSON.parse(m.toString())));
    ws.once('error', reject);
    ws.once('unexpected-response', (_q, res) => reject(new Error(`HTTP ${res.statusCode}`)));
  });
  ws.close();
  expect(reply).toEqual({ t: 'res', id: 99, ok: true, value: { method: 'app.info' } });
  expect(escaped).toEqual([]);
}

describe('web server under malformed input', () => {
  it('survives the reported crash: an upgrade request for `http://[`', async () => {
    // As reported (no Origin, no cookie), and with our Origin and cookie so every other check passes.
    for (const headers of [host(), authHeaders()]) {
      const answer = await raw(`GET http://[ HTTP/1.1\r\n${headers}${upgradeHeaders()}\r\n`);
      expect(answer).toMatch(/^HTTP\/1\.1 4\d\d /);
    }
    await stillServes();
  });

  it('answers malformed upgrade requests with 4xx and keeps serving', async () => {
    const targets = [
      'http://[',
      'http://[::1',
      '//[',
      '%',
      '/api?%zz',
      '/api%',
      '*',
      'http://evil.example/api',
      '/api?key=%ff%fe',
      `/api?key=${'k'.repeat(4000)}`,
      '/a\u00ff\u00fe',
    ];
    const variants = (t: string) => [
      `GET ${t} HTTP/1.1\r\n${host()}${upgradeHeaders()}\r\n`,
      `GET ${t} HTTP/1.1\r\n${authHeaders()}${upgradeHeaders()}\r\n`,
    ];
    const bad = [
      ...targets.flatMap(variants),
      // Authorised but not a proper WebSocket handshake: ws refuses these itself.
      `GET /api?key=${key} HTTP/1.1\r\n${authHeaders()}Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n`,
      `GET /api?key=${key} HTTP/1.1\r\n${authHeaders()}Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 99\r\nSec-WebSocket-Key: x\r\n\r\n`,
      `GET /api?key=${key} HTTP/1.1\r\n${authHeaders()}Upgrade: h2c\r\nConnection: Upgrade\r\n\r\n`,
      `POST /api?key=${key} HTTP/1.1\r\n${authHeaders()}${upgradeHeaders()}Content-Length: 5\r\n\r\nhello`,
      // Odd Host and Origin values.
      `GET /api HTTP/1.1\r\nHost: [\r\nOrigin: http://[\r\n${upgradeHeaders()}\r\n`,
      `GET /api HTTP/1.1\r\n${upgradeHeaders()}\r\n`,
      `GET /api HTTP/1.1\r\nHost: a\r\nHost: b\r\nOrigin: null\r\nCookie: kes_session\r\n${upgradeHeaders()}\r\n`,
      `GET /api HTTP/1.1\r\n${host()}Origin: \u00ff\u00fe\r\nCookie: ;;==;kes_session==\r\n${upgradeHeaders()}\r\n`,
    ];
    for (const req of bad) {
      const answer = await raw(Buffer.from(req, 'latin1'));
      expect(answer, JSON.stringify(req)).toMatch(/^(HTTP\/1\.1 4\d\d |$)/);
      expect(answer, JSON.stringify(req)).not.toMatch(/^HTTP\/1\.1 101/);
    }
    // The client resets the connection right after its upgrade request: the server's answer then
    // meets a reset socket (an 'error' on a socket nobody listens to would end the process).
    for (let i = 0; i < 20; i++) {
      await new Promise<void>((resolve) => {
        const s = connect(server.port, '127.0.0.1', () => {
          s.write(`GET /api HTTP/1.1\r\n${i % 2 ? host() : authHeaders()}${upgradeHeaders()}\r\n`);
          if (i < 10) {
            s.resetAndDestroy();
            resolve();
          } else
            setTimeout(() => {
              s.resetAndDestroy();
              resolve();
            }, i - 10);
        });
        s.on('error', () => resolve());
      });
    }
    await new Promise((r) => setTimeout(r, 50));
    await stillServes();
  });

  it('answers malformed HTTP requests (request lines, headers, URLs) and keeps serving', async () => {
    const bad: (string | Buffer)[] = [
      'GARBAGE\r\n\r\n',
      'GET\r\n\r\n',
      'GET / HTTP/9.9\r\n\r\n',
      'GET / HTTP/1.1\r\n\r\n', // no Host
      `GET http://[ HTTP/1.1\r\n${host()}\r\n`,
      `GET //[ HTTP/1.1\r\n${host()}Cookie: ${cookie}\r\n\r\n`,
      `GET * HTTP/1.1\r\n${host()}\r\n`,
      `GET /%E0%A4%A HTTP/1.1\r\n${host()}Cookie: ${cookie}\r\n\r\n`,
      `GET /%00 HTTP/1.1\r\n${host()}Cookie: ${cookie}\r\n\r\n`,
      `GET /..%2f..%2f..%2fetc%2fpasswd HTTP/1.1\r\n${host()}Cookie: ${cookie}\r\n\r\n`,
      `GET /?token=%zz HTTP/1.1\r\n${host()}\r\n`,
      `GET /?token=${'x'.repeat(5000)} HTTP/1.1\r\n${host()}\r\n`,
      `GET /${'a'.repeat(70_000)} HTTP/1.1\r\n${host()}\r\n`,
      `GET / HTTP/1.1\r\n${host()}X-Big: ${'b'.repeat(70_000)}\r\n\r\n`,
      `GET / HTTP/1.1\r\n${host()}${'X-Many: 1\r\n'.repeat(3000)}\r\n`,
      `GET / HTTP/1.1\r\n${host()}Bad Header: x\r\n\r\n`,
      `GET / HTTP/1.1\r\n${host()}X: a\u0001b\r\n\r\n`,
      `GET / HTTP/1.1\r\nHost: evil.example\r\nCookie: ${cookie}\r\n\r\n`,
      `GET / HTTP/1.1\r\n${host()}Content-Length: -1\r\n\r\n`,
      `GET / HTTP/1.1\r\n${host()}Content-Length: 1\r\nContent-Length: 2\r\n\r\n`,
      `POST / HTTP/1.1\r\n${host()}Transfer-Encoding: chunked\r\n\r\nzz\r\n`,
      `CONNECT 127.0.0.1:22 HTTP/1.1\r\n${host()}\r\n`,
      `GET / HTTP/1.1\r\n${host()}Expect: 100-continue\r\nCookie: ${cookie}\r\n\r\n`,
      `GET / HTTP/1.1\r\n${host()}Cookie: ${'kes_session=x; '.repeat(500)}\r\n\r\n`,
      Buffer.from([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00]), // a TLS ClientHello
      Buffer.alloc(0),
    ];
    // In parallel: a request the parser still waits on is only given up after the timeout.
    const answers = await Promise.all(bad.map((req) => raw(req)));
    answers.forEach((answer, i) =>
      expect(answer, JSON.stringify(String(bad[i]).slice(0, 80))).toMatch(/^(HTTP\/1\.1 [1-5]\d\d |$)/),
    );
    const next = rng(0x5eed);
    for (let batch = 0; batch < 3; batch++) {
      const sends = Array.from({ length: 20 }, (_, i) => {
        const prefix = ['', 'GET / HTTP/1.1\r\n', `GET /api HTTP/1.1\r\n${authHeaders()}${upgradeHeaders()}`][i % 3];
        return raw([prefix, randomBytesSeeded(next, 1 + (next() % 512))], 200);
      });
      await Promise.all(sends);
    }
    await stillServes();
  });

  it('survives garbage WebSocket frames after a valid handshake', async () => {
    const handshake = `GET /api?key=${key} HTTP/1.1\r\n${authHeaders()}${upgradeHeaders()}\r\n`;
    const frames: Buffer[] = [
      Buffer.from([0x81, 0x05, 0x68, 0x65, 0x6c, 0x6c, 0x6f]), // unmasked text frame from a client
      Buffer.from([0x83, 0x80, 1, 2, 3, 4]), // reserved opcode
      Buffer.from([0xf1, 0x80, 1, 2, 3, 4]), // reserved bits set
      Buffer.from([0x89, 0xfe, 0x00, 0xff, 1, 2, 3, 4]), // control frame longer than 125
      Buffer.from([0x09, 0x80, 1, 2, 3, 4]), // fragmented control frame
      Buffer.from([0x80, 0x80, 1, 2, 3, 4]), // continuation with nothing to continue
      Buffer.from([0x81, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4]), // 2^63 bytes
      Buffer.from([0x81, 0xff, 0x00, 0x00, 0x00, 0x00, 0x7f, 0xff, 0xff, 0xff, 1, 2, 3, 4]), // > maxPayload
      Buffer.from([0x81, 0x82, 0, 0, 0, 0, 0xc3, 0x28]), // invalid UTF-8 text
      Buffer.from([0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe7]), // close with an invalid code
      Buffer.from([0x88, 0x81, 0, 0, 0, 0, 0x03]), // close with a 1-byte body
    ];
    const next = rng(0xf4a3e5);
    for (let i = 0; i < 30; i++) frames.push(randomBytesSeeded(next, 1 + (next() % 256)));
    const answers = await Promise.all(frames.map((frame) => raw([handshake, frame], 300)));
    for (const answer of answers) expect(answer).toMatch(/^HTTP\/1\.1 101 /);
    await stillServes();
  });

  it('ignores or answers invalid JSON, hostile requests and oversized messages', async () => {
    const ws = new WebSocket(`${server.origin.replace('http', 'ws')}/api?key=${key}`, {
      headers: { origin: server.origin, cookie },
    });
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    const replies: { id: number; ok: boolean; error?: { code: string } }[] = [];
    ws.on('message', (m) => replies.push(JSON.parse(m.toString())));
    const deep = (n: number) => '['.repeat(n) + ']'.repeat(n);
    const messages: (string | Buffer)[] = [
      'not json',
      '',
      '{',
      'null',
      '42',
      '"req"',
      '[]',
      deep(100_000),
      Buffer.from([0xff, 0x00, 0x13]),
      '{"t":"req"}',
      '{"t":"req","id":"1","method":"app.info"}',
      '{"t":"evt","event":"node.status","payload":{}}',
      '{"t":"res","id":1,"ok":true}',
      '{"t":"req","id":1,"method":"nope","input":{}}',
      '{"t":"req","id":2,"method":"__proto__","input":{}}',
      '{"t":"req","id":3,"method":"constructor","input":{}}',
      // A method that cannot be turned into a string for the "unknown method" message.
      '{"t":"req","id":4,"method":{"toString":1,"valueOf":1},"input":{}}',
      `{"t":"req","id":5,"method":${deep(20_000)},"input":{}}`,
      '{"t":"req","id":6,"method":"clusters.create","input":{"name":"$(reboot)","__proto__":{"x":1}}}',
      '{"t":"req","id":7,"method":"clusters.create","input":null}',
      `{"t":"req","id":8,"method":"clusters.create","input":${deep(10_000)}}`,
      // The handler's reply is not JSON-encodable.
      '{"t":"req","id":9,"method":"clusters.list","input":{}}',
    ];
    for (const m of messages) ws.send(m, { binary: Buffer.isBuffer(m) });
    const deadline = Date.now() + 3000;
    while (replies.length < 9 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    // Every well-formed request got exactly one answer; the rest were ignored.
    expect(replies.map((r) => r.id).sort()).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    for (const r of replies) expect(r.ok, JSON.stringify(r)).toBe(false);

    // A message over the size limit closes this connection (1009), not the server.
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    ws.send('x'.repeat(3 * 1024 * 1024));
    expect(await closed).toBe(1009);
    await stillServes();
  });
});
