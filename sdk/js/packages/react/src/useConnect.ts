'use client';

import { useCallback, useEffect, useRef, useState } from 'react';
import { useAuthpipeContext } from './context.js';
import type { AuthpipeContextValue } from './context.js';
import { useIsomorphicLayoutEffect } from './layout-effect.js';

/** The connection the Authpipe callback page posts back (as `GET /v1/connections/{id}` shows it: never a secret). */
export interface AuthpipeConnection {
  id: string;
  provider: string;
  tenant_id?: string;
  user_id?: string;
  status?: string;
  account?: { id: string; name?: string | null } | null;
  scopes?: string[];
  [key: string]: unknown;
}

/**
 * Why a connect attempt failed. `code` is one of `popup_closed` (the user closed the window),
 * `session_failed` (getSessionToken threw or rejected), `invalid_base_url`, or the code the Authpipe
 * callback page reported (`access_denied`, `invalid_state`, …).
 */
export interface ConnectError {
  code: string;
  message?: string;
}

export type ConnectStatus = 'idle' | 'connecting' | 'connected' | 'error';

export interface UseConnectOptions {
  onSuccess?: (connection: AuthpipeConnection) => void;
  onError?: (error: ConnectError) => void;
}

export interface UseConnectResult {
  /** Starts the flow. Call it directly from a click (or key) handler: it opens the popup synchronously. */
  connect: () => void;
  status: ConnectStatus;
  error: ConnectError | null;
}

/** The `type` of the message the Authpipe callback page posts to `window.opener`. */
export const CONNECT_MESSAGE_TYPE = 'authpipe:connect';
/** How often the hook checks whether the user closed the popup. */
export const POPUP_POLL_MS = 500;
const POPUP_WIDTH = 520;
const POPUP_HEIGHT = 720;

/** The URL that starts a connection at one provider (a 302 to the provider, or the server's app-password form). */
export function connectUrl(baseUrl: string, provider: string, token: string): string {
  return `${baseUrl.replace(/\/+$/, '')}/connect/${encodeURIComponent(provider)}?session=${encodeURIComponent(token)}`;
}

function popupFeatures(): string {
  let left = 0;
  let top = 0;
  try {
    left = Math.max(0, Math.round(window.screenX + (window.outerWidth - POPUP_WIDTH) / 2));
    top = Math.max(0, Math.round(window.screenY + (window.outerHeight - POPUP_HEIGHT) / 2));
  } catch {
    // Some embedded contexts forbid reading the window geometry.
  }
  return `popup=yes,width=${POPUP_WIDTH},height=${POPUP_HEIGHT},left=${left},top=${top}`;
}

function openBlankPopup(): Window | null {
  try {
    // No `noopener`: the Authpipe callback page answers through window.opener.
    const popup = window.open('about:blank', 'authpipe-connect', popupFeatures());
    if (!popup || popup.closed === true) return null;
    return popup;
  } catch {
    return null;
  }
}

interface Attempt {
  done: boolean;
  popup: Window | null;
  /** The popup has been sent to the Authpipe server (it is no longer our blank page). */
  navigated: boolean;
  dispose: () => void;
}

/**
 * The connect flow for custom buttons.
 *
 * ```tsx
 * const { connect, status, error } = useConnect('spotify', { onSuccess, onError });
 * <button type="button" onClick={connect} aria-busy={status === 'connecting'}>Link Spotify</button>
 * ```
 *
 * `connect()` opens a blank popup synchronously (so popup blockers allow it), asks
 * `getSessionToken()` for a connect-session token, then sends the popup to
 * `{baseUrl}/connect/{provider}?session=…`. The result arrives by `postMessage` from the Authpipe
 * callback page and is accepted only from the Authpipe origin, from that popup, with
 * `type: 'authpipe:connect'`. If the popup is blocked, the whole page is redirected instead and the
 * server sends the browser back to the session's `return_url`.
 */
export function useConnect(provider: string, options: UseConnectOptions = {}): UseConnectResult {
  const context = useAuthpipeContext();
  const [state, setState] = useState<{ status: ConnectStatus; error: ConnectError | null }>({
    status: 'idle',
    error: null,
  });

  const contextRef = useRef<AuthpipeContextValue>(context);
  const optionsRef = useRef(options);
  useIsomorphicLayoutEffect(() => {
    contextRef.current = context;
    optionsRef.current = options;
  });

  const attemptRef = useRef<Attempt | null>(null);
  const mountedRef = useRef(false);

  useEffect(() => {
    mountedRef.current = true;
    return () => {
      mountedRef.current = false;
      const attempt = attemptRef.current;
      attemptRef.current = null;
      if (attempt && !attempt.done) {
        attempt.done = true;
        attempt.dispose();
        // A popup still on our blank page would be left empty forever; one already at the
        // provider is left to finish (the connection is stored server-side either way).
        if (attempt.popup && !attempt.navigated) {
          try {
            attempt.popup.close();
          } catch {
            /* ignore */
          }
        }
      }
    };
  }, []);

  const connect = useCallback(() => {
    const running = attemptRef.current;
    if (running && !running.done) {
      try {
        running.popup?.focus();
      } catch {
        /* ignore */
      }
      return;
    }

    const { baseUrl, getSessionToken } = contextRef.current;
    const update = (status: ConnectStatus, error: ConnectError | null) => {
      if (mountedRef.current) setState({ status, error });
    };

    let base: URL;
    try {
      base = new URL(baseUrl, window.location.href);
    } catch {
      const error: ConnectError = { code: 'invalid_base_url', message: 'AuthpipeProvider baseUrl is not a URL' };
      update('error', error);
      optionsRef.current.onError?.(error);
      return;
    }
    const expectedOrigin = base.origin;
    const baseHref = base.href;

    // Synchronously, inside the user's click: popup blockers allow only this.
    const popup = openBlankPopup();

    let onMessage: ((event: MessageEvent) => void) | null = null;
    let pollTimer: ReturnType<typeof setInterval> | null = null;
    const attempt: Attempt = {
      done: false,
      popup,
      navigated: false,
      dispose: () => {
        if (onMessage) window.removeEventListener('message', onMessage);
        if (pollTimer !== null) clearInterval(pollTimer);
        onMessage = null;
        pollTimer = null;
      },
    };
    attemptRef.current = attempt;
    update('connecting', null);

    const finish = (outcome: { ok: true; connection: AuthpipeConnection } | { ok: false; error: ConnectError }) => {
      if (attempt.done) return;
      attempt.done = true;
      attempt.dispose();
      if (attemptRef.current === attempt) attemptRef.current = null;
      if (popup) {
        try {
          if (!popup.closed) popup.close();
        } catch {
          /* ignore */
        }
      }
      if (outcome.ok) {
        update('connected', null);
        optionsRef.current.onSuccess?.(outcome.connection);
      } else {
        update('error', outcome.error);
        optionsRef.current.onError?.(outcome.error);
      }
    };

    if (popup) {
      onMessage = (event: MessageEvent) => {
        if (event.origin !== expectedOrigin) return;
        if (event.source !== popup) return;
        const data: unknown = event.data;
        if (data === null || typeof data !== 'object') return;
        const message = data as Record<string, unknown>;
        if (message.type !== CONNECT_MESSAGE_TYPE) return;
        if (message.ok === true) {
          finish({ ok: true, connection: (message.connection ?? {}) as AuthpipeConnection });
        } else {
          const error: ConnectError = {
            code: typeof message.code === 'string' && message.code !== '' ? message.code : 'connect_failed',
          };
          if (typeof message.message === 'string') error.message = message.message;
          finish({ ok: false, error });
        }
      };
      window.addEventListener('message', onMessage);

      // A closed popup is reported one poll later, so that a result posted just before the
      // callback page closed itself is still received.
      let closedSeen = false;
      pollTimer = setInterval(() => {
        let closed: boolean;
        try {
          closed = popup.closed === true;
        } catch {
          closed = false;
        }
        if (!closed) return;
        if (closedSeen) finish({ ok: false, error: { code: 'popup_closed' } });
        closedSeen = true;
      }, POPUP_POLL_MS);
    }

    let tokenPromise: Promise<string>;
    try {
      tokenPromise = Promise.resolve(getSessionToken());
    } catch (error) {
      tokenPromise = Promise.reject(error);
    }
    tokenPromise
      .then((token) => {
        if (attempt.done) return;
        if (typeof token !== 'string' || token === '') throw new Error('getSessionToken returned no token');
        const url = connectUrl(baseHref, provider, token);
        if (popup) {
          // A popup the user already closed is reported as popup_closed by the poll.
          if (popup.closed === true) return;
          attempt.navigated = true;
          popup.location.href = url;
        } else {
          // Popup blocked: a full-page redirect. The server brings the browser back to the
          // session's return_url (set by your backend) with ?connection_id=…
          attempt.done = true;
          if (attemptRef.current === attempt) attemptRef.current = null;
          window.location.assign(url);
        }
      })
      .catch(() => {
        finish({ ok: false, error: { code: 'session_failed' } });
      });
  }, [provider]);

  return { connect, status: state.status, error: state.error };
}
