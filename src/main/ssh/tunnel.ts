// A local TCP port that leads to `host:port` as a node sees it, through that node's pooled SSH
// connection (like `ssh -L 127.0.0.1:0:host:port`). Each accepted connection gets its own
// direct-tcpip channel; bytes are piped both ways with backpressure. For clients that can only
// dial an address (gRPC to etcd's client port). Listens on loopback only, on a port the OS picks;
// `close()` stops listening and ends every piped connection, deterministically.
import { createServer, type Server, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { SshError } from './types';

/** Opens one forwarded channel (SshPool.forward bound to a node and a destination). */
export type ForwardFn = (signal?: AbortSignal) => Promise<Duplex>;

export interface Tunnel {
  /** 127.0.0.1 */
  readonly host: string;
  readonly port: number;
  /** Connections piped so far (accepted and forwarded). */
  readonly opened: number;
  /** The first forwarding failure, if any (e.g. the server refused: AllowTcpForwarding no). */
  readonly error: Error | undefined;
  /** Stop listening, end every piped connection; resolves when all sockets and channels are closed. */
  close(): Promise<void>;
}

export async function openTunnel(forward: ForwardFn, opts: { onError?: (e: Error) => void } = {}): Promise<Tunnel> {
  const live = new Set<{ sock: Socket; chan?: Duplex }>();
  const ac = new AbortController();
  let opened = 0;
  let firstError: Error | undefined;
  let closed = false;
  const server: Server = createServer({ noDelay: true }, (sock) => {
    const entry: { sock: Socket; chan?: Duplex } = { sock };
    live.add(entry);
    sock.once('close', () => {
      if (entry.chan) endChannel(entry.chan);
      live.delete(entry);
    });
    sock.on('error', () => undefined); // the close handler cleans up
    // Hold the client's bytes until the channel is there.
    sock.pause();
    forward(ac.signal).then(
      (chan) => {
        if (closed || sock.destroyed) {
          endChannel(chan);
          return;
        }
        opened++;
        entry.chan = chan;
        chan.on('error', () => sock.destroy());
        chan.once('close', () => sock.destroy());
        sock.pipe(chan);
        chan.pipe(sock);
        sock.resume();
      },
      (e: Error) => {
        firstError ??= e;
        opts.onError?.(e);
        sock.destroy();
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as { port: number }).port;
  return {
    host: '127.0.0.1',
    port,
    get opened() {
      return opened;
    },
    get error() {
      return firstError;
    },
    async close() {
      if (closed) return;
      closed = true;
      ac.abort(new SshError('CANCELLED', 'Tunnel closed'));
      const stopped = new Promise<void>((r) => server.close(() => r()));
      // Sockets close at once; a channel closes when the server answers (bounded: a dead
      // connection never does, and the pool fails it anyway).
      const closing = (s: Duplex) =>
        s.closed
          ? Promise.resolve()
          : new Promise<void>((r) => {
              const t = setTimeout(r, 2000);
              s.once('close', () => {
                clearTimeout(t);
                r();
              });
            });
      const ends = [...live].flatMap(({ sock, chan }) => {
        const waits = [closing(sock), ...(chan ? [closing(chan)] : [])];
        sock.destroy();
        if (chan) endChannel(chan);
        return waits;
      });
      await Promise.all([stopped, ...ends]);
    },
  };
}

/**
 * Close a forwarded channel and drop what it still holds: ssh2 reports a channel closed only once
 * its readable side has ended, which never happens while unread data sits in it (and the pool
 * keeps the connection leased until then).
 */
function endChannel(chan: Duplex): void {
  chan.unpipe(); // first: a pipe's own cleanup would pause it again after our resume
  chan.destroy();
  chan.resume();
}
