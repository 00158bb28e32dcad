'use client';

import { useId } from 'react';
import type { ButtonHTMLAttributes, CSSProperties, MouseEvent, ReactNode } from 'react';
import { useConnect } from './useConnect.js';
import type { AuthpipeConnection, ConnectError, ConnectStatus } from './useConnect.js';

/** What a function passed as `children` receives. */
export interface ConnectButtonRenderState {
  /** The flow's status; `'connected'` also while the `connected` prop says so and no flow runs. */
  status: ConnectStatus;
  /** Why the last attempt failed, or null. */
  error: ConnectError | null;
  /** The `connected` prop is set: the user already has a connection at this provider. */
  connected: boolean;
  /** The account name given as `connected`, or null (`connected={true}`, or not connected). */
  accountName: string | null;
  /** The provider's display name: "Spotify", "GitHub", … */
  providerName: string;
}

export interface ConnectButtonProps
  extends Omit<ButtonHTMLAttributes<HTMLButtonElement>, 'type' | 'onError' | 'children' | 'disabled' | 'className'> {
  /** Provider name as configured in Authpipe: `spotify`, `github`, `bluesky`, … */
  provider: string;
  onSuccess?: (connection: AuthpipeConnection) => void;
  onError?: (error: ConnectError) => void;
  disabled?: boolean;
  /** Added after the stable class `authpipe-connect-button`. */
  className?: string;
  /**
   * The user already has a connection at this provider (your backend knows: `GET /v1/connections`).
   * `true`, or the connection's account name (`connection.account.name`). The button then shows
   * the "already connected" state: the line "Connected as {name}" (or "Connected to {Provider}")
   * and a "Reconnect {Provider}" button, which starts the flow again (to switch account or re-grant).
   * `false`, `null`, `undefined` or `''`: not connected.
   */
  connected?: boolean | string | null;
  /**
   * The label when not connected (default "Connect {Provider}"); or a function of the state
   * (`{ status, error, connected, accountName, providerName }`) that returns the label in every
   * state, in which case the "Connected as …" line is not rendered: the function shows what it wants.
   */
  children?: ReactNode | ((state: ConnectButtonRenderState) => ReactNode);
}

const DISPLAY_NAMES: Record<string, string> = {
  github: 'GitHub',
  gitlab: 'GitLab',
  linkedin: 'LinkedIn',
  youtube: 'YouTube',
  hubspot: 'HubSpot',
  tiktok: 'TikTok',
  paypal: 'PayPal',
  quickbooks: 'QuickBooks',
  clickup: 'ClickUp',
  x: 'X',
};

/** "spotify" → "Spotify", "google-drive" → "Google Drive", "github" → "GitHub". */
export function providerDisplayName(provider: string): string {
  const known = DISPLAY_NAMES[provider.toLowerCase()];
  if (known) return known;
  return provider
    .split(/[-_\s]+/)
    .filter(Boolean)
    .map((word) => word.charAt(0).toUpperCase() + word.slice(1))
    .join(' ');
}

/** Hidden from sight, not from screen readers. Inline so that it works without the stylesheet. */
const VISUALLY_HIDDEN: CSSProperties = {
  position: 'absolute',
  width: 1,
  height: 1,
  padding: 0,
  margin: -1,
  overflow: 'hidden',
  clip: 'rect(0, 0, 0, 0)',
  whiteSpace: 'nowrap',
  border: 0,
};

function announcement(status: ConnectStatus, error: ConnectError | null): string {
  switch (status) {
    case 'connecting':
      return 'Connecting…';
    case 'connected':
      return 'Connected';
    case 'error':
      if (error?.code === 'popup_closed') return 'Connection cancelled: the window was closed';
      if (error?.code === 'session_failed') return 'Connection failed: could not start a session';
      return `Connection failed${error?.message ? `: ${error.message}` : error ? ` (${error.code})` : ''}`;
    default:
      return '';
  }
}

function connectedText(accountName: string | null, providerName: string): string {
  return accountName ? `Connected as ${accountName}` : `Connected to ${providerName}`;
}

/**
 * A button that connects the current user's account at `provider` through Authpipe.
 *
 * Unstyled by default (class `authpipe-connect-button`); `import '@authpipe/react/styles.css'` for a
 * ready-made look. Renders a real `<button type="button">` with `aria-busy` while connecting, and a
 * visually hidden live region that announces "Connecting…", "Connected" or the error.
 *
 * With `connected` set it renders the "already connected" state: a visible line (class
 * `authpipe-connect-account`, "Connected as ada") that describes the button (`aria-describedby`),
 * and the button, labelled "Reconnect {Provider}", starts the flow again.
 */
export function ConnectButton({
  provider,
  onSuccess,
  onError,
  disabled,
  className,
  connected,
  children,
  onClick,
  ...rest
}: ConnectButtonProps) {
  const options: { onSuccess?: typeof onSuccess; onError?: typeof onError } = {};
  if (onSuccess) options.onSuccess = onSuccess;
  if (onError) options.onError = onError;
  const { connect, status, error } = useConnect(provider, options);
  const accountLineId = useId();

  const isConnected = connected !== undefined && connected !== null && connected !== false && connected !== '';
  const accountName = typeof connected === 'string' && connected !== '' ? connected : null;
  const providerName = providerDisplayName(provider);
  const shownStatus: ConnectStatus = isConnected && status === 'idle' ? 'connected' : status;

  const handleClick = (event: MouseEvent<HTMLButtonElement>) => {
    onClick?.(event);
    if (event.defaultPrevented || disabled) return;
    connect();
  };

  let label: ReactNode;
  let accountLine: ReactNode = null;
  if (typeof children === 'function') {
    label = children({ status: shownStatus, error, connected: isConnected, accountName, providerName });
  } else if (isConnected) {
    label = `Reconnect ${providerName}`;
    accountLine = (
      <span id={accountLineId} className="authpipe-connect-account">
        {connectedText(accountName, providerName)}
      </span>
    );
  } else {
    label = children ?? `Connect ${providerName}`;
  }

  const describedBy = [accountLine ? accountLineId : null, rest['aria-describedby']].filter(Boolean).join(' ');

  return (
    <>
      {accountLine}
      <button
        {...rest}
        type="button"
        className={className ? `authpipe-connect-button ${className}` : 'authpipe-connect-button'}
        disabled={disabled}
        aria-busy={status === 'connecting'}
        aria-describedby={describedBy || undefined}
        data-status={shownStatus}
        data-connected={isConnected ? 'true' : undefined}
        onClick={handleClick}
      >
        {label}
      </button>
      <span role="status" aria-live="polite" aria-atomic="true" className="authpipe-visually-hidden" style={VISUALLY_HIDDEN}>
        {announcement(status, error)}
      </span>
    </>
  );
}
