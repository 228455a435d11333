// All controllers of the renderer, created once at start and handed to components by context.
import { getContext, setContext } from 'svelte';
import { AppController } from './app.svelte';
import { ClustersController } from './clusters.svelte';
import { HostKeyController } from './hostkeys.svelte';
import { JobsController } from './jobs.svelte';
import { NoticesController } from './notices.svelte';
import { SettingsController } from './settings.svelte';
import { TerminalsController } from './terminals.svelte';

export class RootController {
  readonly app = new AppController();
  readonly notices = new NoticesController();
  readonly hostKeys = new HostKeyController();
  readonly clusters = new ClustersController(this.hostKeys);
  readonly terminals = new TerminalsController(this.hostKeys);
  readonly settings = new SettingsController();
  readonly jobs = new JobsController();

  constructor() {
    // The node (of the same cluster) a refused host key belongs to; prefer the node itself.
    this.hostKeys.findNode = (clusterId, host, port, preferId) => {
      const bare = (a: string) => a.toLowerCase().replace(/^\[|\]$/g, '');
      const matches = (this.clusters.byId(clusterId)?.nodes ?? []).filter(
        (n) => bare(n.address) === bare(host) && n.port === port,
      );
      return matches.find((n) => n.id === preferId) ?? matches[0];
    };
  }

  async start(): Promise<void> {
    this.app.onReconnect(() => void this.refresh());
    await this.refresh();
  }

  /** (Re)load everything the views show; after a reconnect events may have been missed. */
  async refresh(): Promise<void> {
    await Promise.all([
      this.app.loadInfo(),
      this.clusters.load(),
      this.settings.load(),
      this.hostKeys.loadTrusted().catch(() => undefined),
    ]);
  }
}

export function createRoot(): RootController {
  return new RootController();
}

const KEY = Symbol('kes-root');

export function setRoot(root: RootController): void {
  setContext(KEY, root);
}

export function getRoot(): RootController {
  const root = getContext<RootController | undefined>(KEY);
  if (!root) throw new Error('RootController missing from context');
  return root;
}
