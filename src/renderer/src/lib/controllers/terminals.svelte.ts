// Terminal tabs: a local console and SSH shells. The xterm instance lives in TerminalView; this
// controller owns the sessions, routes terminal.data/terminal.exit events to the right view and
// keeps data that arrives before a view is attached (the event can overtake the open reply).
import { api } from '../api';
import type { HostKeyController } from './hostkeys.svelte';

export type TabState = 'starting' | 'open' | 'ended' | 'failed';

export interface TermTab {
  key: string;
  /** kubectl: a local console with KUBECONFIG set to a tunnel kubeconfig for `cluster`. */
  kind: 'local' | 'ssh' | 'kubectl';
  title: string;
  /** Server-side session id once opened. */
  id: string | null;
  state: TabState;
  /** Exit code / failure reason, shown in the tab and the screen. */
  note?: string;
  node?: { clusterId: string; nodeId: string; name: string };
  cluster?: { id: string; name: string };
  /** kubectl tabs: where the kubeconfig is (no credentials), once opened. */
  kubeconfig?: string;
}

export interface TerminalSink {
  /** Write `data` to the screen and call `ack` once it is rendered (flow control). */
  data(data: string, ack: () => void): void;
  exit(code: number | null, message?: string): void;
}

/** Data for sessions we are opening, kept until their view attaches (bounded; foreign ids expire). */
const EARLY_LIMIT = 1024 * 1024;
const EARLY_TTL_MS = 10_000;

interface EarlyData {
  chunks: string[];
  size: number;
  /** Characters beyond EARLY_LIMIT: not shown, but acknowledged so main does not stay paused. */
  dropped: number;
  exit?: { code: number | null; message?: string };
  at: number;
}

export class TerminalsController {
  tabs = $state<TermTab[]>([]);
  active = $state<string | null>(null);
  /** Whether the terminal panel is shown. Sessions keep running while it is hidden. */
  open = $state(false);
  private seq = 0;
  // Plumbing, not UI state: plain Maps on purpose.
  // eslint-disable-next-line svelte/prefer-svelte-reactivity
  private sinks = new Map<string, TerminalSink>();
  // eslint-disable-next-line svelte/prefer-svelte-reactivity
  private early = new Map<string, EarlyData>();
  /** Number of open requests in flight; only then can unknown ids be ours. */
  private launching = 0;

  activeTab = $derived(this.tabs.find((t) => t.key === this.active) ?? null);

  constructor(private readonly hostKeys: HostKeyController) {
    api.on('terminal.data', ({ id, data }) => {
      const sink = this.sinks.get(id);
      if (sink) sink.data(data, () => this.ack(id, data.length));
      else
        this.keepEarly(id, (e) => {
          if (e.size + data.length <= EARLY_LIMIT) {
            e.chunks.push(data);
            e.size += data.length;
          } else {
            e.dropped += data.length;
          }
        });
    });
    api.on('terminal.exit', ({ id, code, message }) => {
      const tab = this.tabs.find((t) => t.id === id);
      if (tab) this.markEnded(tab.key, code, message);
      const sink = this.sinks.get(id);
      if (sink) sink.exit(code, message);
      else this.keepEarly(id, (e) => (e.exit = { code, message }));
      this.sinks.delete(id);
    });
  }

  private keepEarly(id: string, update: (e: EarlyData) => void): void {
    const now = Date.now();
    for (const [k, e] of this.early) if (now - e.at > EARLY_TTL_MS) this.early.delete(k);
    // Only sessions we are opening right now can be ours; other windows' terminals are ignored.
    if (this.launching === 0 && !this.early.has(id)) return;
    let e = this.early.get(id);
    if (!e) this.early.set(id, (e = { chunks: [], size: 0, dropped: 0, at: now }));
    update(e);
  }

  private add(tab: Omit<TermTab, 'key' | 'id' | 'state'>): TermTab {
    const t: TermTab = { ...tab, key: `t${++this.seq}`, id: null, state: 'starting' };
    this.tabs.push(t);
    this.active = t.key;
    this.open = true;
    return t;
  }

  openLocal(): void {
    this.add({ kind: 'local', title: 'Local console' });
  }

  /** A new local console with kubectl access to the cluster (tunnel + kubeconfig, removed on close). */
  openKubectl(cluster: { id: string; name: string }): void {
    this.add({ kind: 'kubectl', title: `kubectl: ${cluster.name}`, cluster });
  }

  openSsh(node: { clusterId: string; nodeId: string; name: string }): void {
    this.add({ kind: 'ssh', title: `SSH: ${node.name}`, node });
  }

  tab(key: string): TermTab | undefined {
    return this.tabs.find((t) => t.key === key);
  }

  /**
   * Called by the view once xterm is measured: opens the session with the right size and
   * attaches the sink (flushing anything that arrived early). Returns the session id.
   */
  async launch(key: string, cols: number, rows: number, sink: TerminalSink): Promise<string> {
    const tab = this.tab(key);
    if (!tab) throw new Error('Tab closed');
    this.launching++;
    let id: string;
    try {
      if (tab.kind === 'local') {
        id = (await api.invoke('terminal.openLocal', { cols, rows })).id;
      } else if (tab.kind === 'kubectl') {
        const r = await api.invoke('terminal.openKubectl', { clusterId: tab.cluster!.id, cols, rows });
        id = r.id;
        tab.kubeconfig = r.kubeconfig.path;
      } else {
        const node = tab.node!;
        id = (
          await this.hostKeys.guard(node, () =>
            api.invoke('terminal.openSsh', { clusterId: node.clusterId, nodeId: node.nodeId, cols, rows }),
          )
        ).id;
      }
    } catch (e) {
      const t = this.tab(key);
      if (t) {
        t.state = 'failed';
        t.note = (e as Error).message;
      }
      throw e;
    } finally {
      this.launching--;
    }
    const t = this.tab(key);
    if (!t) {
      // The tab was closed while opening: close the session we just got.
      void api.invoke('terminal.close', { id }).catch(() => undefined);
      this.early.delete(id);
      return id;
    }
    t.id = id;
    t.state = 'open';
    this.sinks.set(id, sink);
    const early = this.early.get(id);
    this.early.delete(id);
    if (early) {
      for (const c of early.chunks) sink.data(c, () => this.ack(id, c.length));
      if (early.dropped) this.ack(id, early.dropped);
      if (early.exit) {
        this.markEnded(key, early.exit.code, early.exit.message);
        sink.exit(early.exit.code, early.exit.message);
        this.sinks.delete(id);
      }
    }
    return id;
  }

  private markEnded(key: string, code: number | null, message?: string): void {
    const t = this.tab(key);
    if (!t || t.state === 'ended') return;
    t.state = 'ended';
    t.note = message ?? (code === null ? 'ended' : `exit ${code}`);
  }

  write(id: string, data: string): void {
    void api.invoke('terminal.write', { id, data }).catch(() => undefined);
  }

  resize(id: string, cols: number, rows: number): void {
    void api.invoke('terminal.resize', { id, cols, rows }).catch(() => undefined);
  }

  /** Flow control: tell main how many characters xterm has rendered. */
  ack(id: string, chars: number): void {
    void api.invoke('terminal.ack', { id, chars }).catch(() => undefined);
  }

  select(key: string): void {
    this.active = key;
    this.open = true;
  }

  close(key: string): void {
    const i = this.tabs.findIndex((t) => t.key === key);
    if (i < 0) return;
    const t = this.tabs[i];
    if (t.id) {
      this.sinks.delete(t.id);
      if (t.state === 'open') void api.invoke('terminal.close', { id: t.id }).catch(() => undefined);
    }
    this.tabs.splice(i, 1);
    if (this.active === key) this.active = this.tabs[Math.min(i, this.tabs.length - 1)]?.key ?? null;
    if (!this.tabs.length) this.open = false;
  }

  toggle(): void {
    this.open = !this.open;
  }
}
