// Application-wide state: what main told us about itself (app.info), the transport and its
// connection state, and the current route (kept in location.hash so a reload stays on the page).
import type { AppInfo } from '@shared/domain';
import { api, type ConnectionState } from '../api';

export type Route = { view: 'clusters' } | { view: 'cluster'; clusterId: string } | { view: 'settings' };
export type LinkState = ConnectionState | 'ipc';

export function parseRoute(hash: string): Route {
  const parts = hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  if (parts[0] === 'cluster' && parts[1]) return { view: 'cluster', clusterId: parts[1] };
  if (parts[0] === 'settings') return { view: 'settings' };
  return { view: 'clusters' };
}

export function routeHash(r: Route): string {
  if (r.view === 'cluster') return `#/cluster/${encodeURIComponent(r.clusterId)}`;
  if (r.view === 'settings') return '#/settings';
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
