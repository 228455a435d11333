// Terminal sessions (local pty and SSH shells) with flow control, after VS Code's
// terminalProcess.ts: output is batched for a few ms, and when the renderer has more than
// HIGH_WATER characters it has not acknowledged, the source is paused until it catches up. So a
// `yes` or `cat /dev/urandom | base64` on a node cannot flood the UI or grow memory without bound.
import { StringDecoder } from 'node:string_decoder';
import { randomUUID } from 'node:crypto';
import { ApiError } from '../api/errors';
import type { EventHub } from '../api/dispatch';

/** What a terminal needs from its process: a pty locally, an ssh2 shell channel remotely. */
export interface TerminalSource {
  write(data: string): void;
  resize(cols: number, rows: number): void;
  pause(): void;
  resume(): void;
  kill(): void;
  /** Register output/exit callbacks (called once by the manager). */
  start(onData: (data: string | Buffer) => void, onExit: (code: number | null, message?: string) => void): void;
}

export const FLOW = {
  /** Pause the source above this many unacknowledged characters. */
  HIGH_WATER: 100_000,
  /** Resume once the renderer is back below this. */
  LOW_WATER: 10_000,
  /** Coalesce output for this long before sending an event. */
  BATCH_MS: 5,
  /** ...unless the batch is already this big. */
  BATCH_MAX: 64 * 1024,
};

interface Session {
  id: string;
  title: string;
  source: TerminalSource;
  decoder: StringDecoder;
  pending: string;
  timer: NodeJS.Timeout | null;
  unacked: number;
  paused: boolean;
  closed: boolean;
}

export class TerminalManager {
  private sessions = new Map<string, Session>();

  constructor(private readonly events: EventHub) {}

  /** Take ownership of a started source and stream it to the renderer. */
  attach(title: string, source: TerminalSource): { id: string; title: string } {
    const id = randomUUID().replace(/-/g, '').slice(0, 16);
    const s: Session = {
      id,
      title,
      source,
      decoder: new StringDecoder('utf8'),
      pending: '',
      timer: null,
      unacked: 0,
      paused: false,
      closed: false,
    };
    this.sessions.set(id, s);
    source.start(
      (data) => this.onData(s, data),
      (code, message) => this.onExit(s, code, message),
    );
    return { id, title };
  }

  write(id: string, data: string): void {
    this.get(id).source.write(data);
  }

  resize(id: string, cols: number, rows: number): void {
    this.get(id).source.resize(cols, rows);
  }

  ack(id: string, chars: number): void {
    const s = this.sessions.get(id);
    if (!s) return; // acks can race a close; harmless
    s.unacked = Math.max(0, s.unacked - chars);
    if (s.paused && s.unacked < FLOW.LOW_WATER) {
      s.paused = false;
      s.source.resume();
    }
  }

  close(id: string): void {
    const s = this.sessions.get(id);
    if (!s) return;
    s.closed = true;
    this.sessions.delete(id);
    if (s.timer) clearTimeout(s.timer);
    s.source.kill();
  }

  closeAll(): void {
    for (const id of [...this.sessions.keys()]) this.close(id);
  }

  /** For tests and diagnostics. */
  stats(id: string): { unacked: number; paused: boolean } | undefined {
    const s = this.sessions.get(id);
    return s && { unacked: s.unacked, paused: s.paused };
  }

  list(): { id: string; title: string }[] {
    return [...this.sessions.values()].map((s) => ({ id: s.id, title: s.title }));
  }

  private get(id: string): Session {
    const s = this.sessions.get(id);
    if (!s) throw new ApiError('NOT_FOUND', 'This terminal is closed');
    return s;
  }

  private onData(s: Session, data: string | Buffer): void {
    if (s.closed) return;
    // Buffers are decoded with a StringDecoder so a multi-byte character split across two
    // chunks is never turned into replacement characters.
    s.pending += typeof data === 'string' ? data : s.decoder.write(data);
    if (s.pending.length >= FLOW.BATCH_MAX) this.flush(s);
    else if (!s.timer) s.timer = setTimeout(() => this.flush(s), FLOW.BATCH_MS);
  }

  private flush(s: Session): void {
    if (s.timer) {
      clearTimeout(s.timer);
      s.timer = null;
    }
    if (!s.pending || s.closed) return;
    const data = s.pending;
    s.pending = '';
    s.unacked += data.length;
    this.events.emit('terminal.data', { id: s.id, data });
    if (!s.paused && s.unacked > FLOW.HIGH_WATER) {
      s.paused = true;
      s.source.pause();
    }
  }

  private onExit(s: Session, code: number | null, message?: string): void {
    if (s.closed) return;
    s.pending += s.decoder.end();
    this.flush(s);
    s.closed = true;
    this.sessions.delete(s.id);
    this.events.emit('terminal.exit', message ? { id: s.id, code, message } : { id: s.id, code });
  }
}
