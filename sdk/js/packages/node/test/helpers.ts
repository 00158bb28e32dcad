import { vi } from 'vitest';
import type { FetchInit, FetchLike, ResponseLike } from '../src/index.js';

export const SECRET = 'ap_sk_test_SUPERSECRET_0123456789abcdef';
export const BASE = 'http://authpipe.test:8080';
export const T0 = Date.parse('2026-11-30T12:00:00Z');

export interface Call {
  url: URL;
  init: FetchInit;
}

export function json(status: number, body?: unknown): ResponseLike {
  return { status, text: async () => (body === undefined ? '' : JSON.stringify(body)) };
}

export function apiError(status: number, code: string, message = `error ${code}`): ResponseLike {
  return json(status, { error: { code, message } });
}

let counter = 0;
/** A server credential answer expiring `ttlSeconds` after the (fake) current time. */
export function credentialBody(ttlSeconds: number | null, overrides: Record<string, unknown> = {}) {
  counter += 1;
  return {
    credential: `tok_${counter}`,
    token_type: 'bearer',
    expires_at: ttlSeconds === null ? null : new Date(Date.now() + ttlSeconds * 1000).toISOString(),
    connection_id: 'conn_1',
    provider: 'spotify',
    scopes: ['user-read-email'],
    ...overrides,
  };
}

export interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (error: unknown) => void;
}

export function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

type Handler = (call: Call) => ResponseLike | Promise<ResponseLike>;

/**
 * A recording fetch. Each call takes the next handler from the queue (the last one repeats).
 */
export function mockFetch(...handlers: Handler[]) {
  const calls: Call[] = [];
  const queue = [...handlers];
  const fn = vi.fn(async (url: string, init: FetchInit) => {
    const call = { url: new URL(url), init };
    calls.push(call);
    const handler = queue.length > 1 ? queue.shift()! : queue[0];
    if (!handler) throw new Error('mockFetch: no handler');
    return handler(call);
  });
  return { fetch: fn as unknown as FetchLike & typeof fn, calls, fn };
}

/** Let pending promise callbacks (and zero-delay timers) run. */
export async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
}

export const KEY = { provider: 'spotify', tenantId: 'org_acme', userId: 'user_123' } as const;
