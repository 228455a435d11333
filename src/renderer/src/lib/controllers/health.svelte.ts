// Live health of one cluster: polls `cluster.health` every few seconds while started and the page
// is visible; stops when hidden (visibilitychange) or stopped (the view unmounts). One request at
// a time: the next poll is scheduled only after the previous one answered.
import type { HealthReport } from '@shared/health';
import { api } from '../api';
import { errorMessage } from '../errors';

export const HEALTH_EVERY_MS = 5000;

export class HealthPoller {
  report = $state.raw<HealthReport | null>(null);
  error = $state<string | null>(null);
  /** A request is in flight. */
  loading = $state(false);
  /** When the last answer (report or error) arrived. */
  lastAt = $state<number | null>(null);
  /** Polling is on (started and the page visible). */
  active = $state(false);

  /** Namespaces chosen in this view (sent with each request; the app remembers them per cluster). */
  namespaces = $state.raw<string[] | null>(null);

  private started = false;
  private again = false;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private inFlight = false;

  constructor(
    private readonly clusterId: string,
    private readonly onReport: (r: HealthReport) => void = () => undefined,
    private readonly everyMs = HEALTH_EVERY_MS,
  ) {}

  private readonly onVisibility = () => {
    if (document.hidden) this.pause();
    else if (this.started) void this.tick();
  };

  start(): void {
    if (this.started) return;
    this.started = true;
    document.addEventListener('visibilitychange', this.onVisibility);
    void this.tick();
  }

  stop(): void {
    this.started = false;
    document.removeEventListener('visibilitychange', this.onVisibility);
    this.pause();
  }

  private pause(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.active = false;
  }

  /** Show the workloads of these namespaces from now on (asks at once, or right after the request in flight). */
  setNamespaces(namespaces: string[]): Promise<void> {
    this.namespaces = namespaces.filter((n, i) => namespaces.indexOf(n) === i);
    if (this.inFlight) {
      this.again = true;
      return Promise.resolve();
    }
    return this.tick();
  }

  /** Ask now (the Refresh button); the regular schedule continues from this answer. */
  refresh(): Promise<void> {
    return this.tick();
  }

  private async tick(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (!this.started || document.hidden || this.inFlight) return;
    this.active = true;
    this.inFlight = true;
    this.loading = true;
    try {
      const namespaces = this.namespaces;
      const r = await api.invoke(
        'cluster.health',
        namespaces ? { clusterId: this.clusterId, namespaces } : { clusterId: this.clusterId },
      );
      if (!this.started) return;
      this.report = r;
      this.error = null;
      this.onReport(r);
    } catch (e) {
      if (this.started) this.error = errorMessage(e);
    } finally {
      this.inFlight = false;
      this.loading = false;
      this.lastAt = Date.now();
      const delay = this.again ? 0 : this.everyMs;
      this.again = false;
      if (this.started && !document.hidden) this.timer = setTimeout(() => void this.tick(), delay);
      else this.active = false;
    }
  }
}
