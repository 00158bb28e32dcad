'use client';

import { createContext, useContext, useMemo, useRef } from 'react';
import type { ReactNode } from 'react';
import { useIsomorphicLayoutEffect } from './layout-effect.js';

export interface AuthpipeProviderProps {
  /** Where browsers reach the Authpipe server (its `AUTHPIPE_PUBLIC_URL`), e.g. `https://auth.example.com`. */
  baseUrl: string;
  /**
   * Returns a fresh connect-session token (`ap_cs_…`) made by your backend with
   * `POST /v1/connect-sessions` (`authpipe.createConnectSession(...)` in `@authpipe/node`).
   */
  getSessionToken: () => Promise<string>;
  children?: ReactNode;
}

export interface AuthpipeContextValue {
  baseUrl: string;
  getSessionToken: () => Promise<string>;
}

export const AuthpipeContext = createContext<AuthpipeContextValue | null>(null);
AuthpipeContext.displayName = 'AuthpipeContext';

/** Supplies the Authpipe server URL and the session-token getter to every ConnectButton below it. */
export function AuthpipeProvider({ baseUrl, getSessionToken, children }: AuthpipeProviderProps) {
  // Keep the latest getter without changing the context value on every render (inline arrows).
  const getterRef = useRef(getSessionToken);
  useIsomorphicLayoutEffect(() => {
    getterRef.current = getSessionToken;
  });
  const value = useMemo<AuthpipeContextValue>(
    () => ({ baseUrl, getSessionToken: () => getterRef.current() }),
    [baseUrl],
  );
  return <AuthpipeContext.Provider value={value}>{children}</AuthpipeContext.Provider>;
}

export function useAuthpipeContext(): AuthpipeContextValue {
  const value = useContext(AuthpipeContext);
  if (!value) {
    throw new Error('@authpipe/react: ConnectButton and useConnect must be used inside <AuthpipeProvider>.');
  }
  return value;
}
