// The one entry point both transports call: look the method up in the contract, validate the
// payload with its schema, run the handler, and turn any failure into an ApiErrorShape.
import { z } from 'zod';
import {
  methods,
  type ApiErrorShape,
  type Events,
  type MethodName,
  type Output,
  type ParsedInput,
} from '@shared/contract';
import { ApiError, toErrorShape } from './errors';

export interface CallContext {
  /** Which transport/client made the call, for logs and for routing events back. */
  client: string;
}

/** Exactly one handler per contract method: a missing or extra key is a compile error. */
export type Handlers = {
  [M in MethodName]: (input: ParsedInput<M>, ctx: CallContext) => Promise<Output<M>> | Output<M>;
};

export type DispatchResult = { ok: true; value: unknown } | { ok: false; error: ApiErrorShape };

export function isMethodName(name: unknown): name is MethodName {
  return typeof name === 'string' && Object.prototype.hasOwnProperty.call(methods, name);
}

export function createDispatcher(handlers: Handlers) {
  return async function dispatch(method: unknown, input: unknown, ctx: CallContext): Promise<DispatchResult> {
    if (!isMethodName(method)) {
      return {
        ok: false,
        error: { code: 'UNKNOWN_METHOD', message: `Unknown method ${JSON.stringify(String(method)).slice(0, 80)}` },
      };
    }
    const schema = methods[method].input as z.ZodType;
    const parsed = schema.safeParse(input ?? {});
    if (!parsed.success) {
      return {
        ok: false,
        error: {
          code: 'INVALID_INPUT',
          message: `Invalid input for ${method}: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(payload)'}: ${i.message}`).join('; ')}`,
          details: { issues: parsed.error.issues.map((i) => ({ path: i.path.map(String), message: i.message })) },
        },
      };
    }
    try {
      const handler = handlers[method] as (i: unknown, c: CallContext) => unknown;
      const value = await handler(parsed.data, ctx);
      return { ok: true, value: value === undefined ? null : value };
    } catch (e) {
      return { ok: false, error: toErrorShape(e) };
    }
  };
}

export type Dispatch = ReturnType<typeof createDispatcher>;

/** Main → renderer events. Transports subscribe; services emit. */
export class EventHub {
  private listeners = new Set<(event: keyof Events, payload: unknown) => void>();

  emit<E extends keyof Events>(event: E, payload: Events[E]): void {
    for (const l of this.listeners) {
      try {
        l(event, payload);
      } catch {
        // A broken transport must not stop the others from receiving the event.
      }
    }
  }

  subscribe(listener: (event: keyof Events, payload: unknown) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

export { ApiError };
