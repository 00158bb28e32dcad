/** The subset of the WHATWG `fetch` signature the SDK uses. The platform `fetch` satisfies it. */
export type FetchLike = (url: string, init: FetchInit) => Promise<ResponseLike>;

export interface FetchInit {
  method: string;
  headers: Record<string, string>;
  body?: string;
  signal: AbortSignal;
}

/** The subset of the WHATWG `Response` the SDK reads. */
export interface ResponseLike {
  readonly status: number;
  text(): Promise<string>;
}

export interface AuthpipeOptions {
  /** Project secret key (`ap_sk_…`). Default: `process.env.AUTHPIPE_SECRET_KEY`. Required. */
  secretKey?: string;
  /** Authpipe server URL. Default: `process.env.AUTHPIPE_URL`, else `http://127.0.0.1:8080`. */
  baseUrl?: string;
  /** Maximum number of credentials kept in the in-memory LRU cache. Default 1000; 0 disables caching. */
  cacheSize?: number;
  /** Timeout of one HTTP attempt, in milliseconds (AbortController). Default 10000; 0 disables the timeout. */
  timeoutMs?: number;
  /** Extra attempts after a network error, a timeout or a 5xx. Default 2 (so 3 attempts at most). 4xx answers are never retried. */
  retries?: number;
  /** Base delay of the exponential backoff between attempts, in milliseconds. Default 200 (then 400, 800, … capped at 5000, with jitter). */
  retryDelayMs?: number;
  /** Width of the refresh-ahead window above `minTtl`, in seconds. Default 60. */
  refreshAheadSeconds?: number;
  /** How long a credential whose `expires_at` is null is served from the cache, in seconds. Default 300. */
  noExpiryCacheSeconds?: number;
  /** A `fetch` implementation. Default: the platform's `globalThis.fetch`. */
  fetch?: FetchLike;
}

export interface GetCredentialParams {
  provider: string;
  tenantId: string;
  userId: string;
  /** The credential must have more than this many seconds left; otherwise it is refreshed first. Default 60. */
  minTtl?: number;
  /** Skip the cache and ask the server to refresh at the provider now (`force_refresh=true`). */
  forceRefresh?: boolean;
  /** One of the connection's `resources` (e.g. a Facebook Page, `page:123`): returns that resource's own token. */
  resource?: string | null;
}

export interface Credential {
  /** The string to put in `Authorization: Bearer …` at the provider. */
  credential: string;
  /** Usually `"bearer"`. */
  tokenType: string;
  /** When the credential expires, or `null` when the provider gave no expiry. */
  expiresAt: Date | null;
  connectionId: string;
  provider: string;
  scopes: string[];
}

export interface CreateConnectSessionParams {
  tenantId: string;
  userId: string;
  /** Providers the session may connect; default: every configured provider. */
  allowedProviders?: string[];
  /** Scopes to request, per provider: `{ spotify: ['user-read-email'] }`. */
  scopes?: Record<string, string[]>;
  /** The origin of the page that opens the popup (`https://app.example.com`): the only origin the result is posted to. */
  origin?: string;
  /** Where the browser goes after a full-page (non-popup) flow; receives `?connection_id=…`. */
  returnUrl?: string;
}

export interface ConnectSession {
  /** `ap_cs_…`: safe to hand to a browser; it can only start connections for that tenant and user. */
  token: string;
  /** The hosted connect page: `{PUBLIC_URL}/connect?session=ap_cs_…`. */
  connectUrl: string;
  expiresAt: Date;
}

export type ConnectionStatus = 'active' | 'error' | 'revoked';

export interface Connection {
  id: string;
  provider: string;
  tenantId: string;
  userId: string;
  status: ConnectionStatus | (string & {});
  account: { id: string; name: string | null } | null;
  resources: Array<{ id: string; name: string | null }>;
  scopes: string[];
  expiresAt: Date | null;
  createdAt: Date | null;
  lastRefreshedAt: Date | null;
  lastCheckedAt: Date | null;
  lastError: { code: string; message: string; at: Date | null } | null;
}

export interface ListConnectionsParams {
  tenantId?: string;
  userId?: string;
  provider?: string;
  status?: ConnectionStatus | (string & {});
  /** Page size. */
  limit?: number;
  /** `nextCursor` of a previous page. */
  cursor?: string;
}

export interface ConnectionPage {
  connections: Connection[];
  /** Pass as `cursor` to get the next page; `null` on the last page. */
  nextCursor: string | null;
}

/**
 * What `listConnections` returns: a promise of the first page that is also an async iterable over
 * every connection of every page (`for await (const c of authpipe.listConnections({ tenantId }))`).
 */
export type ConnectionList = Promise<ConnectionPage> & AsyncIterable<Connection>;
