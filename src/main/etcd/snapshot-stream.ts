// Snapshot by streaming (issue 12): etcd's own snapshot RPC (etcdserverpb.Maintenance/Snapshot,
// what `etcdctl snapshot save` calls) read on the desktop through an SSH-forwarded connection to
// the member's client port, with the node's etcd client certificate held in memory only. Blobs go
// straight into the vault's `.part` file with backpressure (the gRPC stream is not read while the
// file write is behind, so HTTP/2 and SSH flow control hold etcd back), hashed on the way; etcd's
// trailing sha256 is checked before the vault commits. Nothing is written on the node, and the
// snapshot is never held in memory.
//
// gRPC is spoken by ./grpc-h2 (Node's HTTP/2 and TLS right over the SSH channel, no local port);
// the two messages are decoded with protobufjs from an inline descriptor
// (field numbers from go.etcd.io/etcd/api/v3 etcdserverpb/rpc.proto, 3.4–3.6 alike), so no .proto
// file has to ship with the app.
import { createWriteStream, promises as fs } from 'node:fs';
import { once } from 'node:events';
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
}

export interface StreamOptions {
  /** Opens the byte stream to the member's client port (an SSH channel; a TCP socket in tests). */
  connect: () => Promise<Duplex>;
  /** null: plaintext (an http:// endpoint). */
  tls: EtcdClientTls | null;
  /** A name in the member's server certificate (the endpoint's host as the node sees it). */
  serverName: string;
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
  let session: Awaited<ReturnType<typeof grpcSession>> | undefined;
  try {
    await opened;
    const socket = await o.connect();
    if (o.signal?.aborted) {
      socket.destroy();
      throw o.signal.reason ?? new Error('cancelled');
    }
    // 4 MiB HTTP/2 window: enough to keep a long-distance link busy, small enough to bound memory.
    session = await grpcSession(socket, {
      tls: o.tls,
      serverName: o.serverName,
      connectMs: o.connectMs ?? 15_000,
      windowBytes: 4 << 20,
    });
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
    return { bytes, hashed, serverVersion: await statusP, storageVersion };
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

export interface SshStreamOptions extends Omit<StreamOptions, 'connect' | 'serverName'> {
  pool: SshPool;
  /** The node whose SSH connection carries the stream. */
  target: SshTarget;
  /** The member's client URL as the node sees it: https://127.0.0.1:2379, https://10.0.0.7:2379. */
  endpoint: string;
  log?: Log;
}

/**
 * The snapshot of the member at `endpoint`, streamed through an SSH tunnel opened on `target`.
 * The tunnel is closed whatever happens. Errors say whether the tunnel could not be opened
 * (`TunnelRefused`), so a caller can fall back to another way.
 */
export async function streamSnapshotViaSsh(o: SshStreamOptions): Promise<StreamResult> {
  const url = new URL(o.endpoint);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = Number(url.port || 2379);
  let channel: Duplex | undefined;
  const connect = async () => {
    try {
      channel = await o.pool.forward(o.target, host, port, o.signal);
    } catch (e) {
      if (e instanceof SshError && e.code === 'FORWARD_REFUSED') throw new TunnelRefused(e.message, { cause: e });
      throw e;
    }
    o.log?.('info', `tunnel ${o.target.label} → ${host}:${port} (SSH forwarding, TLS to etcd inside it)`);
    return channel;
  };
  try {
    return await streamSnapshotToFile({
      ...o,
      connect,
      serverName: host,
      tls: url.protocol === 'http:' ? null : o.tls,
    });
  } finally {
    channel?.destroy();
  }
}

/** The SSH server would not forward to the member (AllowTcpForwarding no, or unreachable). */
export class TunnelRefused extends Error {
  readonly code = 'FORWARD_REFUSED';
  constructor(message: string, opts?: ErrorOptions) {
    super(message, opts);
    this.name = 'TunnelRefused';
  }
}
