import { act, fireEvent, render, screen } from '@testing-library/react';
import { userEvent } from '@testing-library/user-event';
import { StrictMode } from 'react';
import type { ReactElement, ReactNode } from 'react';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { AuthpipeProvider, ConnectButton, POPUP_POLL_MS, providerDisplayName, useConnect } from '../src/index.js';
import type { ConnectButtonProps, ConnectButtonRenderState } from '../src/index.js';

const BASE = 'https://auth.example.test';
const TOKEN = 'ap_cs_test_token';
const CONNECTION = { id: 'conn_1', provider: 'spotify', tenant_id: 'org_acme', user_id: 'user_123', status: 'active' };

interface FakePopup {
  closed: boolean;
  location: { href: string };
  close: ReturnType<typeof vi.fn>;
  focus: ReturnType<typeof vi.fn>;
}

function fakePopup(): FakePopup {
  const popup: FakePopup = {
    closed: false,
    location: { href: 'about:blank' },
    close: vi.fn(() => {
      popup.closed = true;
    }),
    focus: vi.fn(),
  };
  return popup;
}

function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Let promise callbacks run inside act(). */
async function settle() {
  await act(async () => {
    for (let i = 0; i < 5; i++) await Promise.resolve();
  });
}

function post(data: unknown, { origin = BASE, source }: { origin?: string; source: unknown }) {
  act(() => {
    const event = new MessageEvent('message', { data, origin });
    Object.defineProperty(event, 'source', { value: source });
    window.dispatchEvent(event);
  });
}

function setup(
  props: Partial<ConnectButtonProps> = {},
  {
    popup = fakePopup() as FakePopup | null,
    getSessionToken = vi.fn(() => Promise.resolve(TOKEN)) as () => Promise<string>,
    baseUrl = BASE,
    wrap = (node: ReactNode) => node,
  } = {},
) {
  const log: string[] = [];
  const open = vi.spyOn(window, 'open').mockImplementation(() => {
    log.push('open');
    return popup as unknown as Window;
  });
  const getter = vi.fn(() => {
    log.push('getSessionToken');
    return getSessionToken();
  });
  const onSuccess = vi.fn();
  const onError = vi.fn();
  const utils = render(
    wrap(
      <AuthpipeProvider baseUrl={baseUrl} getSessionToken={getter}>
        <ConnectButton provider="spotify" onSuccess={onSuccess} onError={onError} {...props} />
      </AuthpipeProvider>,
    ) as ReactElement,
  );
  const button = screen.getByRole('button');
  const live = screen.getByRole('status');
  return { ...utils, button, live, open, getter, onSuccess, onError, popup, log };
}

beforeEach(() => {
  vi.useFakeTimers();
});

describe('ConnectButton rendering and accessibility', () => {
  it('is a real <button type="button"> labelled "Connect Spotify", unstyled but for its class', () => {
    const { button, live } = setup();
    expect(button.tagName).toBe('BUTTON');
    expect(button.getAttribute('type')).toBe('button');
    expect(button.textContent).toBe('Connect Spotify');
    expect(button.className).toBe('authpipe-connect-button');
    expect(button.getAttribute('aria-busy')).toBe('false');
    expect(button.getAttribute('style')).toBeNull();
    expect(live.getAttribute('aria-live')).toBe('polite');
    expect(live.textContent).toBe('');
    button.focus();
    expect(document.activeElement).toBe(button);
  });

  it('takes children as the label, appends className, passes other button attributes', () => {
    const { button } = setup({ children: 'Link my music', className: 'mine', id: 'spotify-btn', title: 't' });
    expect(button.textContent).toBe('Link my music');
    expect(button.className).toBe('authpipe-connect-button mine');
    expect(button.id).toBe('spotify-btn');
    expect(button.title).toBe('t');
  });

  it('aria-busy and the live region follow the flow: Connecting… then Connected', async () => {
    const { button, live, popup } = setup();
    fireEvent.click(button);
    expect(button.getAttribute('aria-busy')).toBe('true');
    expect(button.getAttribute('data-status')).toBe('connecting');
    expect(live.textContent).toBe('Connecting…');
    await settle();
    post({ type: 'authpipe:connect', ok: true, connection: CONNECTION }, { source: popup });
    expect(button.getAttribute('aria-busy')).toBe('false');
    expect(button.getAttribute('data-status')).toBe('connected');
    expect(live.textContent).toBe('Connected');
  });

  it('disabled: a click opens nothing and asks for no token', () => {
    const { button, open, getter } = setup({ disabled: true });
    expect((button as HTMLButtonElement).disabled).toBe(true);
    fireEvent.click(button);
    expect(open).not.toHaveBeenCalled();
    expect(getter).not.toHaveBeenCalled();
  });

  it('default labels capitalise provider names', () => {
    expect(providerDisplayName('spotify')).toBe('Spotify');
    expect(providerDisplayName('github')).toBe('GitHub');
    expect(providerDisplayName('google-drive')).toBe('Google Drive');
    expect(providerDisplayName('bluesky')).toBe('Bluesky');
  });

  it('outside an AuthpipeProvider it throws a clear error', () => {
    vi.spyOn(console, 'error').mockImplementation(() => {});
    expect(() => render(<ConnectButton provider="spotify" />)).toThrow(/AuthpipeProvider/);
  });
});

describe('already connected (the connected prop)', () => {
  it('connected="ada": a "Connected as ada" line that describes a "Reconnect Spotify" button', () => {
    const { button, live } = setup({ connected: 'ada' });
    expect(button.textContent).toBe('Reconnect Spotify');
    expect(button.getAttribute('data-status')).toBe('connected');
    expect(button.getAttribute('data-connected')).toBe('true');
    expect(button.getAttribute('aria-busy')).toBe('false');
    const line = screen.getByText('Connected as ada');
    expect(line.className).toBe('authpipe-connect-account');
    expect(line.id).not.toBe('');
    expect(button.getAttribute('aria-describedby')).toBe(line.id);
    expect(screen.getByRole('button', { name: 'Reconnect Spotify', description: 'Connected as ada' })).toBe(button);
    // Nothing happened yet, so nothing is announced.
    expect(live.textContent).toBe('');
  });

  it('connected={true} (no account name): "Connected to Spotify"', () => {
    const { button } = setup({ connected: true });
    expect(screen.getByText('Connected to Spotify')).toBeTruthy();
    expect(button.textContent).toBe('Reconnect Spotify');
  });

  it.each([false, null, undefined, ''])('connected=%j is the plain "Connect Spotify" state', (connected) => {
    const { button } = setup({ connected });
    expect(button.textContent).toBe('Connect Spotify');
    expect(button.getAttribute('data-status')).toBe('idle');
    expect(button.hasAttribute('data-connected')).toBe(false);
    expect(button.hasAttribute('aria-describedby')).toBe(false);
    expect(screen.queryByText(/^Connected/)).toBeNull();
  });

  it("keeps the caller's aria-describedby next to the account line", () => {
    const { button } = setup({ connected: 'ada', 'aria-describedby': 'help' });
    const line = screen.getByText('Connected as ada');
    expect(button.getAttribute('aria-describedby')).toBe(`${line.id} help`);
  });

  it('two buttons on one page get distinct account-line ids', () => {
    vi.spyOn(window, 'open').mockReturnValue(null);
    render(
      <AuthpipeProvider baseUrl={BASE} getSessionToken={() => Promise.resolve(TOKEN)}>
        <ConnectButton provider="spotify" connected="ada" />
        <ConnectButton provider="github" connected="octocat" />
      </AuthpipeProvider>,
    );
    const spotify = screen.getByRole('button', { name: 'Reconnect Spotify' });
    const github = screen.getByRole('button', { name: 'Reconnect GitHub' });
    expect(spotify.getAttribute('aria-describedby')).not.toBe(github.getAttribute('aria-describedby'));
    expect(document.getElementById(github.getAttribute('aria-describedby')!)!.textContent).toBe('Connected as octocat');
  });

  it('Reconnect is reachable with Tab and starts the flow with Enter (popup opened synchronously) and with Space', async () => {
    // Real timers here: Testing Library's async wrapper around user-event waits on a real
    // setTimeout(0), which this file's fake timers would never fire.
    vi.useRealTimers();
    const user = userEvent.setup();
    const { button, open, popup, onSuccess, log } = setup({ connected: 'ada' });
    await user.tab();
    expect(document.activeElement).toBe(button);
    await user.keyboard('{Enter}');
    expect(open).toHaveBeenCalledTimes(1);
    expect(log.slice(0, 2)).toEqual(['open', 'getSessionToken']);
    expect(button.getAttribute('data-status')).toBe('connecting');
    expect(button.getAttribute('aria-busy')).toBe('true');
    expect(button.textContent).toBe('Reconnect Spotify');
    await settle();
    expect(popup!.location.href).toBe(`${BASE}/connect/spotify?session=${TOKEN}`);
    post({ type: 'authpipe:connect', ok: true, connection: CONNECTION }, { source: popup });
    expect(onSuccess).toHaveBeenCalledWith(CONNECTION);
    expect(button.getAttribute('data-status')).toBe('connected');

    popup!.closed = false;
    await user.keyboard(' ');
    expect(open).toHaveBeenCalledTimes(2);
  });

  it('a failed reconnect shows the error state and still says who is connected', async () => {
    const { button, live, popup, onError } = setup({ connected: 'ada' });
    fireEvent.click(button);
    await settle();
    post({ type: 'authpipe:connect', ok: false, code: 'access_denied' }, { source: popup });
    expect(onError).toHaveBeenCalledWith({ code: 'access_denied' });
    expect(button.getAttribute('data-status')).toBe('error');
    expect(live.textContent).toBe('Connection failed (access_denied)');
    expect(screen.getByText('Connected as ada')).toBeTruthy();
  });

  it('disabled in the connected state: nothing starts', () => {
    const { button, open } = setup({ connected: 'ada', disabled: true });
    fireEvent.click(button);
    expect(open).not.toHaveBeenCalled();
  });

  it('follows the prop: switches from "Connect" to "Reconnect" when the app learns of the connection', async () => {
    const { button, popup, rerender, getter } = setup();
    fireEvent.click(button);
    await settle();
    post({ type: 'authpipe:connect', ok: true, connection: CONNECTION }, { source: popup });
    expect(button.textContent).toBe('Connect Spotify');
    rerender(
      <AuthpipeProvider baseUrl={BASE} getSessionToken={getter}>
        <ConnectButton provider="spotify" connected="ada" />
      </AuthpipeProvider>,
    );
    expect(button.textContent).toBe('Reconnect Spotify');
    expect(screen.getByText('Connected as ada')).toBeTruthy();
  });

  it('a function child renders the label from the state, in every state, without the account line', async () => {
    const seen: ConnectButtonRenderState[] = [];
    const label = (state: ConnectButtonRenderState) => {
      seen.push(state);
      return state.connected ? `${state.providerName}: ${state.accountName} (switch)` : `Link ${state.providerName}`;
    };
    const { button, rerender, getter, popup } = setup({ children: label });
    expect(button.textContent).toBe('Link Spotify');
    expect(seen.at(-1)).toEqual({ status: 'idle', error: null, connected: false, accountName: null, providerName: 'Spotify' });

    rerender(
      <AuthpipeProvider baseUrl={BASE} getSessionToken={getter}>
        <ConnectButton provider="spotify" connected="ada">
          {label}
        </ConnectButton>
      </AuthpipeProvider>,
    );
    expect(button.textContent).toBe('Spotify: ada (switch)');
    expect(seen.at(-1)).toEqual({ status: 'connected', error: null, connected: true, accountName: 'ada', providerName: 'Spotify' });
    expect(screen.queryByText('Connected as ada')).toBeNull();
    expect(button.hasAttribute('aria-describedby')).toBe(false);

    fireEvent.click(button);
    expect(seen.at(-1)!.status).toBe('connecting');
    await settle();
    post({ type: 'authpipe:connect', ok: false, code: 'access_denied' }, { source: popup });
    expect(seen.at(-1)).toMatchObject({ status: 'error', error: { code: 'access_denied' }, connected: true });
  });
});

describe('popup flow', () => {
  it('opens the popup synchronously in the click, before the session token resolves, then navigates it', async () => {
    const token = deferred<string>();
    const { button, open, getter, popup, log } = setup({}, { getSessionToken: () => token.promise });

    fireEvent.click(button);
    // Synchronously, still inside the click: the popup is open and blank.
    expect(open).toHaveBeenCalledTimes(1);
    expect(open.mock.calls[0]![0]).toBe('about:blank');
    expect(open.mock.calls[0]![2]).toMatch(/popup/);
    expect(log).toEqual(['open', 'getSessionToken']);
    expect(getter).toHaveBeenCalledTimes(1);
    expect(popup!.location.href).toBe('about:blank');

    await act(async () => {
      token.resolve(TOKEN);
      await token.promise;
    });
    await settle();
    expect(popup!.location.href).toBe(`${BASE}/connect/spotify?session=${TOKEN}`);
  });

  it('encodes the provider and the token in the popup URL, and strips a trailing slash from baseUrl', async () => {
    const { button, popup } = setup(
      { provider: 'my provider' },
      { getSessionToken: () => Promise.resolve('ap_cs_a+b/c'), baseUrl: `${BASE}/` },
    );
    fireEvent.click(button);
    await settle();
    expect(popup!.location.href).toBe(`${BASE}/connect/my%20provider?session=ap_cs_a%2Bb%2Fc`);
  });

  it('ignores a message from the wrong origin', async () => {
    const { button, popup, onSuccess, onError } = setup();
    fireEvent.click(button);
    await settle();
    post({ type: 'authpipe:connect', ok: true, connection: CONNECTION }, { origin: 'https://evil.example', source: popup });
    post({ type: 'authpipe:connect', ok: true, connection: CONNECTION }, { origin: 'https://auth.example.test:8443', source: popup });
    post({ type: 'authpipe:connect', ok: true, connection: CONNECTION }, { origin: 'http://auth.example.test', source: popup });
    expect(onSuccess).not.toHaveBeenCalled();
    expect(onError).not.toHaveBeenCalled();
    expect(button.getAttribute('aria-busy')).toBe('true');
  });

  it('ignores a message with the wrong type, or not an object', async () => {
    const { button, popup, onSuccess, onError } = setup();
    fireEvent.click(button);
    await settle();
    post({ type: 'something-else', ok: true, connection: CONNECTION }, { source: popup });
    post({ ok: true, connection: CONNECTION }, { source: popup });
    post('authpipe:connect', { source: popup });
    post(null, { source: popup });
    expect(onSuccess).not.toHaveBeenCalled();
    expect(onError).not.toHaveBeenCalled();
  });

  it('ignores a message that does not come from the popup', async () => {
    const { button, onSuccess } = setup();
    fireEvent.click(button);
    await settle();
    post({ type: 'authpipe:connect', ok: true, connection: CONNECTION }, { source: window });
    post({ type: 'authpipe:connect', ok: true, connection: CONNECTION }, { source: fakePopup() });
    post({ type: 'authpipe:connect', ok: true, connection: CONNECTION }, { source: null });
    expect(onSuccess).not.toHaveBeenCalled();
  });

  it('the right origin, type and source → onSuccess(connection), once; the popup is closed', async () => {
    const { button, popup, onSuccess, onError } = setup();
    fireEvent.click(button);
    await settle();
    post({ type: 'authpipe:connect', ok: true, connection: CONNECTION }, { source: popup });
    expect(onSuccess).toHaveBeenCalledTimes(1);
    expect(onSuccess).toHaveBeenCalledWith(CONNECTION);
    expect(popup!.close).toHaveBeenCalled();
    // Later messages and the closed popup change nothing.
    post({ type: 'authpipe:connect', ok: true, connection: CONNECTION }, { source: popup });
    post({ type: 'authpipe:connect', ok: false, code: 'x' }, { source: popup });
    await act(async () => {
      await vi.advanceTimersByTimeAsync(POPUP_POLL_MS * 4);
    });
    expect(onSuccess).toHaveBeenCalledTimes(1);
    expect(onError).not.toHaveBeenCalled();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('ok:false → onError with the code and message', async () => {
    const { button, live, popup, onSuccess, onError } = setup();
    fireEvent.click(button);
    await settle();
    post({ type: 'authpipe:connect', ok: false, code: 'access_denied', message: 'The user said no' }, { source: popup });
    expect(onError).toHaveBeenCalledTimes(1);
    expect(onError).toHaveBeenCalledWith({ code: 'access_denied', message: 'The user said no' });
    expect(onSuccess).not.toHaveBeenCalled();
    expect(button.getAttribute('data-status')).toBe('error');
    expect(button.getAttribute('aria-busy')).toBe('false');
    expect(live.textContent).toBe('Connection failed: The user said no');
  });

  it('a popup closed by the user before any message → onError({ code: "popup_closed" })', async () => {
    const { button, live, popup, onSuccess, onError } = setup();
    fireEvent.click(button);
    await settle();
    popup!.closed = true;
    await act(async () => {
      await vi.advanceTimersByTimeAsync(POPUP_POLL_MS * 2);
    });
    expect(onError).toHaveBeenCalledTimes(1);
    expect(onError).toHaveBeenCalledWith({ code: 'popup_closed' });
    expect(onSuccess).not.toHaveBeenCalled();
    expect(live.textContent).toMatch(/cancelled/i);
    // Listener and timer are gone.
    expect(vi.getTimerCount()).toBe(0);
    post({ type: 'authpipe:connect', ok: true, connection: CONNECTION }, { source: popup });
    expect(onSuccess).not.toHaveBeenCalled();
  });

  it('a result posted just before the popup closed itself still wins over popup_closed', async () => {
    const { button, popup, onSuccess, onError } = setup();
    fireEvent.click(button);
    await settle();
    popup!.closed = true;
    await act(async () => {
      await vi.advanceTimersByTimeAsync(POPUP_POLL_MS); // first poll sees it closed
    });
    post({ type: 'authpipe:connect', ok: true, connection: CONNECTION }, { source: popup });
    await act(async () => {
      await vi.advanceTimersByTimeAsync(POPUP_POLL_MS * 3);
    });
    expect(onSuccess).toHaveBeenCalledWith(CONNECTION);
    expect(onError).not.toHaveBeenCalled();
  });

  it('a popup closed before the token arrives is not navigated, and reports popup_closed', async () => {
    const token = deferred<string>();
    const { button, popup, onError } = setup({}, { getSessionToken: () => token.promise });
    fireEvent.click(button);
    popup!.closed = true;
    await act(async () => {
      token.resolve(TOKEN);
      await vi.advanceTimersByTimeAsync(POPUP_POLL_MS * 2);
    });
    expect(popup!.location.href).toBe('about:blank');
    expect(onError).toHaveBeenCalledWith({ code: 'popup_closed' });
  });

  it('getSessionToken failure closes the popup → onError({ code: "session_failed" })', async () => {
    const { button, popup, onError, onSuccess } = setup(
      {},
      { getSessionToken: () => Promise.reject(new Error('backend down')) },
    );
    fireEvent.click(button);
    await settle();
    expect(popup!.close).toHaveBeenCalled();
    expect(onError).toHaveBeenCalledTimes(1);
    expect(onError).toHaveBeenCalledWith({ code: 'session_failed' });
    expect(onSuccess).not.toHaveBeenCalled();
    expect(popup!.location.href).toBe('about:blank');
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a getSessionToken that throws synchronously is a session_failed too', async () => {
    const { button, onError } = setup(
      {},
      {
        getSessionToken: () => {
          throw new Error('sync');
        },
      },
    );
    fireEvent.click(button);
    await settle();
    expect(onError).toHaveBeenCalledWith({ code: 'session_failed' });
  });

  it('a blocked popup falls back to a full-page redirect with location.assign', async () => {
    const assign = vi.fn();
    vi.stubGlobal('location', { href: 'https://app.example.test/settings', origin: 'https://app.example.test', assign });
    const { button, open, onError, onSuccess } = setup({}, { popup: null });
    fireEvent.click(button);
    expect(open).toHaveBeenCalledTimes(1);
    await settle();
    expect(assign).toHaveBeenCalledTimes(1);
    expect(assign).toHaveBeenCalledWith(`${BASE}/connect/spotify?session=${TOKEN}`);
    expect(onError).not.toHaveBeenCalled();
    expect(onSuccess).not.toHaveBeenCalled();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a second click while connecting focuses the popup instead of opening another', async () => {
    const { button, open, getter, popup } = setup();
    fireEvent.click(button);
    await settle();
    fireEvent.click(button);
    expect(open).toHaveBeenCalledTimes(1);
    expect(getter).toHaveBeenCalledTimes(1);
    expect(popup!.focus).toHaveBeenCalled();
  });

  it('can connect again after a failure', async () => {
    const { button, popup, open, onSuccess } = setup();
    fireEvent.click(button);
    await settle();
    post({ type: 'authpipe:connect', ok: false, code: 'access_denied' }, { source: popup });
    popup!.closed = false;
    fireEvent.click(button);
    await settle();
    expect(open).toHaveBeenCalledTimes(2);
    post({ type: 'authpipe:connect', ok: true, connection: CONNECTION }, { source: popup });
    expect(onSuccess).toHaveBeenCalledWith(CONNECTION);
  });

  it('unmounting cleans up the listener and the timer, and calls nothing afterwards', async () => {
    const token = deferred<string>();
    const removeListener = vi.spyOn(window, 'removeEventListener');
    const { button, popup, unmount, onSuccess, onError } = setup({}, { getSessionToken: () => token.promise });
    fireEvent.click(button);
    expect(vi.getTimerCount()).toBe(1);
    unmount();
    expect(vi.getTimerCount()).toBe(0);
    expect(removeListener).toHaveBeenCalledWith('message', expect.any(Function));
    // Still on our blank page: closed rather than left empty.
    expect(popup!.close).toHaveBeenCalled();
    await act(async () => {
      token.resolve(TOKEN);
      await vi.advanceTimersByTimeAsync(POPUP_POLL_MS * 4);
    });
    post({ type: 'authpipe:connect', ok: true, connection: CONNECTION }, { source: popup });
    expect(onSuccess).not.toHaveBeenCalled();
    expect(onError).not.toHaveBeenCalled();
  });

  it('a relative baseUrl is resolved against the page and its origin is the one accepted', async () => {
    const { button, popup, onSuccess } = setup({}, { baseUrl: '/authpipe' });
    fireEvent.click(button);
    await settle();
    expect(popup!.location.href).toBe(`${window.location.origin}/authpipe/connect/spotify?session=${TOKEN}`);
    post({ type: 'authpipe:connect', ok: true, connection: CONNECTION }, { origin: BASE, source: popup });
    expect(onSuccess).not.toHaveBeenCalled();
    post({ type: 'authpipe:connect', ok: true, connection: CONNECTION }, { origin: window.location.origin, source: popup });
    expect(onSuccess).toHaveBeenCalledWith(CONNECTION);
  });

  it('works under StrictMode', async () => {
    const { button, popup, onSuccess } = setup({}, { wrap: (node) => <StrictMode>{node}</StrictMode> });
    fireEvent.click(button);
    await settle();
    expect(popup!.location.href).toBe(`${BASE}/connect/spotify?session=${TOKEN}`);
    post({ type: 'authpipe:connect', ok: true, connection: CONNECTION }, { source: popup });
    expect(onSuccess).toHaveBeenCalledTimes(1);
  });

  it('uses the latest callbacks passed on re-render', async () => {
    const { button, popup, rerender, getter } = setup();
    const later = vi.fn();
    rerender(
      <AuthpipeProvider baseUrl={BASE} getSessionToken={getter}>
        <ConnectButton provider="spotify" onSuccess={later} />
      </AuthpipeProvider>,
    );
    fireEvent.click(button);
    await settle();
    post({ type: 'authpipe:connect', ok: true, connection: CONNECTION }, { source: popup });
    expect(later).toHaveBeenCalledWith(CONNECTION);
  });
});

describe('useConnect', () => {
  function Custom({ onSuccess, onError }: { onSuccess: () => void; onError: () => void }) {
    const { connect, status, error } = useConnect('github', { onSuccess, onError });
    return (
      <div>
        <button type="button" onClick={connect}>
          Link
        </button>
        <output data-testid="status">{status}</output>
        <output data-testid="error">{error?.code ?? ''}</output>
      </div>
    );
  }

  it('drives a custom button: idle → connecting → error, with the error exposed', async () => {
    const popup = fakePopup();
    const open = vi.spyOn(window, 'open').mockReturnValue(popup as unknown as Window);
    const onSuccess = vi.fn();
    const onError = vi.fn();
    render(
      <AuthpipeProvider baseUrl={BASE} getSessionToken={() => Promise.resolve(TOKEN)}>
        <Custom onSuccess={onSuccess} onError={onError} />
      </AuthpipeProvider>,
    );
    expect(screen.getByTestId('status').textContent).toBe('idle');
    fireEvent.click(screen.getByRole('button'));
    expect(open).toHaveBeenCalledWith('about:blank', expect.any(String), expect.any(String));
    expect(screen.getByTestId('status').textContent).toBe('connecting');
    await settle();
    expect(popup.location.href).toBe(`${BASE}/connect/github?session=${TOKEN}`);
    post({ type: 'authpipe:connect', ok: false, code: 'invalid_state' }, { source: popup });
    expect(screen.getByTestId('status').textContent).toBe('error');
    expect(screen.getByTestId('error').textContent).toBe('invalid_state');
    expect(onError).toHaveBeenCalledWith({ code: 'invalid_state' });
  });
});
