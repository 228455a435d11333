// Snapshot by streaming (issue 12): etcd's own snapshot RPC (etcdserverpb.Maintenance/Snapshot,
// what `etcdctl snapshot save` calls) read on the desktop, with the node's etcd client certificate
// held in memory only. Blobs go straight into the vault's `.part` file with backpressure (the gRPC
// stream is not read while the file write is behind, so HTTP/2 and TCP or SSH flow control hold
// etcd back), hashed on the way; etcd's trailing sha256 is checked before the vault commits.
// Nothing is written on the node, and the snapshot is never held in memory.
//
// The connection to the member's client port is made straight from the desktop when it can reach
// it (as every apiserver reaches etcd: mutual TLS against the cluster's etcd CA), else through an
// SSH-forwarded channel. Straight is ~1.3× faster in the lab and costs the desktop ~25 % less CPU
// (loopback): no sshd in between, no second encryption, and TLS runs natively on the socket rather
// than over a JavaScript stream.
//
// gRPC is spoken by ./grpc-h2 (Node's HTTP/2 and TLS on the socket or right over the SSH channel);
// the two messages are decoded with protobufjs from an inline descriptor
// (field numbers from go.etcd.io/etcd/api/v3 etcdserverpb/rpc.proto, 3.4–3.6 alike), so no .proto
// file has to ship with the app.
import { createWriteStream, promises as fs } from 'node:fs';
import { once } from 'node:events';
import { connect as netConnect, type Socket } from 'node:net';
import type { ClientHttp2Session } from 'node:http2';
import type { Duplex } from 'node:stream';
import protobuf from 'protobufjs/light.js';
import type { Log } from '../cluster/ops';
import type { SshPool } from '../ssh/pool';
import { SshError, type SshTarget } from '../ssh/types';
import { grpcSession, serverStream, unary } from './grpc-h2';
import { SnapshotHasher, SnapshotInvalid } from '../vault/snapfile';

const root = protobuf.Root.fromJSON({
  nested: {
    etcdserverpb: {
      nested: {
        ResponseHeader: {
          fields: {
            cluster_id: { type: 'uint64', id: 1 },
            member_id: { type: 'uint64', id: 2 },
            revision: { type: 'int64', id: 3 },
            raft_term: { type: 'uint64', id: 4 },
          },
        },
        SnapshotResponse: {
          fields: {
            header: { type: 'ResponseHeader', id: 1 },
            remaining_bytes: { type: 'uint64', id: 2 },
            blob: { type: 'bytes', id: 3 },
            version: { type: 'string', id: 4 },
          },
        },
        StatusResponse: { fields: { version: { type: 'string', id: 2 } } },
      },
    },
  },
});
const SnapshotResponse = root.lookupType('etcdserverpb.SnapshotResponse');
const StatusResponse = root.lookupType('etcdserverpb.StatusResponse');
const SNAPSHOT = '/etcdserverpb.Maintenance/Snapshot';
const STATUS = '/etcdserverpb.Maintenance/Status';
const HASH_LEN = 32;

interface SnapshotChunk {
  remaining: number;
  blob: Buffer;
  version: string;
}

/** Exported for tests: one SnapshotResponse off the wire. */
export function decodeSnapshotResponse(buf: Buffer): SnapshotChunk {
  const m = SnapshotResponse.toObject(SnapshotResponse.decode(buf), { longs: Number, defaults: true }) as {
    remaining_bytes: number;
    blob: Uint8Array;
    version: string;
  };
  const blob = Buffer.isBuffer(m.blob) ? m.blob : Buffer.from(m.blob.buffer, m.blob.byteOffset, m.blob.byteLength);
  return { remaining: m.remaining_bytes, blob, version: m.version };
}

/** A SnapshotResponse whose blob is left in the pieces the message arrived in. */
export interface SnapshotPieces {
  remaining: number;
  blob: Buffer[];
  blobBytes: number;
  version: string;
}

const BLOB_TAG = (3 << 3) | 2; // field 3, length-delimited

/**
 * Exported for tests: one SnapshotResponse given as pieces (a 32 KiB message arrives as 2–3 HTTP/2
 * frames), its blob not joined: the fields before it are found in the first piece with protobufjs's
 * Reader, and those before and after the blob (the header, remaining_bytes; the version, etcd ≥
 * 3.6) decoded on their own, as the same message would be. Joining the pieces (one copy of every
 * byte) is left for the odd message whose first piece ends before its blob starts.
 */
export function decodeSnapshotPieces(parts: Buffer[]): SnapshotPieces {
  const whole = (m: SnapshotChunk): SnapshotPieces => ({ ...m, blob: [m.blob], blobBytes: m.blob.length });
  if (parts.length === 1) return whole(decodeSnapshotResponse(parts[0]));
  const head = parts[0];
  const r = protobuf.Reader.create(head);
  let start = -1;
  let len = 0;
  let fieldAt = 0;
  try {
    while (r.pos < head.length) {
      fieldAt = r.pos;
      const tag = r.uint32();
      if (tag === BLOB_TAG) {
        len = r.uint32();
        start = r.pos;
        break;
      }
      r.skipType(tag & 7);
    }
  } catch (e) {
    if (!(e instanceof RangeError)) throw e; // the first piece ends inside a field
  }
  if (start < 0) return whole(decodeSnapshotResponse(Buffer.concat(parts)));
  const blob: Buffer[] = [];
  const rest: Buffer[] = [];
  let off = 0; // where this piece starts in the message
  for (const p of parts) {
    const a = Math.max(start - off, 0);
    const b = Math.min(start + len - off, p.length);
    if (a < b) blob.push(p.subarray(a, b));
    if (b < p.length) rest.push(p.subarray(Math.max(b, 0)));
    off += p.length;
  }
  if (off < start + len) throw new RangeError(`SnapshotResponse: the blob runs past the message's end`);
  // The other fields: what came before the blob, then what came after (a later value wins, as in
  // protobuf's merge of one message).
  const before = decodeSnapshotResponse(head.subarray(0, fieldAt));
  const after = rest.length ? decodeSnapshotResponse(Buffer.concat(rest)) : null;
  return {
    remaining: after?.remaining || before.remaining,
    blob,
    blobBytes: len,
    version: after?.version || before.version,
  };
}

export interface EtcdClientTls {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

export interface StreamResult {
  /** Bytes written to the file: the database plus etcd's 32-byte trailing sha256. */
  bytes: number;
  /** Saw every byte written, in order (hand it to the vault's commit). */
  hashed: SnapshotHasher;
  /** The member's server version (Maintenance/Status), e.g. "3.6.16"; null if it did not say. */
  serverVersion: string | null;
  /** The storage version the stream carries (etcd ≥ 3.6), else null. */
  storageVersion: string | null;
  /** The route the stream took (its label). */
  route: string;
}

/** One way to the member's client port; `streamSnapshotToFile` takes the first that gets to gRPC. */
export interface StreamRoute {
  /** For the log: "straight to https://10.0.0.7:2379 (…)", "through an SSH tunnel from m1 to … (…)". */
  label: string;
  /** Opens the byte stream to the member's client port (a TCP socket, an SSH channel). */
  open: () => Promise<Duplex>;
  /** A name in the member's server certificate (the endpoint's host as this route reaches it). */
  serverName: string;
  /** Bounds the TLS and HTTP/2 handshakes on this route (default: `connectMs`). */
  connectMs?: number;
}

export interface StreamOptions {
  /**
   * The ways to the member, tried in order until one gets as far as a gRPC session; a route that
   * fails before that (refused, no answer, a TLS handshake that fails) is reported through
   * `onRouteFailed` and the next is tried. Nothing is written to the file before then.
   */
  routes?: StreamRoute[];
  /** One route, the short way (tests): `connect` and `serverName`. */
  connect?: () => Promise<Duplex>;
  serverName?: string;
  onRouteFailed?: (route: StreamRoute, error: Error) => void;
  /** null: plaintext (an http:// endpoint). */
  tls: EtcdClientTls | null;
  partPath: string;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
  /** Fail when etcd sends nothing for this long (default 60 s). */
  stallMs?: number;
  /** Fail when the connection is not ready in this long (default 15 s). */
  connectMs?: number;
  /**
   * Told, as the file's writes complete, how many of its first bytes are written (for a reader
   * following the file: the status walk). Never told more than once per message.
   */
  onWritten?: (bytes: number) => void;
}

/** A gRPC session over one route (the route's stream closed if the handshakes fail). */
async function openSession(r: StreamRoute, o: StreamOptions): Promise<ClientHttp2Session> {
  const socket = await r.open();
  if (o.signal?.aborted) {
    socket.destroy();
    throw o.signal.reason ?? new Error('cancelled');
  }
  // 4 MiB HTTP/2 window: enough to keep a long-distance link busy, small enough to bound memory.
  return grpcSession(socket, {
    tls: o.tls,
    serverName: r.serverName,
    connectMs: r.connectMs ?? o.connectMs ?? 15_000,
    windowBytes: 4 << 20,
  });
}

/**
 * Read etcd's snapshot stream into `partPath` (created; it must not exist). On any failure or
 * cancel the file is removed. The trailing hash is checked here, so a returned result is a whole
 * snapshot as etcd sent it.
 */
export async function streamSnapshotToFile(o: StreamOptions): Promise<StreamResult> {
  const out = createWriteStream(o.partPath, { flags: 'wx', mode: 0o600, highWaterMark: 1 << 20 });
  let writeError: Error | undefined;
  let call: ReturnType<typeof serverStream> | undefined;
  out.on('error', (e) => {
    writeError ??= e;
    call?.cancel(e);
  });
  const opened = once(out, 'open');
  const onAbort = () => call?.cancel(o.signal!.reason instanceof Error ? o.signal!.reason : new Error('cancelled'));
  o.signal?.addEventListener('abort', onAbort, { once: true });
  let session: ClientHttp2Session | undefined;
  try {
    await opened;
    const routes = o.routes ?? [{ label: 'the connection', open: o.connect!, serverName: o.serverName! }];
    let route: StreamRoute | undefined;
    for (const [i, r] of routes.entries()) {
      try {
        session = await openSession(r, o);
        route = r;
        break;
      } catch (e) {
        if (o.signal?.aborted || i === routes.length - 1) throw e;
        o.onRouteFailed?.(r, e as Error);
      }
    }
    if (!session || !route) throw new Error('No route to the member was given');
    const statusP = unary(session, STATUS, Buffer.alloc(0), 10_000)
      .then((b) => (StatusResponse.toObject(StatusResponse.decode(b)) as { version?: string }).version || null)
      .catch(() => null);
    if (o.signal?.aborted) throw o.signal.reason ?? new Error('cancelled');
    call = serverStream(session, SNAPSHOT, Buffer.alloc(0));
    const hashed = new SnapshotHasher();
    let total = -1;
    let bytes = 0;
    let reported = 0;
    let storageVersion: string | null = null;
    const stallMs = o.stallMs ?? 60_000;
    const onWritten = o.onWritten;
    // re-armed per message with refresh() (cheaper than a new timer 18,000 times per 500 MB)
    const stall = setTimeout(
      () => call?.cancel(new Error(`Snapshot stream stalled: etcd sent nothing for ${stallMs} ms`)),
      stallMs,
    );
    try {
      // One message at a time: the next is read only after the file took this one (backpressure).
      for await (const raw of call.messages) {
        stall.refresh();
        const m = decodeSnapshotPieces(raw);
        if (total < 0) total = bytes + m.remaining + m.blobBytes;
        if (m.version) storageVersion = m.version;
        if (bytes + m.blobBytes > total + HASH_LEN)
          throw new SnapshotInvalid(`etcd sent more than the ${total} bytes it announced, plus its hash`);
        let behind = false;
        const upto = bytes + m.blobBytes;
        const last = m.blob.length - 1;
        for (let i = 0; i <= last; i++) {
          const piece = m.blob[i];
          hashed.update(piece);
          // a write's callback runs once it is in the file (and those before it: writes are in order)
          const ok = i === last && onWritten ? out.write(piece, (e) => e || onWritten(upto)) : out.write(piece);
          behind = !ok || behind;
        }
        bytes = upto;
        if (behind) await once(out, 'drain'); // rejects on a write error
        // a progress event per MiB, not per 32 KiB message (each one updates the job record)
        if (bytes - reported >= 1 << 20 || bytes >= total) {
          reported = bytes;
          o.onProgress?.(Math.min(bytes, total), total);
        }
      }
    } finally {
      clearTimeout(stall);
    }
    if (writeError) throw writeError;
    out.end();
    await once(out, 'finish');
    if (total < 0) throw new SnapshotInvalid('etcd sent an empty snapshot stream');
    if (bytes !== total + HASH_LEN)
      throw new SnapshotInvalid(
        `Snapshot stream cut short: ${bytes} bytes received, ${total} of database and ${HASH_LEN} of hash expected`,
      );
    if (!hashed.digest().bodyMatchesTail)
      throw new SnapshotInvalid("Snapshot stream corrupt: the data does not match etcd's trailing sha256");
    return { bytes, hashed, serverVersion: await statusP, storageVersion, route: route.label };
  } catch (e) {
    // decided before destroying the file stream (which may report its own, later error)
    const err = writeError && !(e instanceof SnapshotInvalid) ? writeError : e;
    out.destroy();
    await fs.rm(o.partPath, { force: true });
    if (o.signal?.aborted) throw o.signal.reason ?? err;
    throw err;
  } finally {
    o.signal?.removeEventListener('abort', onAbort);
    session?.destroy();
  }
}

export interface MemberStreamOptions extends Omit<StreamOptions, 'connect' | 'serverName' | 'routes'> {
  pool: SshPool;
  /** The node whose SSH connection carries the stream when the desktop cannot reach the member. */
  target: SshTarget;
  /** The member's client URL as the node sees it: https://127.0.0.1:2379, https://10.0.0.7:2379. */
  endpoint: string;
  /**
   * The member's client URL as the desktop may reach it (never a loopback one: that would be the
   * desktop itself), tried first; null or absent: through SSH only.
   */
  direct?: string | null;
  /** How long the straight TCP connect may take before the SSH tunnel is used (default 2 s). */
  directConnectMs?: number;
  log?: Log;
}

/** Members the desktop could not reach straight, by host:port, until when (ms since epoch). */
const unreachable = new Map<string, number>();
/** How long a member the desktop could not reach is not tried straight again. */
const UNREACHABLE_FOR_MS = 10 * 60_000;

/** Exported for tests: forget which members the desktop could not reach. */
export function forgetUnreachableMembers(): void {
  unreachable.clear();
}

/**
 * The snapshot of the member at `endpoint`: straight from the desktop to the member's client port
 * when `direct` is given and answers, else through an SSH tunnel opened on `target` (and a member
 * that did not answer straight is not tried straight again for 10 minutes, so a firewall that
 * drops the port costs one wait, not one per snapshot). The connections are closed whatever
 * happens. Errors say whether the tunnel could not be opened (`TunnelRefused`), so a caller can
 * fall back to another way.
 */
export async function streamSnapshotFromMember(o: MemberStreamOptions): Promise<StreamResult> {
  const routes: StreamRoute[] = [];
  const opened: Duplex[] = [];
  const direct = o.direct ? hostPort(o.direct) : null;
  const directKey = direct && `${direct.host}:${direct.port}`;
  if (direct && directKey && (unreachable.get(directKey) ?? 0) <= Date.now()) {
    const connectMs = o.directConnectMs ?? 2000;
    routes.push({
      label: `straight to ${o.direct} (TLS with the node's etcd client certificate, no SSH tunnel)`,
      serverName: direct.host,
      connectMs: Math.max(connectMs, 5000),
      open: async () => {
        const s = await tcpConnect(direct.host, direct.port, connectMs, o.signal);
        opened.push(s);
        return s;
      },
    });
  } else if (directKey) o.log?.('info', `${o.direct} did not answer this computer lately: through SSH`);
  const tunnel = hostPort(o.endpoint);
  routes.push({
    label: `through an SSH tunnel from ${o.target.label} to ${tunnel.host}:${tunnel.port} (TLS to etcd inside it)`,
    serverName: tunnel.host,
    open: async () => {
      try {
        const channel = await o.pool.forward(o.target, tunnel.host, tunnel.port, o.signal);
        opened.push(channel);
        return channel;
      } catch (e) {
        if (e instanceof SshError && e.code === 'FORWARD_REFUSED') throw new TunnelRefused(e.message, { cause: e });
        throw e;
      }
    },
  });
  try {
    const r = await streamSnapshotToFile({
      ...o,
      routes,
      tls: new URL(o.endpoint).protocol === 'http:' ? null : o.tls,
      onRouteFailed: (route, e) => {
        if (directKey) unreachable.set(directKey, Date.now() + UNREACHABLE_FOR_MS);
        o.log?.('info', `could not stream ${route.label.split(' (')[0]}: ${e.message.split('\n')[0]}; trying SSH`);
      },
    });
    if (directKey && r.route === routes[0].label) unreachable.delete(directKey);
    o.log?.('info', `snapshot streamed ${r.route}`);
    return r;
  } finally {
    for (const s of opened) s.destroy();
  }
}

function hostPort(url: string): { host: string; port: number } {
  const u = new URL(url);
  return { host: u.hostname.replace(/^\[(.*)\]$/, '$1'), port: Number(u.port || 2379) };
}

/** A TCP connection, or an error once `ms` pass without one (a firewall that drops the port). */
function tcpConnect(host: string, port: number, ms: number, signal?: AbortSignal): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = netConnect({ host, port });
    const done = (e?: Error) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      s.removeListener('error', done);
      if (!e) {
        // From here TLS reads the socket and reports its failures (the stream fails on them);
        // an error the raw socket emits besides must not be an uncaught one.
        s.on('error', () => undefined);
        return resolve(s);
      }
      s.destroy();
      reject(e);
    };
    const onAbort = () => done(signal!.reason instanceof Error ? signal!.reason : new Error('cancelled'));
    const timer = setTimeout(() => done(new Error(`no answer from ${host}:${port} in ${ms} ms`)), ms);
    signal?.addEventListener('abort', onAbort, { once: true });
    s.once('error', done);
    s.once('connect', () => done());
  });
}

/** The SSH server would not forward to the member (AllowTcpForwarding no, or unreachable). */
export class TunnelRefused extends Error {
  readonly code = 'FORWARD_REFUSED';
  constructor(message: string, opts?: ErrorOptions) {
    super(message, opts);
    this.name = 'TunnelRefused';
  }
}
