// What the "New cluster" pre-flight reports: one row per node and check, with a fix hint for
// every failure (src/main/kube/preflight.ts builds it).
export type PreflightStatus = 'ok' | 'warn' | 'fail';

export interface PreflightRow {
  node: string;
  check: string;
  status: PreflightStatus;
  detail: string;
  fix?: string;
}

export interface PreflightReport {
  rows: PreflightRow[];
  /** No row failed. */
  ok: boolean;
}
