// Small helpers around ApiCallError so components can show a message or a per-field map.
import type { z } from 'zod';
import { ApiCallError } from './api';

/** Thrown when the user dismissed a prompt (host key, confirmation): callers stay quiet. */
export class CancelledByUser extends Error {
  constructor(message = 'Cancelled') {
    super(message);
    this.name = 'CancelledByUser';
  }
}

export function isCancelled(e: unknown): boolean {
  return e instanceof CancelledByUser;
}

export function errorCode(e: unknown): string | undefined {
  return e instanceof ApiCallError ? e.code : undefined;
}

export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}

export type FieldErrors = Record<string, string>;

/** First message per dotted path of a zod error. `strip` removes a prefix such as `node.`. */
export function zodFieldErrors(error: z.ZodError, strip = ''): FieldErrors {
  const out: FieldErrors = {};
  for (const issue of error.issues) {
    let path = issue.path.map(String).join('.');
    if (strip && path.startsWith(strip)) path = path.slice(strip.length);
    out[path || '_'] ??= issue.message;
  }
  return out;
}

/** Field issues of a server INVALID_INPUT, re-keyed without `strip` (e.g. `node.address` → `address`). */
export function serverFieldErrors(e: unknown, strip = ''): FieldErrors | null {
  if (!(e instanceof ApiCallError) || e.code !== 'INVALID_INPUT') return null;
  const out: FieldErrors = {};
  for (const [path, message] of Object.entries(e.fieldIssues())) {
    out[strip && path.startsWith(strip) ? path.slice(strip.length) : path || '_'] ??= message;
  }
  return out;
}
