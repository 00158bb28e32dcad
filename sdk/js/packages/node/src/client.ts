import { AuthpipeError, errorFromResponse } from './errors.js';
import { LruCache } from './lru.js';
import type {
  AuthpipeOptions,
  Connection,
  ConnectionList,
  ConnectionPage,
  ConnectSession,
  CreateConnectSessionParams,
  Credential,
  FetchLike,
  GetCredentialParams,
  ListConnectionsParams,
} from './types.js';

export const SDK_VERSION = '0.1.0';

const DEFAULT_BASE_URL = 'http://127.0.0.1:8080';
const DEFAULT_CACHE_SIZE = 1000;
const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_RETRIES = 2;
const DEFAULT_RETRY_DELAY_MS = 200;
const MAX_RETRY_DELAY_MS = 5_000;
const DEFAULT_REFRESH_AHEAD_SECONDS = 60;
const DEFAULT_MIN_TTL = 60;
/**
 * A credential without `expires_at` (the provider gave no lifetime) is served from the cache for
 * at most this long, then asked for again, so that a revocation or a rotation is noticed.
 */
const DEFAULT_NO_EXPIRY_CACHE_SECONDS = 300;
/** After a background refresh, no new background refresh of the same key starts for this long. */
const BACKGROUND_COOLDOWN_MS = 5_000;

interface CacheEntry {
  value: Credential;
  /** `expires_at` in ms since the epoch, or null when the credential has no known expiry. */
  expiresAtMs: number | null;
  storedAtMs: number;
  /** No background refresh of this key before this time (ms since the epoch). */
  backgroundNotBefore: number;
}

type Freshness = 'fresh' | 'refresh-ahead' | 'stale';

const inspectSymbol = Symbol.for('nodejs.util.inspect.custom');

function readEnv(name: string): string | undefined {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  const value = env?.[name];
  return value === undefined || value === '' ? undefined : value;
}

function nonNegativeNumber(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new TypeError(`Authpipe: option ${name} must be a non-negative finite number`);
  }
  return value;
}

function requireString(name: string, value: unknown): string {
  if (typeof value !== 'string' || value === '') {
    throw new TypeError(`Authpipe: ${name} must be a non-empty string`);
  }
  return value;
}

function parseDate(value: unknown): Date | null {
  if (typeof value !== 'string' || value === '') return null;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? null : date;
}

function asObject(value: unknown): Record<string, unknown> {
  return value !== null && typeof value === 'object' ? (value as Record<string, unknown>) : {};
}

function asString(value: unknown, fallback = ''): string {
  return typeof value === 'string' ? value : fallback;
}

function asStringArray(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

function copyCredential(value: Credential): Credential {
  return {
    credential: value.credential,
    tokenType: value.tokenType,
    expiresAt: value.expiresAt === null ? null : new Date(value.expiresAt.getTime()),
    connectionId: value.connectionId,
    provider: value.provider,
    scopes: [...value.scopes],
  };
}

function parseCredential(body: unknown): Credential {
  const o = asObject(body);
  if (typeof o.credential !== 'string') {
    throw new AuthpipeError('invalid_response', 'Authpipe answered without a credential', { status: 200 });
  }
  return {
    credential: o.credential,
    tokenType: asString(o.token_type, 'bearer'),
    expiresAt: parseDate(o.expires_at),
    connectionId: asString(o.connection_id),
    provider: asString(o.provider),
    scopes: asStringArray(o.scopes),
  };
}

export function parseConnection(body: unknown): Connection {
  const o = asObject(body);
  const account = o.account === null || o.account === undefined ? null : asObject(o.account);
  const lastError = o.last_error === null || o.last_error === undefined ? null : asObject(o.last_error);
  return {
    id: asString(o.id),
    provider: asString(o.provider),
    tenantId: asString(o.tenant_id),
    userId: asString(o.user_id),
    status: asString(o.status),
    account: account && { id: asString(account.id), name: typeof account.name === 'string' ? account.name : null },
    resources: Array.isArray(o.resources)
      ? o.resources.map((r) => {
          const ro = asObject(r);
          return { id: asString(ro.id), name: typeof ro.name === 'string' ? ro.name : null };
        })
      : [],
    scopes: asStringArray(o.scopes),
    expiresAt: parseDate(o.expires_at),
    createdAt: parseDate(o.created_at),
    lastRefreshedAt: parseDate(o.last_refreshed_at),
    lastCheckedAt: parseDate(o.last_checked_at),
    lastError: lastError && {
      code: asString(lastError.code),
      message: asString(lastError.message),
      at: parseDate(lastError.at),
    },
  };
}

/** Exponential backoff with jitter: attempt 0 → 100–200 ms, 1 → 200–400 ms, … (for a 200 ms base). */
export function backoffDelay(attempt: number, baseMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(MAX_RETRY_DELAY_MS, baseMs * 2 ** attempt);
  return ceiling / 2 + random() * (ceiling / 2);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function isRetryable(error: AuthpipeError): boolean {
  return error.status === undefined || error.status >= 500;
}

/**
 * The Authpipe server-side client.
 *
 * ```ts
 * const authpipe = new Authpipe({ secretKey, baseUrl });
 * const { credential } = await authpipe.getCredential({ provider: 'spotify', tenantId: 'org_acme', userId: 'user_123' });
 * ```
 */
export class Authpipe {
  readonly baseUrl: string;
  readonly cacheSize: number;
  readonly timeoutMs: number;
  readonly retries: number;
  readonly retryDelayMs: number;
  readonly refreshAheadSeconds: number;
  readonly noExpiryCacheSeconds: number;

  // Private fields: invisible to util.inspect, JSON.stringify, Object.keys and console.log.
  readonly #secretKey: string;
  readonly #fetch: FetchLike;
  readonly #cache: LruCache<string, CacheEntry>;
  /** Foreground single flight: one request per (key, min_ttl) or (key, force). */
  readonly #inflight = new Map<string, Promise<Credential>>();
  /** Background refresh single flight: one per key. */
  readonly #background = new Map<string, Promise<void>>();

  constructor(options: AuthpipeOptions = {}) {
    const secretKey = options.secretKey || readEnv('AUTHPIPE_SECRET_KEY');
    if (!secretKey) {
      throw new AuthpipeError(
        'missing_secret_key',
        'Authpipe: no secret key. Pass new Authpipe({ secretKey }) or set the AUTHPIPE_SECRET_KEY environment variable.',
      );
    }
    this.#secretKey = secretKey;

    const baseUrl = options.baseUrl || readEnv('AUTHPIPE_URL') || DEFAULT_BASE_URL;
    let parsed: URL;
    try {
      parsed = new URL(baseUrl);
    } catch {
      throw new AuthpipeError('invalid_base_url', 'Authpipe: baseUrl must be an absolute http(s) URL');
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      throw new AuthpipeError('invalid_base_url', 'Authpipe: baseUrl must be an absolute http(s) URL');
    }
    this.baseUrl = baseUrl.replace(/\/+$/, '');

    this.cacheSize = Math.floor(nonNegativeNumber('cacheSize', options.cacheSize, DEFAULT_CACHE_SIZE));
    this.timeoutMs = nonNegativeNumber('timeoutMs', options.timeoutMs, DEFAULT_TIMEOUT_MS);
    this.retries = Math.floor(nonNegativeNumber('retries', options.retries, DEFAULT_RETRIES));
    this.retryDelayMs = nonNegativeNumber('retryDelayMs', options.retryDelayMs, DEFAULT_RETRY_DELAY_MS);
    this.refreshAheadSeconds = nonNegativeNumber(
      'refreshAheadSeconds',
      options.refreshAheadSeconds,
      DEFAULT_REFRESH_AHEAD_SECONDS,
    );
    this.noExpiryCacheSeconds = nonNegativeNumber(
      'noExpiryCacheSeconds',
      options.noExpiryCacheSeconds,
      DEFAULT_NO_EXPIRY_CACHE_SECONDS,
    );

    const fetchImpl = options.fetch ?? (globalThis.fetch as unknown as FetchLike | undefined);
    if (typeof fetchImpl !== 'function') {
      throw new AuthpipeError('missing_fetch', 'Authpipe: no fetch implementation; pass the fetch option');
    }
    // Call through a plain function so that the platform fetch never sees a foreign `this`.
    this.#fetch = options.fetch ? options.fetch : (url, init) => fetchImpl.call(globalThis, url, init);
    this.#cache = new LruCache(this.cacheSize);
  }

  // ---------------------------------------------------------------------------------------------
  // Credentials

  /**
   * The credential for (provider, tenantId, userId[, resource]).
   *
   * - Served from memory, without any I/O, while more than `minTtl` seconds remain.
   * - Within `refreshAheadSeconds` above that, served from memory too, and one background refresh
   *   per key is started.
   * - Otherwise fetched; concurrent callers of the same key share one request.
   * - While the server is unreachable (network error, timeout, 5xx, 429), a cached credential that
   *   has not expired yet is returned rather than an error.
   */
  getCredential(params: GetCredentialParams): Promise<Credential> {
    let provider: string, tenantId: string, userId: string, minTtl: number;
    try {
      const p = asObject(params);
      provider = requireString('provider', p.provider);
      tenantId = requireString('tenantId', p.tenantId);
      userId = requireString('userId', p.userId);
      if (params.resource !== undefined && params.resource !== null) requireString('resource', params.resource);
      minTtl = params.minTtl === undefined ? DEFAULT_MIN_TTL : params.minTtl;
      if (typeof minTtl !== 'number' || !Number.isFinite(minTtl) || minTtl < 0) {
        throw new TypeError('Authpipe: minTtl must be a non-negative number of seconds');
      }
    } catch (error) {
      return Promise.reject(error);
    }
    const resource = params.resource ?? null;
    const key = JSON.stringify([provider, tenantId, userId, resource]);
    const request = { provider, tenantId, userId, resource };

    if (params.forceRefresh) {
      return this.#fetchShared(key, `${key}\u0000force`, request, minTtl, true);
    }

    const entry = this.#cache.get(key);
    if (entry) {
      const freshness = this.#freshness(entry, minTtl, Date.now());
      if (freshness !== 'stale') {
        if (freshness === 'refresh-ahead') this.#refreshInBackground(key, request, minTtl);
        // A hit: already-resolved data, no I/O and nothing awaited.
        return Promise.resolve(copyCredential(entry.value));
      }
    }
    return this.#fetchShared(key, `${key}\u0000${minTtl}`, request, minTtl, false);
  }

  /** Forget every cached credential. */
  clearCache(): void {
    this.#cache.clear();
  }

  #freshness(entry: CacheEntry, minTtl: number, now: number): Freshness {
    if (entry.expiresAtMs === null) {
      return now - entry.storedAtMs < this.noExpiryCacheSeconds * 1000 ? 'fresh' : 'stale';
    }
    const remaining = (entry.expiresAtMs - now) / 1000;
    if (remaining > minTtl + this.refreshAheadSeconds) return 'fresh';
    if (remaining > minTtl) return 'refresh-ahead';
    return 'stale';
  }

  /** A cached credential that can still be used when the server cannot be reached. */
  #usableWhileUnreachable(key: string): Credential | undefined {
    const entry = this.#cache.peek(key);
    if (!entry) return undefined;
    if (entry.expiresAtMs === null || entry.expiresAtMs > Date.now()) return entry.value;
    return undefined;
  }

  #fetchShared(
    key: string,
    flightKey: string,
    request: CredentialRequest,
    minTtl: number,
    force: boolean,
  ): Promise<Credential> {
    let flight = this.#inflight.get(flightKey);
    if (!flight) {
      flight = this.#fetchCredential(request, minTtl, force)
        .then(
          (credential) => {
            this.#store(key, credential, force, 0);
            return credential;
          },
          (error: unknown) => {
            if (error instanceof AuthpipeError) {
              if (error.status === 404 || error.status === 410) {
                this.#cache.delete(key);
              } else if (!force && error.isTransient) {
                const cached = this.#usableWhileUnreachable(key);
                if (cached) return cached;
              }
            }
            throw error;
          },
        )
        .finally(() => {
          this.#inflight.delete(flightKey);
        });
      this.#inflight.set(flightKey, flight);
    }
    return flight.then(copyCredential);
  }

  #refreshInBackground(key: string, request: CredentialRequest, minTtl: number): void {
    if (this.#background.has(key)) return;
    const entry = this.#cache.peek(key);
    if (entry && entry.backgroundNotBefore > Date.now()) return;
    // Ask the server for a credential that outlives the whole window, so that it refreshes at the
    // provider if its own copy is inside the window too.
    const ttl = minTtl + this.refreshAheadSeconds;
    const job = this.#fetchCredential(request, ttl, false)
      .then(
        (credential) => {
          this.#store(key, credential, false, Date.now() + BACKGROUND_COOLDOWN_MS);
        },
        (error: unknown) => {
          // Swallowed: the cached credential stays and is served until it is due.
          if (error instanceof AuthpipeError && (error.status === 404 || error.status === 410)) {
            this.#cache.delete(key);
            return;
          }
          const current = this.#cache.peek(key);
          if (current) current.backgroundNotBefore = Date.now() + BACKGROUND_COOLDOWN_MS;
        },
      )
      .finally(() => {
        this.#background.delete(key);
      });
    this.#background.set(key, job);
  }

  #store(key: string, credential: Credential, force: boolean, backgroundNotBefore: number): void {
    const expiresAtMs = credential.expiresAt === null ? null : credential.expiresAt.getTime();
    const existing = this.#cache.peek(key);
    // Never replace a credential with one that expires earlier (a slow response racing a newer
    // one), unless the caller forced a refresh.
    if (
      !force &&
      existing &&
      existing.expiresAtMs !== null &&
      expiresAtMs !== null &&
      expiresAtMs < existing.expiresAtMs
    ) {
      return;
    }
    this.#cache.set(key, { value: credential, expiresAtMs, storedAtMs: Date.now(), backgroundNotBefore });
  }

  async #fetchCredential(request: CredentialRequest, minTtl: number, force: boolean): Promise<Credential> {
    const query = new URLSearchParams();
    query.set('provider', request.provider);
    query.set('tenant_id', request.tenantId);
    query.set('user_id', request.userId);
    query.set('min_ttl', String(Math.ceil(minTtl)));
    if (force) query.set('force_refresh', 'true');
    if (request.resource !== null) query.set('resource', request.resource);
    const body = await this.#request('GET', `/v1/credentials?${query.toString()}`);
    return parseCredential(body);
  }

  // ---------------------------------------------------------------------------------------------
  // Connect sessions and connections

  /** Create a connect session for a browser: `POST /v1/connect-sessions`. */
  async createConnectSession(params: CreateConnectSessionParams): Promise<ConnectSession> {
    const body: Record<string, unknown> = {
      tenant_id: requireString('tenantId', params.tenantId),
      user_id: requireString('userId', params.userId),
    };
    if (params.allowedProviders !== undefined) body.allowed_providers = params.allowedProviders;
    if (params.scopes !== undefined) body.scopes = params.scopes;
    if (params.origin !== undefined) body.origin = params.origin;
    if (params.returnUrl !== undefined) body.return_url = params.returnUrl;
    const o = asObject(await this.#request('POST', '/v1/connect-sessions', body));
    if (typeof o.token !== 'string') {
      throw new AuthpipeError('invalid_response', 'Authpipe answered without a session token', { status: 201 });
    }
    return {
      token: o.token,
      connectUrl: asString(o.connect_url),
      // Sessions live 30 minutes (contract); used only if the server omitted the field.
      expiresAt: parseDate(o.expires_at) ?? new Date(Date.now() + 30 * 60 * 1000),
    };
  }

  /** `GET /v1/connections/{id}`. */
  async getConnection(id: string): Promise<Connection> {
    const path = `/v1/connections/${encodeURIComponent(requireString('id', id))}`;
    return parseConnection(await this.#request('GET', path));
  }

  /**
   * `GET /v1/connections` with filters. Await it for one page, or iterate it with `for await` to
   * walk every page through `next_cursor`.
   */
  listConnections(params: ListConnectionsParams = {}): ConnectionList {
    const first = this.#listPage(params);
    // Iterating only (never awaiting) must not leave an unhandled rejection behind.
    first.catch(() => undefined);
    const pages = this.#pagesFrom(first, params);
    const list = first as ConnectionList;
    Object.defineProperty(list, Symbol.asyncIterator, {
      value: async function* (): AsyncGenerator<Connection> {
        for await (const page of pages) yield* page.connections;
      },
    });
    return list;
  }

  /** Every page of `GET /v1/connections`, following `next_cursor`. */
  listConnectionPages(params: ListConnectionsParams = {}): AsyncGenerator<ConnectionPage> {
    return this.#pagesFrom(this.#listPage(params), params);
  }

  async *#pagesFrom(first: Promise<ConnectionPage>, params: ListConnectionsParams): AsyncGenerator<ConnectionPage> {
    let page = await first;
    yield page;
    while (page.nextCursor) {
      page = await this.#listPage({ ...params, cursor: page.nextCursor });
      yield page;
    }
  }

  async #listPage(params: ListConnectionsParams): Promise<ConnectionPage> {
    const query = new URLSearchParams();
    if (params.tenantId !== undefined) query.set('tenant_id', params.tenantId);
    if (params.userId !== undefined) query.set('user_id', params.userId);
    if (params.provider !== undefined) query.set('provider', params.provider);
    if (params.status !== undefined) query.set('status', params.status);
    if (params.limit !== undefined) query.set('limit', String(params.limit));
    if (params.cursor !== undefined) query.set('cursor', params.cursor);
    const qs = query.toString();
    const o = asObject(await this.#request('GET', `/v1/connections${qs ? `?${qs}` : ''}`));
    return {
      connections: Array.isArray(o.connections) ? o.connections.map(parseConnection) : [],
      nextCursor: typeof o.next_cursor === 'string' && o.next_cursor !== '' ? o.next_cursor : null,
    };
  }

  /** `DELETE /v1/connections/{id}`: revokes at the provider where it can and erases the secrets. */
  async deleteConnection(id: string): Promise<void> {
    const path = `/v1/connections/${encodeURIComponent(requireString('id', id))}`;
    await this.#request('DELETE', path);
    this.#evictConnection(id);
  }

  /** `POST /v1/connections/{id}/refresh`: refresh at the provider now. */
  async refreshConnection(id: string): Promise<Connection> {
    const path = `/v1/connections/${encodeURIComponent(requireString('id', id))}/refresh`;
    const connection = parseConnection(await this.#request('POST', path));
    this.#evictConnection(id);
    return connection;
  }

  /** `POST /v1/connections/{id}/check`: health check now. */
  async checkConnection(id: string): Promise<Connection> {
    const path = `/v1/connections/${encodeURIComponent(requireString('id', id))}/check`;
    return parseConnection(await this.#request('POST', path));
  }

  #evictConnection(connectionId: string): void {
    for (const [key, entry] of [...this.#cache.entries()]) {
      if (entry.value.connectionId === connectionId) this.#cache.delete(key);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // HTTP

  async #request(method: string, path: string, body?: unknown): Promise<unknown> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#attempt(method, path, body);
      } catch (error) {
        if (!(error instanceof AuthpipeError) || !isRetryable(error) || attempt >= this.retries) throw error;
        await sleep(backoffDelay(attempt, this.retryDelayMs));
      }
    }
  }

  async #attempt(method: string, path: string, body?: unknown): Promise<unknown> {
    const controller = new AbortController();
    const timer = this.timeoutMs > 0 ? setTimeout(() => controller.abort(), this.timeoutMs) : undefined;
    const headers: Record<string, string> = {
      authorization: `Bearer ${this.#secretKey}`,
      accept: 'application/json',
      'user-agent': `authpipe-node/${SDK_VERSION}`,
    };
    const init: { method: string; headers: Record<string, string>; body?: string; signal: AbortSignal } = {
      method,
      headers,
      signal: controller.signal,
    };
    if (body !== undefined) {
      headers['content-type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    try {
      let status: number;
      let text: string;
      try {
        const response = await this.#fetch(`${this.baseUrl}${path}`, init);
        status = response.status;
        text = await response.text();
      } catch (error) {
        throw this.#transportError(error, controller.signal.aborted);
      }
      let json: unknown = undefined;
      let parsedOk = true;
      if (text !== '') {
        try {
          json = JSON.parse(text);
        } catch {
          parsedOk = false;
        }
      }
      if (status >= 200 && status < 300) {
        if (!parsedOk) {
          throw new AuthpipeError('invalid_response', `Authpipe answered HTTP ${status} with a body that is not JSON`, {
            status,
          });
        }
        return json;
      }
      const err = asObject(asObject(json).error);
      const code = typeof err.code === 'string' && err.code !== '' ? err.code : defaultCode(status);
      const message =
        typeof err.message === 'string' && err.message !== '' ? err.message : `Authpipe answered HTTP ${status}`;
      throw errorFromResponse(status, code, this.#redact(message));
    } finally {
      if (timer !== undefined) clearTimeout(timer);
    }
  }

  #transportError(error: unknown, timedOut: boolean): AuthpipeError {
    const where = safeOrigin(this.baseUrl);
    if (timedOut) {
      return new AuthpipeError('timeout', `Authpipe at ${where} did not answer within ${this.timeoutMs} ms`, {
        cause: this.#safeCause(error),
      });
    }
    let detail = error instanceof Error && error.message ? `: ${this.#redact(error.message)}` : '';
    // undici puts the system error (ECONNREFUSED, ENOTFOUND, …) in `cause`.
    const code = error instanceof Error ? (error.cause as { code?: unknown } | undefined)?.code : undefined;
    if (typeof code === 'string' && /^[A-Z0-9_]+$/.test(code)) detail += ` (${code})`;
    return new AuthpipeError('network_error', `Could not reach Authpipe at ${where}${detail}`, {
      cause: this.#safeCause(error),
    });
  }

  /** The underlying error, unless it mentions the secret key somewhere (then a redacted copy). */
  #safeCause(error: unknown): unknown {
    let text: string;
    try {
      text = error instanceof Error ? `${error.message}\n${error.stack ?? ''}\n${String(error.cause ?? '')}` : String(error);
    } catch {
      return undefined;
    }
    if (!text.includes(this.#secretKey)) return error;
    return new Error(this.#redact(error instanceof Error ? error.message : text));
  }

  #redact(text: string): string {
    return text.split(this.#secretKey).join('[redacted]');
  }

  // ---------------------------------------------------------------------------------------------
  // Never show the secret key.

  toString(): string {
    return `Authpipe { baseUrl: '${this.baseUrl}' }`;
  }

  toJSON(): { baseUrl: string } {
    return { baseUrl: this.baseUrl };
  }

  [inspectSymbol](): string {
    return this.toString();
  }
}

interface CredentialRequest {
  provider: string;
  tenantId: string;
  userId: string;
  resource: string | null;
}

function defaultCode(status: number): string {
  if (status === 400) return 'invalid_request';
  if (status === 401) return 'unauthorized';
  if (status === 404) return 'not_found';
  if (status === 410) return 'connection_revoked';
  if (status === 429) return 'rate_limited';
  if (status >= 500) return 'server_error';
  return 'http_error';
}

function safeOrigin(baseUrl: string): string {
  try {
    const url = new URL(baseUrl);
    return `${url.protocol}//${url.host}${url.pathname === '/' ? '' : url.pathname}`;
  } catch {
    return 'the configured baseUrl';
  }
}
