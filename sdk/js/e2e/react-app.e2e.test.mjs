// End to end, in a real browser: examples/react-app (its built page and node:http backend, on
// http://localhost:APP) next to `authpipe dev` (on http://127.0.0.1:AP, another origin), driven in
// Debian's headless Chromium by playwright-core. Never `playwright install`: it downloads a browser.
//
// Needs: /usr/bin/chromium, <repo>/.venv/bin/authpipe (`make test` creates both before test-js),
// sdk/js built (`npm run build`) and examples/react-app built (`npm run build` there).
// AUTHPIPE_BIN overrides the authpipe command.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { accessSync, constants, existsSync, mkdtempSync, readFileSync, rmSync, createWriteStream } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const TIMEOUT_MS = 15_000;
const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const APP_DIR = join(REPO, 'examples', 'react-app');
const AUTHPIPE_BIN = process.env.AUTHPIPE_BIN ?? join(REPO, '.venv', 'bin', 'authpipe');
const TENANT_ID = 'org_e2e';
const USER_ID = 'user_e2e';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Spawns a process with its output in a log file; returns { child, log, output() }. */
function start(command, args, options, logPath) {
  const out = createWriteStream(logPath);
  const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.pipe(out);
  child.stderr.pipe(out);
  return { child, output: () => (existsSync(logPath) ? readFileSync(logPath, 'utf8').slice(-4000) : '') };
}

async function waitFor(what, proc, check, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.child.exitCode !== null) throw new Error(`${what} exited with ${proc.child.exitCode}:\n${proc.output()}`);
    if (Date.now() > deadline) throw new Error(`${what} not ready within ${timeoutMs} ms:\n${proc.output()}`);
    try {
      if (await check()) return;
    } catch {
      // not up yet
    }
    await sleep(100);
  }
}

async function stop(proc) {
  if (!proc || proc.child.exitCode !== null || proc.child.signalCode !== null) return;
  const exited = new Promise((resolve) => proc.child.once('exit', resolve));
  proc.child.kill('SIGINT');
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

let dir;
let authpipe;
let app;
let browser;
let authpipeUrl;
let appUrl;
let secretKey;

before(async () => {
  try {
    accessSync(CHROMIUM, constants.X_OK);
  } catch {
    throw new Error(`Chromium not found at ${CHROMIUM}: install Debian's chromium (\`make browser\`); never \`playwright install\``);
  }
  assert.ok(existsSync(AUTHPIPE_BIN), `${AUTHPIPE_BIN} missing: run \`make install\` (or \`make test\`) first`);
  assert.ok(existsSync(join(APP_DIR, 'dist', 'index.html')), 'examples/react-app is not built: `cd examples/react-app && npm ci && npm run build`');

  dir = mkdtempSync(join(tmpdir(), 'authpipe-e2e-'));
  const [apPort, appPort] = [await freePort(), await freePort()];
  authpipeUrl = `http://127.0.0.1:${apPort}`;
  appUrl = `http://localhost:${appPort}`;

  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AUTHPIPE_')));
  authpipe = start(AUTHPIPE_BIN, ['dev'], { cwd: dir, env: { ...env, AUTHPIPE_PORT: String(apPort), AUTHPIPE_PUBLIC_URL: authpipeUrl } }, join(dir, 'authpipe-dev.log'));
  const keyFile = join(dir, '.authpipe', 'default-secret-key');
  await waitFor('`authpipe dev`', authpipe, async () => existsSync(keyFile) && (await fetch(`${authpipeUrl}/healthz`)).ok);
  secretKey = readFileSync(keyFile, 'utf8').trim();

  app = start(
    process.execPath,
    ['server.mjs'],
    {
      cwd: APP_DIR,
      env: {
        ...env,
        PORT: String(appPort),
        HOST: '127.0.0.1',
        APP_ORIGIN: appUrl,
        AUTHPIPE_URL: authpipeUrl,
        AUTHPIPE_SECRET_KEY: secretKey,
        TENANT_ID,
        USER_ID,
      },
    },
    join(dir, 'example-app.log'),
  );
  await waitFor('the example backend', app, async () => (await fetch(`${appUrl}/api/config`)).ok);

  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
});

after(async () => {
  await browser?.close();
  await Promise.all([stop(app), stop(authpipe)]);
  if (dir && !process.env.KEEP_E2E_DIR) rmSync(dir, { recursive: true, force: true });
});

/** A fresh browser profile with the app page open. */
async function openApp(t) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  context.setDefaultTimeout(TIMEOUT_MS);
  context.setDefaultNavigationTimeout(TIMEOUT_MS);
  t.after(() => context.close());
  const page = await context.newPage();
  const consoleErrors = [];
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  await page.goto(`${appUrl}/`);
  await page.getByRole('heading', { name: 'Authpipe example app' }).waitFor();
  return { context, page, consoleErrors };
}

/** The Spotify ConnectButton: "Connect Spotify", or "Reconnect Spotify" once the user has a connection. */
const spotifyButton = (page) => page.getByRole('button', { name: /^(Connect|Reconnect) Spotify$/ });

async function openConsent(context, page) {
  const [popup] = await Promise.all([context.waitForEvent('page'), spotifyButton(page).click()]);
  await popup.waitForURL(/\/_sandbox\/spotify\/accounts\/authorize\?/);
  return popup;
}

test('Connect Spotify in the popup, onSuccess on the page, then the backend gets a credential the provider accepts', async (t) => {
  const { context, page, consoleErrors } = await openApp(t);
  await page.getByRole('button', { name: 'Connect Bluesky', exact: true }).waitFor();
  await page.getByRole('button', { name: 'Connect Spotify', exact: true }).waitFor();
  assert.equal(await page.getByText(/^Connected (as|to) /).count(), 0, 'a fresh user has no connection to show');

  const popup = await openConsent(context, page);
  await popup.getByLabel('Sign in as').fill('ada');
  const closed = popup.waitForEvent('close');
  await popup.getByRole('button', { name: 'Approve' }).click();
  await closed; // the callback page posted the result to the opener and closed itself

  const result = page.getByTestId('spotify-connected');
  await result.waitFor();
  const connectionId = await result.getAttribute('data-connection-id');
  assert.match(connectionId ?? '', /^conn_/);
  assert.match(await result.innerText(), /Connected conn_\S+ as ada \(active\)/);
  // The page reloads the user's connections from its backend: the button shows the connected state.
  const reconnect = page.getByRole('button', { name: 'Reconnect Spotify', exact: true });
  await reconnect.waitFor();
  assert.equal(await reconnect.getAttribute('data-status'), 'connected');
  const line = page.getByText('Connected as ada', { exact: true });
  assert.equal(await reconnect.getAttribute('aria-describedby'), await line.getAttribute('id'));

  // The backend's list: the user's connections through Authpipe's API, without any secret.
  const listed = await (await fetch(`${appUrl}/api/connections`)).json();
  const mine = listed.connections.find((c) => c.id === connectionId);
  assert.deepEqual([mine?.provider, mine?.status, mine?.account?.name], ['spotify', 'active', 'ada']);

  // A page opened later starts in the connected state (no "Connect" flash, no flow needed).
  await page.reload();
  await page.getByRole('heading', { name: 'Authpipe example app' }).waitFor();
  await page.getByText('Connected as ada', { exact: true }).waitFor();
  assert.equal(await page.getByRole('button', { name: 'Connect Spotify', exact: true }).count(), 0);
  assert.equal(await page.getByRole('button', { name: 'Reconnect Spotify', exact: true }).getAttribute('data-status'), 'connected');

  // The session was minted for the tenant/user the backend asks credentials for.
  const conn = await (await fetch(`${authpipeUrl}/v1/connections/${connectionId}`, { headers: { Authorization: `Bearer ${secretKey}` } })).json();
  assert.deepEqual([conn.tenant_id, conn.user_id, conn.provider, conn.status], [TENANT_ID, USER_ID, 'spotify', 'active']);

  // The backend half: @authpipe/node getCredential, then the token works at the (emulated) provider.
  const credResponse = await fetch(`${appUrl}/api/credential?provider=spotify`);
  assert.equal(credResponse.status, 200, await credResponse.clone().text());
  const cred = await credResponse.json();
  assert.equal(cred.connectionId, connectionId);
  assert.ok(cred.credential, 'a credential');
  assert.ok(!JSON.stringify(listed).includes(cred.credential), 'the connections list never carries a credential');
  const me = await fetch(`${authpipeUrl}/_sandbox/spotify/api/v1/me`, { headers: { Authorization: `Bearer ${cred.credential}` } });
  assert.equal(me.status, 200, await me.clone().text());
  const bad = await fetch(`${authpipeUrl}/_sandbox/spotify/api/v1/me`, { headers: { Authorization: 'Bearer not-a-token' } });
  assert.notEqual(bad.status, 200, 'the emulator must refuse an unknown token');

  assert.deepEqual(consoleErrors, []);
});

test('the user closes the popup: onError with popup_closed on the page, nothing stored', async (t) => {
  const { context, page, consoleErrors } = await openApp(t);
  const before = await fetch(`${authpipeUrl}/v1/connections?tenant_id=${TENANT_ID}&user_id=${USER_ID}`, { headers: { Authorization: `Bearer ${secretKey}` } });
  const countBefore = (await before.json()).connections.length;

  const popup = await openConsent(context, page);
  await popup.close();

  const error = page.getByTestId('spotify-error');
  await error.waitFor();
  assert.equal(await error.getAttribute('data-code'), 'popup_closed');
  assert.equal(await spotifyButton(page).getAttribute('data-status'), 'error');

  const afterList = await fetch(`${authpipeUrl}/v1/connections?tenant_id=${TENANT_ID}&user_id=${USER_ID}`, { headers: { Authorization: `Bearer ${secretKey}` } });
  assert.equal((await afterList.json()).connections.length, countBefore);
  assert.deepEqual(consoleErrors, []);
});

test('Connect Bluesky: the app-password form in the popup, onSuccess, then the accessJwt works at the emulated PDS', async (t) => {
  const { context, page, consoleErrors } = await openApp(t);
  const [popup] = await Promise.all([context.waitForEvent('page'), page.getByRole('button', { name: 'Connect Bluesky', exact: true }).click()]);
  await popup.waitForURL(/\/connect\/bluesky\?session=ap_cs_/);
  // The sandbox's default Bluesky account and its app password.
  await popup.locator('input[name="identifier"]').fill('sandbox.test');
  await popup.locator('input[name="app_password"]').fill('sand-boxa-ppps-swrd');
  const closed = popup.waitForEvent('close');
  await popup.locator('form button[type="submit"], form input[type="submit"]').first().click();
  await closed;

  const result = page.getByTestId('bluesky-connected');
  await result.waitFor();
  const connectionId = await result.getAttribute('data-connection-id');
  assert.match(connectionId ?? '', /^conn_/);

  const credResponse = await fetch(`${appUrl}/api/credential?provider=bluesky`);
  assert.equal(credResponse.status, 200, await credResponse.clone().text());
  const cred = await credResponse.json();
  assert.equal(cred.connectionId, connectionId);
  const session = await fetch(`${authpipeUrl}/_sandbox/bluesky/xrpc/com.atproto.server.getSession`, { headers: { Authorization: `Bearer ${cred.credential}` } });
  assert.equal(session.status, 200, await session.clone().text());
  assert.equal((await session.json()).handle, 'sandbox.test');
  assert.deepEqual(consoleErrors, []);
});
