// The two gRPC calls the snapshot stream needs (a server stream and a unary call), spoken with
// Node's own HTTP/2 and TLS over any byte stream: a TCP socket straight to the member, or an SSH
// direct-tcpip channel.
//
// Why not @grpc/grpc-js: it can only dial an address, so the SSH channel had to be exposed as a
// local TCP port and every byte crossed one more socket pair; measured on a 250 MB snapshot that
// hop made the stream ~1.6× slower than HTTP/2 over the channel itself. gRPC's wire format for
// these calls is small (RFC 7540 + the gRPC-over-HTTP/2 spec: a 5-byte length prefix per message,
// the status in trailers), and the integration tests check this client against etcd 3.4–3.6 and
// against a grpc-js server with faults injected.
import { connect as h2connect, constants, type ClientHttp2Session, type ClientHttp2Stream } from 'node:http2';
import { isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import { checkServerIdentity, connect as tlsConnect } from 'node:tls';

export interface GrpcTls {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

/** A gRPC status other than OK, as the server sent it. */
export class GrpcError extends Error {
  constructor(
    readonly status: number,
    details: string,
  ) {
    super(`gRPC status ${status}${details ? `: ${details}` : ''}`);
    this.name = 'GrpcError';
  }
}

/**
 * An HTTP/2 session over `socket` (TLS with the client certificate when `tls` is given; the
 * server certificate must name `serverName`, an IP checked against its IP SANs and not sent as
 * SNI). Resolves once the TLS and HTTP/2 handshakes are done; `connectMs` bounds both.
 */
export function grpcSession(
  socket: Duplex,
  o: { tls: GrpcTls | null; serverName: string; connectMs: number; windowBytes: number },
): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const transport = o.tls
      ? tlsConnect({
          socket,
          ca: o.tls.ca,
          cert: o.tls.cert,
          key: o.tls.key,
          ALPNProtocols: ['h2'],
          ...(isIP(o.serverName) ? {} : { servername: o.serverName }),
          checkServerIdentity: (_host, cert) => checkServerIdentity(o.serverName, cert),
        })
      : socket;
    const session = h2connect(`${o.tls ? 'https' : 'http'}://${o.serverName}`, {
      createConnection: () => transport,
      settings: { initialWindowSize: o.windowBytes },
    });
    const timer = setTimeout(() => {
      fail(new Error(`etcd did not answer within ${o.connectMs} ms`));
    }, o.connectMs);
    const fail = (e: Error) => {
      clearTimeout(timer);
      session.destroy();
      socket.destroy();
      reject(e);
    };
    // TLS failures (a certificate that does not name the member) surface on the session too.
    session.once('error', (e) => fail(new Error(`etcd did not answer: ${e.message}`)));
    session.once('connect', () => {
      clearTimeout(timer);
      session.removeAllListeners('error');
      session.on('error', () => undefined); // reported by the stream that was open
      session.setLocalWindowSize(o.windowBytes);
      resolve(session);
    });
  });
}

function request(session: ClientHttp2Session, path: string, message: Buffer): ClientHttp2Stream {
  const req = session.request({
    ':method': 'POST',
    ':path': path,
    'content-type': 'application/grpc',
    te: 'trailers',
  });
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  message.copy(frame, 5);
  req.end(frame);
  return req;
}

/** The call's outcome from its trailers (or a trailers-only response's headers). */
function statusOf(req: ClientHttp2Stream): Promise<void> {
  return new Promise((resolve, reject) => {
    let headers: Record<string, unknown> = {};
    req.once('response', (h) => (headers = h));
    req.once('trailers', (t) => (headers = { ...headers, ...t }));
    req.once('error', reject);
    req.once('close', () => {
      const status = headers['grpc-status'];
      if (status === undefined) {
        const code = req.rstCode;
        reject(
          new Error(code ? `the stream was reset (HTTP/2 code ${code})` : 'the stream ended without a gRPC status'),
        );
      } else if (Number(status) !== 0)
        reject(new GrpcError(Number(status), decodeURIComponent(String(headers['grpc-message'] ?? ''))));
      else resolve();
    });
  });
}

/**
 * A server-streaming call: yields each response message as the pieces it arrived in (HTTP/2 DATA
 * frames are at most 16 KiB, so a 32 KiB message comes as 2–3 pieces; joining them would copy every
 * byte once more). The HTTP/2 stream is read only as the caller asks for the next message, so a
 * slow consumer holds the server back (HTTP/2 flow control), and memory stays at the window size.
 * Ends with the call's status (throws GrpcError). `cancel()` resets the stream (the iteration then
 * throws).
 */
export function serverStream(
  session: ClientHttp2Session,
  path: string,
  message: Buffer,
): { messages: AsyncIterable<Buffer[]>; cancel: (why?: Error) => void } {
  const req = request(session, path, message);
  const status = statusOf(req);
  status.catch(() => undefined); // awaited after the last message
  let cancelled: Error | undefined;
  async function* messages(): AsyncGenerator<Buffer[]> {
    const parser = new MessageParser();
    try {
      for await (const chunk of chunksOf(req)) {
        for (const m of parser.pushParts(chunk)) yield m;
      }
    } catch (e) {
      throw cancelled ?? e;
    }
    if (cancelled) throw cancelled;
    parser.end();
    await status;
  }
  return {
    messages: messages(),
    cancel: (why) => {
      cancelled ??= why ?? new Error('cancelled');
      req.close(constants.NGHTTP2_CANCEL);
      req.destroy(cancelled);
    },
  };
}

/** Chunks held before the stream is paused (each ≤ 16 KiB: a DATA frame). */
const QUEUED_CHUNKS = 16;

/**
 * The stream's chunks one by one, as they came. (A Readable's own async iterator calls `read()`,
 * which joins every chunk buffered so far into a new buffer: one more copy of each byte.) Paused
 * while the consumer is behind. Ends when the stream ends or closes; a stream that closed without
 * its end is told apart by the caller (no gRPC status, or a message cut short).
 */
async function* chunksOf(stream: ClientHttp2Stream): AsyncGenerator<Buffer> {
  const queue: Buffer[] = [];
  let finished = false;
  let failed: Error | undefined;
  let wake: (() => void) | undefined;
  const poke = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const onData = (c: Buffer) => {
    queue.push(c);
    if (queue.length >= QUEUED_CHUNKS) stream.pause();
    poke();
  };
  const onEnd = () => {
    finished = true;
    poke();
  };
  const onError = (e: Error) => {
    failed ??= e;
    poke();
  };
  stream.on('data', onData);
  stream.once('end', onEnd);
  stream.once('close', onEnd);
  stream.once('error', onError);
  try {
    for (;;) {
      if (queue.length) {
        const c = queue.shift()!;
        if (!queue.length && stream.isPaused()) stream.resume();
        yield c;
        continue;
      }
      if (failed) throw failed;
      if (finished) return;
      await new Promise<void>((r) => (wake = r));
    }
  } finally {
    stream.off('data', onData);
    stream.off('end', onEnd);
    stream.off('close', onEnd);
    stream.off('error', onError);
  }
}

/** A unary call: the response message's bytes; fails after `deadlineMs`. */
export async function unary(
  session: ClientHttp2Session,
  path: string,
  message: Buffer,
  deadlineMs: number,
): Promise<Buffer> {
  const call = serverStream(session, path, message);
  const timer = setTimeout(() => call.cancel(new Error(`${path}: no answer within ${deadlineMs} ms`)), deadlineMs);
  try {
    let out: Buffer | undefined;
    for await (const m of call.messages) out ??= join(m);
    if (!out) throw new Error(`${path}: no response message`);
    return out;
  } finally {
    clearTimeout(timer);
  }
}

/** One buffer of a message's pieces (a copy only when there are several). */
export function join(parts: Buffer[]): Buffer {
  return parts.length === 1 ? parts[0] : Buffer.concat(parts);
}

/** Splits a gRPC response body into messages (5-byte prefix: compressed flag, 32-bit length). */
export class MessageParser {
  private buf: Buffer[] = [];
  private have = 0;

  /** The messages completed by `chunk`, each one buffer. */
  push(chunk: Buffer): Buffer[] {
    return this.pushParts(chunk).map(join);
  }

  /** The messages completed by `chunk`, each as pieces of the chunks pushed (not copied). */
  pushParts(chunk: Buffer): Buffer[][] {
    this.buf.push(chunk);
    this.have += chunk.length;
    const out: Buffer[][] = [];
    for (;;) {
      if (this.have < 5) return out;
      const head = this.peek(5);
      if (head[0] !== 0) throw new Error('etcd sent a compressed gRPC message (none was asked for)');
      const len = head.readUInt32BE(1);
      if (this.have < 5 + len) return out;
      this.take(5);
      out.push(len ? this.take(len) : [Buffer.alloc(0)]);
    }
  }

  /** The body ended: nothing may be left half-read. */
  end(): void {
    if (this.have) throw new Error(`the gRPC stream ended inside a message (${this.have} bytes left over)`);
  }

  /** The first n buffered bytes (copied only when they straddle chunks: the 5-byte prefix). */
  private peek(n: number): Buffer {
    if (this.buf[0].length >= n) return this.buf[0].subarray(0, n);
    const out = Buffer.alloc(n);
    let at = 0;
    for (const b of this.buf) {
      at += b.copy(out, at, 0, Math.min(b.length, n - at));
      if (at === n) break;
    }
    return out;
  }

  /** The first n buffered bytes, as views of the chunks they are in. */
  private take(n: number): Buffer[] {
    const out: Buffer[] = [];
    this.have -= n;
    while (n > 0) {
      const first = this.buf[0];
      if (first.length <= n) {
        out.push(first);
        this.buf.shift();
        n -= first.length;
      } else {
        out.push(first.subarray(0, n));
        this.buf[0] = first.subarray(n);
        n = 0;
      }
    }
    return out;
  }
}
