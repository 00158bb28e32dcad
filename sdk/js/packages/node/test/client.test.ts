import { inspect } from 'node:util';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Authpipe, AuthpipeError } from '../src/index.js';
import { backoffDelay } from '../src/client.js';
import { apiError, BASE, credentialBody, json, KEY, mockFetch, SECRET } from './helpers.js';

afterEach(() => {
  vi.unstubAllEnvs();
});

describe('construction', () => {
  it('a missing secret key is a clear error at construction', () => {
    vi.stubEnv('AUTHPIPE_SECRET_KEY', '');
    expect(() => new Authpipe()).toThrow(AuthpipeError);
    expect(() => new Authpipe()).toThrow(/secret key.*AUTHPIPE_SECRET_KEY/i);
    try {
      new Authpipe();
    } catch (e) {
      expect(e).toMatchObject({ code: 'missing_secret_key' });
    }
  });

  it('reads AUTHPIPE_SECRET_KEY and AUTHPIPE_URL from the environment', async () => {
    vi.stubEnv('AUTHPIPE_SECRET_KEY', SECRET);
    vi.stubEnv('AUTHPIPE_URL', 'https://env.example.test');
    const m = mockFetch(() => json(200, credentialBody(3600)));
    const ap = new Authpipe({ fetch: m.fetch });
    expect(ap.baseUrl).toBe('https://env.example.test');
    await ap.getCredential(KEY);
    expect(m.calls[0]!.url.origin).toBe('https://env.example.test');
    expect(m.calls[0]!.init.headers.authorization).toBe(`Bearer ${SECRET}`);
  });

  it('defaults the base URL to http://127.0.0.1:8080', () => {
    vi.stubEnv('AUTHPIPE_URL', '');
    const ap = new Authpipe({ secretKey: SECRET });
    expect(ap.baseUrl).toBe('http://127.0.0.1:8080');
  });

  it('options win over the environment', () => {
    vi.stubEnv('AUTHPIPE_URL', 'https://env.example.test');
    const ap = new Authpipe({ secretKey: SECRET, baseUrl: 'https://opt.example.test' });
    expect(ap.baseUrl).toBe('https://opt.example.test');
  });

  it('rejects a base URL that is not http(s)', () => {
    expect(() => new Authpipe({ secretKey: SECRET, baseUrl: 'not a url' })).toThrow(/baseUrl/);
    expect(() => new Authpipe({ secretKey: SECRET, baseUrl: 'ftp://x' })).toThrow(/baseUrl/);
  });

  it('rejects negative options', () => {
    expect(() => new Authpipe({ secretKey: SECRET, retries: -1 })).toThrow(/retries/);
    expect(() => new Authpipe({ secretKey: SECRET, cacheSize: Number.NaN })).toThrow(/cacheSize/);
  });
});

describe('the secret key never leaks', () => {
  it('not in inspect, toString or JSON of the client', () => {
    const ap = new Authpipe({ secretKey: SECRET, baseUrl: BASE });
    expect(inspect(ap, { showHidden: true, depth: 10 })).not.toContain(SECRET);
    expect(String(ap)).not.toContain(SECRET);
    expect(`${ap}`).toContain(BASE);
    expect(JSON.stringify(ap)).not.toContain(SECRET);
    expect(Object.values(ap).join(' ')).not.toContain(SECRET);
  });

  it('not in error messages, toString, JSON or inspect of errors', async () => {
    const cases = [
      // A server that echoes the key back in its message.
      () => apiError(401, 'unauthorized', `Key ${SECRET} is not valid`),
      () => apiError(400, 'invalid_request', 'bad'),
      () => apiError(503, 'unavailable', `down (${SECRET})`),
      // A transport error that mentions the key somehow.
      () => {
        throw new TypeError(`fetch failed for Bearer ${SECRET}`);
      },
      () => ({ status: 500, text: async () => `raw ${SECRET}` }),
    ];
    for (const handler of cases) {
      const m = mockFetch(handler);
      const ap = new Authpipe({ secretKey: SECRET, baseUrl: BASE, fetch: m.fetch, retries: 0 });
      const error = (await ap.getCredential(KEY).catch((e: unknown) => e)) as AuthpipeError;
      expect(error).toBeInstanceOf(AuthpipeError);
      expect(error.message).not.toContain(SECRET);
      expect(String(error)).not.toContain(SECRET);
      expect(JSON.stringify(error)).not.toContain(SECRET);
      expect(inspect(error, { depth: 10 })).not.toContain(SECRET);
      expect(error.stack ?? '').not.toContain(SECRET);
    }
  });

  it('the missing-key error does not echo anything secret', () => {
    vi.stubEnv('AUTHPIPE_SECRET_KEY', '');
    expect(() => new Authpipe({ baseUrl: BASE })).toThrow(/AUTHPIPE_SECRET_KEY/);
  });
});

describe('connect sessions and connections', () => {
  const connectionJson = (id: string) => ({
    id,
    provider: 'spotify',
    tenant_id: 'org_acme',
    user_id: 'user_123',
    status: 'active',
    account: { id: 'acc_1', name: 'Ada' },
    resources: [{ id: 'page:1', name: 'Page' }],
    scopes: ['user-read-email'],
    expires_at: '2026-11-30T13:00:00Z',
    created_at: '2026-11-30T12:00:00Z',
    last_refreshed_at: null,
    last_checked_at: null,
    last_error: null,
  });

  it('createConnectSession posts a snake_case body and maps the answer', async () => {
    const m = mockFetch(() =>
      json(201, {
        token: 'ap_cs_abc',
        connect_url: `${BASE}/connect?session=ap_cs_abc`,
        expires_at: '2026-11-30T12:30:00Z',
      }),
    );
    const ap = new Authpipe({ secretKey: SECRET, baseUrl: BASE, fetch: m.fetch });
    const session = await ap.createConnectSession({
      tenantId: 'org_acme',
      userId: 'user_123',
      allowedProviders: ['spotify', 'bluesky'],
      scopes: { spotify: ['user-read-email'] },
      origin: 'https://app.example.com',
      returnUrl: 'https://app.example.com/settings',
    });
    const { url, init } = m.calls[0]!;
    expect(init.method).toBe('POST');
    expect(url.pathname).toBe('/v1/connect-sessions');
    expect(init.headers['content-type']).toBe('application/json');
    expect(init.headers.authorization).toBe(`Bearer ${SECRET}`);
    expect(JSON.parse(init.body!)).toEqual({
      tenant_id: 'org_acme',
      user_id: 'user_123',
      allowed_providers: ['spotify', 'bluesky'],
      scopes: { spotify: ['user-read-email'] },
      origin: 'https://app.example.com',
      return_url: 'https://app.example.com/settings',
    });
    expect(session).toEqual({
      token: 'ap_cs_abc',
      connectUrl: `${BASE}/connect?session=ap_cs_abc`,
      expiresAt: new Date('2026-11-30T12:30:00Z'),
    });
  });

  it('createConnectSession omits unset optional fields', async () => {
    const m = mockFetch(() => json(201, { token: 'ap_cs_x', connect_url: 'u', expires_at: '2026-11-30T12:30:00Z' }));
    const ap = new Authpipe({ secretKey: SECRET, baseUrl: BASE, fetch: m.fetch });
    await ap.createConnectSession({ tenantId: 't', userId: 'u' });
    expect(JSON.parse(m.calls[0]!.init.body!)).toEqual({ tenant_id: 't', user_id: 'u' });
  });

  it('getConnection maps to camelCase with Dates', async () => {
    const m = mockFetch(() => json(200, connectionJson('conn_1')));
    const ap = new Authpipe({ secretKey: SECRET, baseUrl: BASE, fetch: m.fetch });
    const c = await ap.getConnection('conn_1');
    expect(m.calls[0]!.url.pathname).toBe('/v1/connections/conn_1');
    expect(c).toEqual({
      id: 'conn_1',
      provider: 'spotify',
      tenantId: 'org_acme',
      userId: 'user_123',
      status: 'active',
      account: { id: 'acc_1', name: 'Ada' },
      resources: [{ id: 'page:1', name: 'Page' }],
      scopes: ['user-read-email'],
      expiresAt: new Date('2026-11-30T13:00:00Z'),
      createdAt: new Date('2026-11-30T12:00:00Z'),
      lastRefreshedAt: null,
      lastCheckedAt: null,
      lastError: null,
    });
  });

  it('getConnection encodes the id and maps 404', async () => {
    const m = mockFetch(() => apiError(404, 'connection_not_found'));
    const ap = new Authpipe({ secretKey: SECRET, baseUrl: BASE, fetch: m.fetch });
    await expect(ap.getConnection('conn/../x')).rejects.toMatchObject({ name: 'ConnectionNotFound' });
    expect((m.fn.mock.calls[0]![0] as string).endsWith('/v1/connections/conn%2F..%2Fx')).toBe(true);
  });

  it('listConnections: one page when awaited, every page when iterated', async () => {
    const m = mockFetch((call) => {
      const cursor = call.url.searchParams.get('cursor');
      if (!cursor) return json(200, { connections: [connectionJson('c1'), connectionJson('c2')], next_cursor: 'p2' });
      if (cursor === 'p2') return json(200, { connections: [connectionJson('c3')], next_cursor: 'p3' });
      return json(200, { connections: [connectionJson('c4')], next_cursor: null });
    });
    const ap = new Authpipe({ secretKey: SECRET, baseUrl: BASE, fetch: m.fetch });

    const page = await ap.listConnections({ tenantId: 'org_acme', provider: 'spotify', status: 'active', limit: 2 });
    expect(page.connections.map((c) => c.id)).toEqual(['c1', 'c2']);
    expect(page.nextCursor).toBe('p2');
    const q = m.calls[0]!.url.searchParams;
    expect(Object.fromEntries(q)).toEqual({ tenant_id: 'org_acme', provider: 'spotify', status: 'active', limit: '2' });

    m.calls.length = 0;
    const ids: string[] = [];
    for await (const c of ap.listConnections({ userId: 'user_123', limit: 2 })) ids.push(c.id);
    expect(ids).toEqual(['c1', 'c2', 'c3', 'c4']);
    expect(m.calls.map((c) => c.url.searchParams.get('cursor'))).toEqual([null, 'p2', 'p3']);
    expect(m.calls.every((c) => c.url.searchParams.get('user_id') === 'user_123')).toBe(true);

    const pages = [];
    for await (const p of ap.listConnectionPages()) pages.push(p.connections.length);
    expect(pages).toEqual([2, 1, 1]);
  });

  it('deleteConnection sends DELETE, accepts 204 and drops cached credentials of that connection', async () => {
    const m = mockFetch(
      () => json(200, credentialBody(3600, { connection_id: 'conn_9' })),
      () => json(204),
      () => json(200, credentialBody(3600, { connection_id: 'conn_9' })),
    );
    const ap = new Authpipe({ secretKey: SECRET, baseUrl: BASE, fetch: m.fetch });
    await ap.getCredential(KEY);
    await expect(ap.deleteConnection('conn_9')).resolves.toBeUndefined();
    expect(m.calls[1]!.init.method).toBe('DELETE');
    expect(m.calls[1]!.url.pathname).toBe('/v1/connections/conn_9');
    await ap.getCredential(KEY);
    expect(m.fn).toHaveBeenCalledTimes(3);
  });
});

describe('backoff', () => {
  it('grows exponentially, is jittered and capped', () => {
    expect(backoffDelay(0, 200, () => 0)).toBe(100);
    expect(backoffDelay(0, 200, () => 1)).toBe(200);
    expect(backoffDelay(1, 200, () => 0)).toBe(200);
    expect(backoffDelay(2, 200, () => 1)).toBe(800);
    expect(backoffDelay(20, 200, () => 1)).toBe(5000);
    const d = backoffDelay(1, 200, () => 0.5);
    expect(d).toBeGreaterThan(200);
    expect(d).toBeLessThan(400);
  });
});
