// The job a piece of code runs in, without passing it down every call: the runner runs each job
// inside an AsyncLocalStorage scope, and code deep below a step (e.g. the helper that hands out a
// node's transfer folder) registers work that must happen when the job ends, whatever the
// outcome (succeeded, failed, cancelled): removing the copies it put on nodes. After a crash
// nothing runs at all; such leftovers are for the next initialize (see etcd/transfers.ts).
import { AsyncLocalStorage } from 'node:async_hooks';
import type { StepContext } from './types';

export type EndTask = (log: StepContext['log']) => Promise<void>;

export interface JobScope {
  jobId: string;
  /** Tasks by key (one per key: a node's transfer folder is cleaned once, however often used). */
  atEnd: Map<string, EndTask>;
  /** Set once the end tasks run: later registrations are refused. */
  closed: boolean;
}

const storage = new AsyncLocalStorage<JobScope>();

export function newJobScope(jobId: string): JobScope {
  return { jobId, atEnd: new Map(), closed: false };
}

export function runInJobScope<T>(scope: JobScope, fn: () => Promise<T>): Promise<T> {
  return storage.run(scope, fn);
}

/** The job the caller runs in, if any. */
export function currentJob(): JobScope | undefined {
  return storage.getStore();
}

/**
 * Run `task` when the current job ends (any outcome), once per `key`. Returns false outside a
 * job (or once its end tasks have started): the caller then cleans up by itself or not at all.
 */
export function atJobEnd(key: string, task: EndTask): boolean {
  const s = storage.getStore();
  if (!s || s.closed) return false;
  if (!s.atEnd.has(key)) s.atEnd.set(key, task);
  return true;
}
