import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Authpipe, AuthpipeError, ConnectionNotFound, ConnectionRevoked } from '../src/index.js';
import type { AuthpipeOptions } from '../src/index.js';
import {
  apiError,
  BASE,
  credentialBody,
  deferred,
  flush,
  json,
  KEY,
  mockFetch,
  SECRET,
  T0,
} from './helpers.js';
import type { Call } from './helpers.js';
import type { ResponseLike } from '../src/index.js';

// Only Date is faked: the clock is set by hand, real (zero-delay) timers keep retries fast.
beforeEach(() => {
  vi.useFakeTimers({ toFake: ['Date'] });
  vi.setSystemTime(T0);
});
afterEach(() => {
  vi.useRealTimers();
});

function client(fetch: AuthpipeOptions['fetch'], options: AuthpipeOptions = {}) {
  return new Authpipe({ secretKey: SECRET, baseUrl: BASE, fetch, retryDelayMs: 0, ...options });
}

function advance(seconds: number) {
  vi.setSystemTime(Date.now() + seconds * 1000);
}

describe('getCredential: request and response', () => {
  it('calls GET /v1/credentials with the secret key and maps the JSON to camelCase', async () => {
    const body = credentialBody(3600, { scopes: ['a', 'b'] });
    const m = mockFetch(() => json(200, body));
    const ap = client(m.fetch);
    const cred = await ap.getCredential(KEY);

    expect(m.calls).toHaveLength(1);
    const { url, init } = m.calls[0]!;
    expect(init.method).toBe('GET');
    expect(init.headers.authorization).toBe(`Bearer ${SECRET}`);
    expect(url.origin + url.pathname).toBe(`${BASE}/v1/credentials`);
    expect(url.searchParams.get('provider')).toBe('spotify');
    expect(url.searchParams.get('tenant_id')).toBe('org_acme');
    expect(url.searchParams.get('user_id')).toBe('user_123');
    expect(url.searchParams.get('min_ttl')).toBe('60');
    expect(url.searchParams.has('force_refresh')).toBe(false);
    expect(url.searchParams.has('resource')).toBe(false);

    expect(cred).toEqual({
      credential: body.credential,
      tokenType: 'bearer',
      expiresAt: new Date(body.expires_at as string),
      connectionId: 'conn_1',
      provider: 'spotify',
      scopes: ['a', 'b'],
    });
    expect(cred.expiresAt).toBeInstanceOf(Date);
  });

  it('encodes every query parameter', async () => {
    const m = mockFetch(() => json(200, credentialBody(3600)));
    const ap = client(m.fetch);
    await ap.getCredential({
      provider: 'my-provider',
      tenantId: 'org:acme@eu',
      userId: 'user 1&x=2?#/',
      resource: 'page:123',
      minTtl: 120,
    });
    const raw = (m.fn.mock.calls[0]![0] as string).slice(BASE.length);
    expect(raw).toBe(
      '/v1/credentials?provider=my-provider&tenant_id=org%3Aacme%40eu&user_id=user+1%26x%3D2%3F%23%2F&min_ttl=120&resource=page%3A123',
    );
    const { searchParams } = m.calls[0]!.url;
    expect(searchParams.get('user_id')).toBe('user 1&x=2?#/');
    expect(searchParams.get('tenant_id')).toBe('org:acme@eu');
    expect(searchParams.get('resource')).toBe('page:123');
  });

  it('keeps a base URL path prefix and ignores a trailing slash', async () => {
    const m = mockFetch(() => json(200, credentialBody(3600)));
    const ap = new Authpipe({ secretKey: SECRET, baseUrl: 'https://example.test/authpipe/', fetch: m.fetch });
    await ap.getCredential(KEY);
    expect(m.calls[0]!.url.pathname).toBe('/authpipe/v1/credentials');
  });

  it('rejects (does not throw) on missing arguments', async () => {
    const m = mockFetch(() => json(200, credentialBody(3600)));
    const ap = client(m.fetch);
    const p = ap.getCredential({ ...KEY, userId: '' });
    await expect(p).rejects.toThrow(TypeError);
    await expect(ap.getCredential({ ...KEY, minTtl: -1 })).rejects.toThrow(/minTtl/);
    expect(m.calls).toHaveLength(0);
  });
});

describe('getCredential: cache', () => {
  it('a hit does no I/O: repeated calls fetch once', async () => {
    const m = mockFetch(() => json(200, credentialBody(3600)));
    const ap = client(m.fetch);
    const first = await ap.getCredential(KEY);
    m.fn.mockImplementation(() => {
      throw new Error('fetch must not be called on a hit');
    });
    for (let i = 0; i < 10; i++) {
      expect(await ap.getCredential(KEY)).toEqual(first);
    }
    expect(m.fn).toHaveBeenCalledTimes(1);
  });

  it('a hit resolves from already-resolved data (one microtask, no network wait)', async () => {
    const m = mockFetch(() => json(200, credentialBody(3600)));
    const ap = client(m.fetch);
    await ap.getCredential(KEY);
    let value: unknown;
    void ap.getCredential(KEY).then((v) => (value = v));
    await Promise.resolve();
    expect(value).toMatchObject({ connectionId: 'conn_1' });
    expect(m.fn).toHaveBeenCalledTimes(1);
  });

  it('callers get copies: mutating a result does not change the cache', async () => {
    const m = mockFetch(() => json(200, credentialBody(3600)));
    const ap = client(m.fetch);
    const a = await ap.getCredential(KEY);
    a.scopes.push('mutated');
    a.credential = 'mutated';
    const b = await ap.getCredential(KEY);
    expect(b.scopes).toEqual(['user-read-email']);
    expect(b.credential).not.toBe('mutated');
  });

  it('minTtl boundary: more than minTtl left is a hit, exactly minTtl is a fetch', async () => {
    const m = mockFetch(() => json(200, credentialBody(600)));
    const ap = client(m.fetch, { refreshAheadSeconds: 0 });
    await ap.getCredential(KEY); // expires at T0 + 600 s
    expect(m.fn).toHaveBeenCalledTimes(1);

    await ap.getCredential({ ...KEY, minTtl: 599 }); // 600 s left > 599
    expect(m.fn).toHaveBeenCalledTimes(1);

    vi.setSystemTime(T0 + 1); // 599.999 s left > 599
    await ap.getCredential({ ...KEY, minTtl: 599 });
    expect(m.fn).toHaveBeenCalledTimes(1);

    vi.setSystemTime(T0 + 1000); // exactly 599 s left: not more than minTtl
    const cached = await ap.getCredential({ ...KEY, minTtl: 0 });
    const refreshed = await ap.getCredential({ ...KEY, minTtl: 599 });
    expect(refreshed.credential).not.toBe(cached.credential); // fetched, not served from the cache
    expect(m.fn).toHaveBeenCalledTimes(2);
    expect(m.calls[1]!.url.searchParams.get('min_ttl')).toBe('599');
  });

  it('a token with less than minTtl left is fetched again', async () => {
    const m = mockFetch(() => json(200, credentialBody(100)));
    const ap = client(m.fetch, { refreshAheadSeconds: 0 });
    await ap.getCredential(KEY);
    await ap.getCredential({ ...KEY, minTtl: 100 });
    expect(m.fn).toHaveBeenCalledTimes(2);
  });

  it('refresh-ahead: returns the cached value and starts exactly one background fetch per key', async () => {
    const first = credentialBody(3600);
    const next = credentialBody(3600);
    const bg = deferred<ResponseLike>();
    const m = mockFetch(
      () => json(200, first),
      () => bg.promise,
      () => json(200, credentialBody(3600)),
    );
    const ap = client(m.fetch);
    await ap.getCredential(KEY);

    advance(3600 - 100); // 100 s left: inside (60, 60 + 60]
    const results = await Promise.all(Array.from({ length: 20 }, () => ap.getCredential(KEY)));
    for (const r of results) expect(r.credential).toBe(first.credential);
    expect(m.fn).toHaveBeenCalledTimes(2);
    // The background fetch asks for a token that outlives the whole window.
    expect(m.calls[1]!.url.searchParams.get('min_ttl')).toBe('120');

    // Still pending: still the cached value, still one background fetch.
    expect((await ap.getCredential(KEY)).credential).toBe(first.credential);
    expect(m.fn).toHaveBeenCalledTimes(2);

    bg.resolve(json(200, { ...next, expires_at: new Date(Date.now() + 3600_000).toISOString() }));
    await flush();
    expect((await ap.getCredential(KEY)).credential).toBe(next.credential);
    expect(m.fn).toHaveBeenCalledTimes(2);
  });

  it('refresh-ahead is per key', async () => {
    const m = mockFetch((call) =>
      json(200, credentialBody(3600, { provider: call.url.searchParams.get('provider') })),
    );
    const ap = client(m.fetch);
    await ap.getCredential(KEY);
    await ap.getCredential({ ...KEY, provider: 'github' });
    advance(3600 - 90);
    await Promise.all([
      ap.getCredential(KEY),
      ap.getCredential(KEY),
      ap.getCredential({ ...KEY, provider: 'github' }),
      ap.getCredential({ ...KEY, provider: 'github' }),
    ]);
    await flush();
    expect(m.fn).toHaveBeenCalledTimes(4);
  });

  it('a failed background fetch is swallowed and the cached value stays', async () => {
    const first = credentialBody(3600);
    const m = mockFetch(
      () => json(200, first),
      () => {
        throw new TypeError('fetch failed');
      },
    );
    const ap = client(m.fetch, { retries: 0 });
    await ap.getCredential(KEY);
    advance(3600 - 100);
    expect((await ap.getCredential(KEY)).credential).toBe(first.credential);
    await flush();
    expect(m.fn).toHaveBeenCalledTimes(2);
    // Cached value still served; no background retry storm right after a failure.
    expect((await ap.getCredential(KEY)).credential).toBe(first.credential);
    await flush();
    expect(m.fn).toHaveBeenCalledTimes(2);
    // Once the cooldown is over, the next call tries again.
    advance(6);
    await ap.getCredential(KEY);
    await flush();
    expect(m.fn).toHaveBeenCalledTimes(3);
  });

  it('single flight: 100 concurrent misses make one request', async () => {
    const gate = deferred<ResponseLike>();
    const body = credentialBody(3600);
    const m = mockFetch(() => gate.promise);
    const ap = client(m.fetch);
    const calls = Array.from({ length: 100 }, () => ap.getCredential(KEY));
    await flush();
    expect(m.fn).toHaveBeenCalledTimes(1);
    gate.resolve(json(200, body));
    const results = await Promise.all(calls);
    expect(new Set(results.map((r) => r.credential))).toEqual(new Set([body.credential]));
    expect(m.fn).toHaveBeenCalledTimes(1);
  });

  it('single flight shares failures too, and the next call tries again', async () => {
    const m = mockFetch(
      () => apiError(400, 'invalid_request'),
      () => json(200, credentialBody(3600)),
    );
    const ap = client(m.fetch);
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => ap.getCredential(KEY)));
    expect(results.every((r) => r.status === 'rejected')).toBe(true);
    expect(m.fn).toHaveBeenCalledTimes(1);
    await expect(ap.getCredential(KEY)).resolves.toMatchObject({ connectionId: 'conn_1' });
    expect(m.fn).toHaveBeenCalledTimes(2);
  });

  it('different keys (provider, tenant, user, resource) are cached separately', async () => {
    const m = mockFetch(() => json(200, credentialBody(3600)));
    const ap = client(m.fetch);
    const keys = [
      KEY,
      { ...KEY, provider: 'github' },
      { ...KEY, tenantId: 'org_other' },
      { ...KEY, userId: 'user_other' },
      { ...KEY, resource: 'page:1' },
      { ...KEY, resource: 'page:2' },
    ];
    for (const k of keys) await ap.getCredential(k);
    for (const k of keys) await ap.getCredential(k);
    expect(m.fn).toHaveBeenCalledTimes(keys.length);
  });

  it('LRU: the least recently used key is evicted beyond cacheSize', async () => {
    const m = mockFetch(() => json(200, credentialBody(3600)));
    const ap = client(m.fetch, { cacheSize: 2 });
    const a = { ...KEY, userId: 'a' };
    const b = { ...KEY, userId: 'b' };
    const c = { ...KEY, userId: 'c' };
    await ap.getCredential(a);
    await ap.getCredential(b);
    await ap.getCredential(a); // a is now the most recently used
    expect(m.fn).toHaveBeenCalledTimes(2);
    await ap.getCredential(c); // evicts b
    expect(m.fn).toHaveBeenCalledTimes(3);
    await ap.getCredential(a);
    await ap.getCredential(c);
    expect(m.fn).toHaveBeenCalledTimes(3);
    await ap.getCredential(b); // was evicted
    expect(m.fn).toHaveBeenCalledTimes(4);
  });

  it('cacheSize 0 disables the cache', async () => {
    const m = mockFetch(() => json(200, credentialBody(3600)));
    const ap = client(m.fetch, { cacheSize: 0 });
    await ap.getCredential(KEY);
    await ap.getCredential(KEY);
    expect(m.fn).toHaveBeenCalledTimes(2);
  });

  it('expires_at null: cached for noExpiryCacheSeconds (default 300 s), then asked again', async () => {
    const m = mockFetch(() => json(200, credentialBody(null)));
    const ap = client(m.fetch);
    const cred = await ap.getCredential(KEY);
    expect(cred.expiresAt).toBeNull();
    advance(299);
    await ap.getCredential(KEY);
    expect(m.fn).toHaveBeenCalledTimes(1);
    advance(2);
    await ap.getCredential(KEY);
    expect(m.fn).toHaveBeenCalledTimes(2);
  });

  it('forceRefresh bypasses the cache, sends force_refresh=true and updates the cache', async () => {
    const m = mockFetch(
      () => json(200, credentialBody(3600)),
      () => json(200, credentialBody(3600)),
    );
    const ap = client(m.fetch);
    const first = await ap.getCredential(KEY);
    const forced = await ap.getCredential({ ...KEY, forceRefresh: true });
    expect(m.fn).toHaveBeenCalledTimes(2);
    expect(m.calls[1]!.url.searchParams.get('force_refresh')).toBe('true');
    expect(forced.credential).not.toBe(first.credential);
    expect((await ap.getCredential(KEY)).credential).toBe(forced.credential);
    expect(m.fn).toHaveBeenCalledTimes(2);
  });

  it('forceRefresh replaces the cached token even when the new one expires earlier', async () => {
    const m = mockFetch(
      () => json(200, credentialBody(7200)),
      () => json(200, credentialBody(3600)),
    );
    const ap = client(m.fetch);
    await ap.getCredential(KEY);
    const forced = await ap.getCredential({ ...KEY, forceRefresh: true });
    expect((await ap.getCredential(KEY)).credential).toBe(forced.credential);
  });

  it('clearCache forgets everything', async () => {
    const m = mockFetch(() => json(200, credentialBody(3600)));
    const ap = client(m.fetch);
    await ap.getCredential(KEY);
    ap.clearCache();
    await ap.getCredential(KEY);
    expect(m.fn).toHaveBeenCalledTimes(2);
  });
});

describe('getCredential: resilience', () => {
  it('stale-while-unreachable: a network error returns the cached token that is still valid', async () => {
    const body = credentialBody(3600);
    const m = mockFetch(
      () => json(200, body),
      () => {
        throw new TypeError('fetch failed');
      },
    );
    const ap = client(m.fetch, { retries: 2 });
    await ap.getCredential(KEY);
    advance(3600 - 30); // 30 s left: inside minTtl, still valid
    const cred = await ap.getCredential(KEY);
    expect(cred.credential).toBe(body.credential);
    expect(m.fn).toHaveBeenCalledTimes(4); // 1 + 3 attempts
  });

  it('stale-while-unreachable: 5xx after retries returns the cached token', async () => {
    const body = credentialBody(3600);
    const m = mockFetch(
      () => json(200, body),
      () => apiError(503, 'unavailable'),
    );
    const ap = client(m.fetch, { retries: 1 });
    await ap.getCredential(KEY);
    advance(3600 - 10);
    expect((await ap.getCredential(KEY)).credential).toBe(body.credential);
    expect(m.fn).toHaveBeenCalledTimes(3);
  });

  it('stale-while-unreachable: an expired cached token is not returned, the error is', async () => {
    const m = mockFetch(
      () => json(200, credentialBody(3600)),
      () => {
        throw new TypeError('fetch failed');
      },
    );
    const ap = client(m.fetch, { retries: 0 });
    await ap.getCredential(KEY);
    advance(3601);
    const error = await ap.getCredential(KEY).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AuthpipeError);
    expect(error).toMatchObject({ code: 'network_error', status: undefined });
  });

  it('no cache and unreachable: the network error is raised', async () => {
    const m = mockFetch(() => {
      throw new TypeError('fetch failed');
    });
    const ap = client(m.fetch, { retries: 0 });
    await expect(ap.getCredential(KEY)).rejects.toMatchObject({ name: 'AuthpipeError', code: 'network_error' });
  });

  it('a 4xx is not hidden by the cache (only unreachability is)', async () => {
    const m = mockFetch(
      () => json(200, credentialBody(3600)),
      () => apiError(401, 'unauthorized', 'Invalid secret key'),
    );
    const ap = client(m.fetch);
    await ap.getCredential(KEY);
    advance(3600 - 30);
    await expect(ap.getCredential(KEY)).rejects.toMatchObject({ status: 401, code: 'unauthorized' });
  });

  it('retries 5xx with backoff, then succeeds', async () => {
    const m = mockFetch(
      () => apiError(502, 'provider_error'),
      () => apiError(503, 'unavailable'),
      () => json(200, credentialBody(3600)),
    );
    const ap = client(m.fetch, { retries: 2 });
    await expect(ap.getCredential(KEY)).resolves.toMatchObject({ connectionId: 'conn_1' });
    expect(m.fn).toHaveBeenCalledTimes(3);
  });

  it('retries network errors, then succeeds', async () => {
    const m = mockFetch(
      () => {
        throw new TypeError('fetch failed');
      },
      () => json(200, credentialBody(3600)),
    );
    const ap = client(m.fetch, { retries: 2 });
    await expect(ap.getCredential(KEY)).resolves.toMatchObject({ connectionId: 'conn_1' });
    expect(m.fn).toHaveBeenCalledTimes(2);
  });

  it('gives up after `retries` extra attempts and raises the last error', async () => {
    const m = mockFetch(() => apiError(500, 'internal', 'boom'));
    const ap = client(m.fetch, { retries: 3 });
    await expect(ap.getCredential(KEY)).rejects.toMatchObject({ status: 500, code: 'internal', message: 'boom' });
    expect(m.fn).toHaveBeenCalledTimes(4);
  });

  it.each([400, 401, 404, 409, 410, 429])('does not retry a %i', async (status) => {
    const m = mockFetch(() => apiError(status, 'some_code'));
    const ap = client(m.fetch, { retries: 3 });
    await expect(ap.getCredential(KEY)).rejects.toMatchObject({ status });
    expect(m.fn).toHaveBeenCalledTimes(1);
  });

  it('a per-request timeout aborts the fetch and is retried', async () => {
    const signals: AbortSignal[] = [];
    const m = mockFetch(
      (call: Call) =>
        new Promise<ResponseLike>((_, reject) => {
          signals.push(call.init.signal);
          call.init.signal.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError')));
        }),
      () => json(200, credentialBody(3600)),
    );
    const ap = client(m.fetch, { timeoutMs: 5, retries: 1 });
    await expect(ap.getCredential(KEY)).resolves.toMatchObject({ connectionId: 'conn_1' });
    expect(signals[0]!.aborted).toBe(true);
    expect(m.fn).toHaveBeenCalledTimes(2);
  });

  it('a timeout that is never answered becomes a `timeout` error', async () => {
    const m = mockFetch(
      (call: Call) =>
        new Promise<ResponseLike>((_, reject) => {
          call.init.signal.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError')));
        }),
    );
    const ap = client(m.fetch, { timeoutMs: 5, retries: 0 });
    await expect(ap.getCredential(KEY)).rejects.toMatchObject({ code: 'timeout', status: undefined });
  });
});

describe('getCredential: errors', () => {
  it('404 connection_not_found → ConnectionNotFound', async () => {
    const m = mockFetch(() => apiError(404, 'connection_not_found', 'No connection for spotify'));
    const ap = client(m.fetch);
    const error = await ap.getCredential(KEY).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectionNotFound);
    expect(error).toBeInstanceOf(AuthpipeError);
    expect(error).toMatchObject({
      name: 'ConnectionNotFound',
      status: 404,
      code: 'connection_not_found',
      message: 'No connection for spotify',
    });
  });

  it('404 provider_not_found → plain AuthpipeError', async () => {
    const m = mockFetch(() => apiError(404, 'provider_not_found'));
    const ap = client(m.fetch);
    const error = await ap.getCredential(KEY).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AuthpipeError);
    expect(error).not.toBeInstanceOf(ConnectionNotFound);
    expect(error).toMatchObject({ code: 'provider_not_found', status: 404 });
  });

  it('410 connection_revoked → ConnectionRevoked, and evicts the cache entry', async () => {
    const m = mockFetch(
      () => json(200, credentialBody(3600)),
      () => apiError(410, 'connection_revoked', 'The provider rejected the grant'),
      () => json(200, credentialBody(3600)),
    );
    const ap = client(m.fetch);
    const first = await ap.getCredential(KEY);
    advance(3600 - 30); // inside minTtl, still valid: would be served if the server were unreachable
    const error = await ap.getCredential(KEY).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectionRevoked);
    expect(error).toMatchObject({ status: 410, code: 'connection_revoked' });
    // Evicted: even a call that the old token would have satisfied asks the server again.
    const after = await ap.getCredential({ ...KEY, minTtl: 0 });
    expect(after.credential).not.toBe(first.credential);
    expect(m.fn).toHaveBeenCalledTimes(3);
  });

  it('410 on forceRefresh evicts a fresh cache entry', async () => {
    const m = mockFetch(
      () => json(200, credentialBody(3600)),
      () => apiError(410, 'connection_revoked'),
      () => apiError(410, 'connection_revoked'),
    );
    const ap = client(m.fetch);
    await ap.getCredential(KEY);
    await expect(ap.getCredential({ ...KEY, forceRefresh: true })).rejects.toBeInstanceOf(ConnectionRevoked);
    await expect(ap.getCredential(KEY)).rejects.toBeInstanceOf(ConnectionRevoked);
    expect(m.fn).toHaveBeenCalledTimes(3);
  });

  it('410 during a background refresh evicts the entry', async () => {
    const m = mockFetch(
      () => json(200, credentialBody(3600)),
      () => apiError(410, 'connection_revoked'),
    );
    const ap = client(m.fetch);
    await ap.getCredential(KEY);
    advance(3600 - 100);
    await ap.getCredential(KEY); // served from cache, background refresh gets the 410
    await flush();
    await expect(ap.getCredential(KEY)).rejects.toBeInstanceOf(ConnectionRevoked);
  });

  it('an error body without the error envelope still gives a status and a code', async () => {
    const m = mockFetch(() => ({ status: 418, text: async () => '<html>teapot</html>' }));
    const ap = client(m.fetch);
    await expect(ap.getCredential(KEY)).rejects.toMatchObject({ status: 418, code: 'http_error' });
  });

  it('a 200 that is not JSON is an invalid_response error', async () => {
    const m = mockFetch(() => ({ status: 200, text: async () => 'not json' }));
    const ap = client(m.fetch);
    await expect(ap.getCredential(KEY)).rejects.toMatchObject({ code: 'invalid_response' });
  });
});
