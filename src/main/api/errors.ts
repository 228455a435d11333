// Errors that cross the API boundary. Anything else thrown by a handler is reported as INTERNAL
// with its message only (no stack, no secrets) so the renderer never crashes on a bad reply.
import type { ApiErrorShape } from '@shared/contract';

export class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** Anything with a string `code` and a message (ApiError, SshError) keeps its code. */
export function toErrorShape(e: unknown): ApiErrorShape {
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    const details = (e as { details?: unknown }).details;
    if (typeof code === 'string' && /^[A-Z_]+$/.test(code)) {
      return details === undefined ? { code, message: e.message } : { code, message: e.message, details };
    }
    return { code: 'INTERNAL', message: e.message };
  }
  return { code: 'INTERNAL', message: String(e) };
}
