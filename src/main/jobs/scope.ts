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
  /** Values never to show (join tokens, certificate keys): masked in every log line and error. */
  secrets: Set<string>;
}

const storage = new AsyncLocalStorage<JobScope>();

export function newJobScope(jobId: string): JobScope {
  return { jobId, atEnd: new Map(), closed: false, secrets: new Set() };
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

/**
 * Mask `value` in everything the current job records from now on (log lines, errors, outcome):
 * kubeadm prints its join command, token and certificate key included, and a script's argument
 * list is logged. Returns false outside a job. Values shorter than 6 characters are refused (they
 * would mask ordinary words).
 */
export function maskInJob(value: string): boolean {
  const s = storage.getStore();
  if (!s || value.length < 6) return false;
  s.secrets.add(value);
  return true;
}

/** What kubeadm's own output carries even when the app did not choose the value. */
const SECRET_FLAGS = /(--(?:token|certificate-key|discovery-token-ca-cert-hash-unsafe)[= ]+)[^\s'"]+/g;
const BOOTSTRAP_TOKEN = /\b[a-z0-9]{6}\.[a-z0-9]{16}\b/g;

/** `text` with the scope's secrets and anything shaped like a join secret replaced by "********". */
export function maskSecrets(text: string, scope: JobScope | undefined): string {
  let out = text;
  if (scope) for (const v of scope.secrets) if (out.includes(v)) out = out.split(v).join('********');
  return out.replace(SECRET_FLAGS, '$1********').replace(BOOTSTRAP_TOKEN, '********');
}
