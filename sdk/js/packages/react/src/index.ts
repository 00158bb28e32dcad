'use client';

export { AuthpipeProvider, AuthpipeContext } from './context.js';
export type { AuthpipeProviderProps, AuthpipeContextValue } from './context.js';
export { ConnectButton, providerDisplayName } from './ConnectButton.js';
export type { ConnectButtonProps, ConnectButtonRenderState } from './ConnectButton.js';
export { useConnect, connectUrl, CONNECT_MESSAGE_TYPE, POPUP_POLL_MS } from './useConnect.js';
export type {
  AuthpipeConnection,
  ConnectError,
  ConnectStatus,
  UseConnectOptions,
  UseConnectResult,
} from './useConnect.js';
