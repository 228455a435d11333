// Application-wide state: what main told us about itself (app.info), the transport and its
// connection state, and the current route (kept in location.hash so a reload stays on the page).
import type { AppInfo } from '@shared/domain';
import { api, type ConnectionState } from '../api';

export const CLUSTER_TABS = ['nodes', 'health', 'external', 'snapshots', 'states', 'jobs'] as const;
export type ClusterTab = (typeof CLUSTER_TABS)[number];

/** A cluster page shows one tab; the jobs tab may show one job (`#/cluster/<id>/jobs/<jobId>`). */
export type Route =
  | { view: 'clusters' }
  | { view: 'cluster'; clusterId: string; tab?: ClusterTab; jobId?: string }
  | { view: 'new-cluster' }
  | { view: 'settings' };
export type LinkState = ConnectionState | 'ipc';

function isTab(s: string | undefined): s is ClusterTab {
  return (CLUSTER_TABS as readonly string[]).includes(s ?? '');
}

export function parseRoute(hash: string): Route {
  const parts = hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  if (parts[0] === 'cluster' && parts[1]) {
    const tab = isTab(parts[2]) ? parts[2] : undefined;
    const jobId = tab === 'jobs' && parts[3] ? parts[3] : undefined;
    return { view: 'cluster', clusterId: parts[1], ...(tab ? { tab } : {}), ...(jobId ? { jobId } : {}) };
  }
  if (parts[0] === 'settings') return { view: 'settings' };
  if (parts[0] === 'new-cluster') return { view: 'new-cluster' };
  return { view: 'clusters' };
}

export function routeHash(r: Route): string {
  if (r.view === 'cluster') {
    let h = `#/cluster/${encodeURIComponent(r.clusterId)}`;
    if (r.tab && r.tab !== 'nodes') h += `/${r.tab}`;
    if (r.tab === 'jobs' && r.jobId) h += `/${encodeURIComponent(r.jobId)}`;
    return h;
  }
  if (r.view === 'settings') return '#/settings';
  if (r.view === 'new-cluster') return '#/new-cluster';
  return '#/';
}

export class AppController {
  info = $state.raw<AppInfo | null>(null);
  infoError = $state<string | null>(null);
  readonly transport = api.transport;
  link = $state<LinkState>(api.ws ? api.ws.state : 'ipc');
  route = $state<Route>(parseRoute(typeof location === 'undefined' ? '' : location.hash));
  problemsDismissed = $state(false);
  /** Called after the WebSocket comes back, so views can reload what they may have missed. */
  private reconnectHooks: (() => void)[] = [];

  problems = $derived(this.info?.problems ?? []);

  constructor() {
    if (api.ws) {
      let everOpen = api.ws.state === 'open';
      api.ws.onState = (s) => {
        this.link = s;
        if (s !== 'open') return;
        if (everOpen) for (const h of this.reconnectHooks) h();
        everOpen = true;
      };
    }
    if (typeof window !== 'undefined') {
      window.addEventListener('hashchange', () => {
        this.route = parseRoute(location.hash);
      });
    }
  }

  onReconnect(hook: () => void): void {
    this.reconnectHooks.push(hook);
  }

  async loadInfo(): Promise<void> {
    try {
      this.info = await api.invoke('app.info', {});
      this.infoError = null;
    } catch (e) {
      this.infoError = (e as Error).message;
    }
  }

  go(route: Route): void {
    this.route = route;
    const hash = routeHash(route);
    if (typeof location !== 'undefined' && location.hash !== hash) history.pushState(null, '', hash);
  }
}
