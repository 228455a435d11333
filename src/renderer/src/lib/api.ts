// The renderer's only way to main. Picks the transport: the Electron preload bridge when present,
// otherwise the headless web mode's WebSocket (same origin; the session cookie set by the server plus
// the session key this page keeps in its own origin's storage, see webSessionKey).
import type { Api, ApiErrorShape, EventName, Events, Input, MethodName, Output, WireMessage } from '@shared/contract';

/** A failed call. `code` is stable (INVALID_INPUT, HOST_KEY_UNKNOWN, …); `details` may carry field issues. */
export class ApiCallError extends Error implements ApiErrorShape {
  constructor(
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'ApiCallError';
  }
  /** Field-level messages from INVALID_INPUT, keyed by dotted path. */
  fieldIssues(): Record<string, string> {
    const out: Record<string, string> = {};
    const issues = (this.details as { issues?: { path: (string | number)[]; message: string }[] } | undefined)?.issues;
    for (const i of issues ?? []) out[i.path.join('.')] ??= i.message;
    return out;
  }
}

type Reply = { ok: true; value: unknown } | { ok: false; error: ApiErrorShape };
interface Bridge {
  invoke(method: string, input: unknown): Promise<Reply>;
  on(event: string, listener: (payload: unknown) => void): () => void;
}

declare global {
  interface Window {
    kesBridge?: Bridge;
  }
}

function unwrap(r: Reply): unknown {
  if (r.ok) return r.value;
  throw new ApiCallError(r.error.code, r.error.message, r.error.details);
}

function electronApi(bridge: Bridge): Api {
  return {
    invoke: async (method, input) => unwrap(await bridge.invoke(method, input)) as never,
    on: (event, listener) => bridge.on(event, listener as (p: unknown) => void),
  };
}

export type ConnectionState = 'connecting' | 'open' | 'closed';

/** WebSocket transport with reconnect; calls made while disconnected wait for the socket. */
export class WebSocketApi implements Api {
  private ws: WebSocket | null = null;
  private seq = 0;
  private pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>();
  private listeners = new Map<string, Set<(p: unknown) => void>>();
  private opened: Promise<void> = Promise.resolve();
  private retry = 0;
  state: ConnectionState = 'connecting';
  onState: ((s: ConnectionState) => void) | null = null;

  /** `url` may be a function: it is asked again on every reconnect. */
  constructor(private readonly url: string | (() => string)) {
    this.connect();
  }

  private connect(): void {
    this.setState('connecting');
    const ws = new WebSocket(typeof this.url === 'function' ? this.url() : this.url);
    this.ws = ws;
    this.opened = new Promise<void>((resolve, reject) => {
      ws.onopen = () => {
        this.retry = 0;
        this.setState('open');
        resolve();
      };
      ws.onerror = () => reject(new ApiCallError('DISCONNECTED', 'Cannot reach the Kube Etcd Switch server'));
    });
    this.opened.catch(() => undefined);
    ws.onmessage = (ev) => this.onMessage(String(ev.data));
    ws.onclose = () => {
      this.setState('closed');
      for (const [, p] of this.pending) p.reject(new ApiCallError('DISCONNECTED', 'Connection to the server was lost'));
      this.pending.clear();
      // Back off up to 5 s; the server may be restarting.
      const delay = Math.min(5000, 250 * 2 ** this.retry++);
      setTimeout(() => this.connect(), delay);
    };
  }

  private setState(s: ConnectionState): void {
    this.state = s;
    this.onState?.(s);
  }

  private onMessage(text: string): void {
    let msg: WireMessage;
    try {
      msg = JSON.parse(text) as WireMessage;
    } catch {
      return;
    }
    if (msg.t === 'evt') {
      for (const l of this.listeners.get(msg.event) ?? []) l(msg.payload);
    } else if (msg.t === 'res') {
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      try {
        p.resolve(unwrap(msg));
      } catch (e) {
        p.reject(e);
      }
    }
  }

  async invoke<M extends MethodName>(method: M, input: Input<M>): Promise<Output<M>> {
    await this.opened;
    const id = ++this.seq;
    return new Promise<Output<M>>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.ws!.send(JSON.stringify({ t: 'req', id, method, input }));
    });
  }

  on<E extends EventName>(event: E, listener: (payload: Events[E]) => void): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener as (p: unknown) => void);
    return () => set.delete(listener as (p: unknown) => void);
  }
}

const KEY_STORE = 'kes.webKey';
let memoryKey = '';

/**
 * Web mode's second secret. The server hands it over once, in the fragment of the redirect that
 * follows the one-time token (`/#kes-key=…`; fragments never leave the browser). It is kept in
 * localStorage, which belongs to this origin only — scheme, host AND port — unlike cookies, which
 * every web server on 127.0.0.1 receives. Read on every (re)connect, so a newer link opened in
 * another tab of this origin takes over.
 */
function webSessionKey(): string {
  const m = /^#kes-key=([A-Za-z0-9_-]{16,256})$/.exec(location.hash);
  if (m) {
    // Drop it from the address bar (and the history entry) before the router reads the hash.
    history.replaceState(history.state, '', location.pathname + location.search);
    memoryKey = m[1];
    try {
      localStorage.setItem(KEY_STORE, m[1]);
    } catch {
      /* storage disabled: this page keeps it in memory */
    }
    return m[1];
  }
  try {
    return localStorage.getItem(KEY_STORE) ?? memoryKey;
  } catch {
    return memoryKey;
  }
}

function createApi(): Api & { transport: 'electron' | 'web'; ws?: WebSocketApi } {
  if (typeof window !== 'undefined' && window.kesBridge)
    return { ...electronApi(window.kesBridge), transport: 'electron' };
  const base = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/api`;
  webSessionKey(); // take the key out of the address bar now, before anything reads location.hash
  const ws = new WebSocketApi(() => `${base}?key=${encodeURIComponent(webSessionKey())}`);
  return { invoke: ws.invoke.bind(ws), on: ws.on.bind(ws), transport: 'web', ws };
}

export const api = createApi();
