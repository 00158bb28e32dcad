// The default (platform) fetch against a throwaway HTTP server on the loopback interface.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Authpipe, ConnectionRevoked } from '../src/index.js';
import { SECRET } from './helpers.js';

let server: http.Server;
let baseUrl: string;
const seen: Array<{ url: string; authorization: string | undefined; userAgent: string | undefined }> = [];

beforeAll(async () => {
  server = http.createServer((req, res) => {
    seen.push({ url: req.url ?? '', authorization: req.headers.authorization, userAgent: req.headers['user-agent'] });
    const url = new URL(req.url ?? '/', 'http://localhost');
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (url.searchParams.get('user_id') === 'slow') return; // never answers
    if (url.searchParams.get('user_id') === 'gone') {
      return send(410, { error: { code: 'connection_revoked', message: 'The provider rejected the grant' } });
    }
    send(200, {
      credential: 'tok_real',
      token_type: 'bearer',
      expires_at: new Date(Date.now() + 3600_000).toISOString(),
      connection_id: 'conn_real',
      provider: url.searchParams.get('provider'),
      scopes: ['a'],
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

describe('platform fetch', () => {
  it('gets a credential, sends the key and a user agent, and caches it', async () => {
    const ap = new Authpipe({ secretKey: SECRET, baseUrl });
    const cred = await ap.getCredential({ provider: 'spotify', tenantId: 'org_acme', userId: 'user_123' });
    await ap.getCredential({ provider: 'spotify', tenantId: 'org_acme', userId: 'user_123' });
    expect(cred).toMatchObject({ credential: 'tok_real', connectionId: 'conn_real', provider: 'spotify' });
    expect(seen).toHaveLength(1);
    expect(seen[0]!.authorization).toBe(`Bearer ${SECRET}`);
    expect(seen[0]!.userAgent).toMatch(/^authpipe-node\//);
  });

  it('maps a real 410', async () => {
    const ap = new Authpipe({ secretKey: SECRET, baseUrl });
    await expect(ap.getCredential({ provider: 'spotify', tenantId: 'org_acme', userId: 'gone' })).rejects.toBeInstanceOf(
      ConnectionRevoked,
    );
  });

  it('aborts a request that takes longer than timeoutMs', async () => {
    const ap = new Authpipe({ secretKey: SECRET, baseUrl, timeoutMs: 50, retries: 0 });
    const started = Date.now();
    await expect(ap.getCredential({ provider: 'spotify', tenantId: 'org_acme', userId: 'slow' })).rejects.toMatchObject({
      code: 'timeout',
    });
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('a refused connection is a network_error naming the system error, without the key', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const ap = new Authpipe({ secretKey: SECRET, baseUrl: `http://127.0.0.1:${port}`, retries: 0 });
    const error = (await ap
      .getCredential({ provider: 'spotify', tenantId: 'org_acme', userId: 'user_123' })
      .catch((e: unknown) => e)) as Error;
    expect(error).toMatchObject({ code: 'network_error', status: undefined });
    expect(error.message).toMatch(/ECONNREFUSED/);
    expect(error.message).not.toContain(SECRET);
  });
});
