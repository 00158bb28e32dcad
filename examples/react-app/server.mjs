// The example app's backend: plain node:http, no framework.
//   GET /api/config                  → where browsers reach Authpipe, and who is "signed in"
//   GET /api/authpipe/session        → a connect session for that tenant/user (createConnectSession)
//   GET /api/connections             → that user's connections (listConnections): what the page
//                                      shows as "Connected as …"
//   GET /api/credential?provider=…   → the stored credential (getCredential): the backend half
//   anything else                    → the built page from dist/
//
// Environment: AUTHPIPE_SECRET_KEY (required), AUTHPIPE_URL (default http://127.0.0.1:8080),
// AUTHPIPE_PUBLIC_URL (what browsers use, default AUTHPIPE_URL), PORT (default 3000),
// HOST (default 127.0.0.1), APP_ORIGIN (default http://localhost:PORT: the origin the page is
// opened at, where Authpipe posts the popup's result), TENANT_ID / USER_ID (default org_acme / user_123).
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Authpipe, AuthpipeError } from '@authpipe/node';

const PORT = Number(process.env.PORT ?? 3000);
const HOST = process.env.HOST ?? '127.0.0.1';
const AUTHPIPE_URL = process.env.AUTHPIPE_URL ?? 'http://127.0.0.1:8080';
const AUTHPIPE_PUBLIC_URL = process.env.AUTHPIPE_PUBLIC_URL ?? AUTHPIPE_URL;
const APP_ORIGIN = process.env.APP_ORIGIN ?? `http://localhost:${PORT}`;
// A real app takes these from its own login session; the example has one fixed user.
const TENANT_ID = process.env.TENANT_ID ?? 'org_acme';
const USER_ID = process.env.USER_ID ?? 'user_123';
const PROVIDERS = ['spotify', 'bluesky'];

const DIST = fileURLToPath(new URL('./dist/', import.meta.url));
const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
};

const authpipe = new Authpipe({ secretKey: process.env.AUTHPIPE_SECRET_KEY, baseUrl: AUTHPIPE_URL });

/**
 * The signed-in user's connections, with what the page shows of them. Authpipe's connection
 * objects hold no secret, and the secret key that lists them stays here, server-side.
 * `GET /v1/connections?tenant_id=&user_id=`, every page (the SDK follows `next_cursor`).
 */
async function userConnections() {
  const connections = [];
  for await (const connection of authpipe.listConnections({ tenantId: TENANT_ID, userId: USER_ID })) {
    const { id, provider, status, account, createdAt } = connection;
    connections.push({ id, provider, status, account, createdAt });
  }
  return connections;
}

function send(res, status, body, type = 'application/json') {
  const data = type === 'application/json' ? JSON.stringify(body) : body;
  res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store' });
  res.end(data);
}

function sendError(res, error) {
  if (error instanceof AuthpipeError) {
    send(res, error.status && error.status < 500 ? error.status : 502, { error: { code: error.code, message: error.message } });
  } else {
    console.error(error);
    send(res, 500, { error: { code: 'internal_error', message: 'internal error' } });
  }
}

async function serveStatic(res, pathname) {
  const relative = normalize(decodeURIComponent(pathname)).replace(/^([/\\])+/, '');
  let file = join(DIST, relative);
  if (!file.startsWith(DIST) || relative === '' || relative.endsWith(sep)) file = join(DIST, 'index.html');
  try {
    const body = await readFile(file);
    res.writeHead(200, { 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream' });
    res.end(body);
  } catch {
    if (extname(file)) return send(res, 404, 'not found', 'text/plain; charset=utf-8');
    try {
      send(res, 200, await readFile(join(DIST, 'index.html')), 'text/html; charset=utf-8');
    } catch {
      send(res, 500, 'dist/index.html missing: run `npm run build` first', 'text/plain; charset=utf-8');
    }
  }
}

const server = createServer(async (req, res) => {
  const url = new URL(req.url ?? '/', 'http://internal');
  try {
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, { error: { code: 'method_not_allowed' } });
    switch (url.pathname) {
      case '/api/config':
        return send(res, 200, { authpipeUrl: AUTHPIPE_PUBLIC_URL, tenantId: TENANT_ID, userId: USER_ID });
      case '/api/authpipe/session': {
        const session = await authpipe.createConnectSession({
          tenantId: TENANT_ID,
          userId: USER_ID,
          allowedProviders: PROVIDERS,
          origin: APP_ORIGIN, // the popup's result is posted to this exact origin only
          returnUrl: `${APP_ORIGIN}/`, // where a popup-blocked, full-page flow comes back to
        });
        return send(res, 200, { token: session.token, expiresAt: session.expiresAt });
      }
      case '/api/connections':
        return send(res, 200, { connections: await userConnections() });
      case '/api/credential': {
        const provider = url.searchParams.get('provider') ?? '';
        if (!PROVIDERS.includes(provider)) return send(res, 400, { error: { code: 'invalid_request', message: 'unknown provider' } });
        const cred = await authpipe.getCredential({ provider, tenantId: TENANT_ID, userId: USER_ID });
        // An example only: a real backend uses the credential itself and never hands it to a browser.
        return send(res, 200, { credential: cred.credential, connectionId: cred.connectionId, expiresAt: cred.expiresAt, scopes: cred.scopes });
      }
      default:
        if (url.pathname.startsWith('/api/')) return send(res, 404, { error: { code: 'not_found' } });
        return serveStatic(res, url.pathname);
    }
  } catch (error) {
    sendError(res, error);
  }
});

server.listen(PORT, HOST, () => {
  console.log(`example app on ${APP_ORIGIN} (listening on ${HOST}:${PORT}), Authpipe at ${AUTHPIPE_URL}`);
});

for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => server.close(() => process.exit(0)));
