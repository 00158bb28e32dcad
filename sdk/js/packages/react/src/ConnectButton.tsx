'use client';

import type { ButtonHTMLAttributes, CSSProperties, MouseEvent, ReactNode } from 'react';
import { useConnect } from './useConnect.js';
import type { AuthpipeConnection, ConnectError, ConnectStatus } from './useConnect.js';

export interface ConnectButtonProps
  extends Omit<ButtonHTMLAttributes<HTMLButtonElement>, 'type' | 'onError' | 'children' | 'disabled' | 'className'> {
  /** Provider name as configured in Authpipe: `spotify`, `github`, `bluesky`, … */
  provider: string;
  onSuccess?: (connection: AuthpipeConnection) => void;
  onError?: (error: ConnectError) => void;
  disabled?: boolean;
  /** Added after the stable class `authpipe-connect-button`. */
  className?: string;
  /** Button label. Default: "Connect {Provider}". */
  children?: ReactNode;
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

/**
 * A button that connects the current user's account at `provider` through Authpipe.
 *
 * Unstyled by default (class `authpipe-connect-button`); `import '@authpipe/react/styles.css'` for a
 * ready-made look. Renders a real `<button type="button">` with `aria-busy` while connecting, and a
 * visually hidden live region that announces "Connecting…", "Connected" or the error.
 */
export function ConnectButton({
  provider,
  onSuccess,
  onError,
  disabled,
  className,
  children,
  onClick,
  ...rest
}: ConnectButtonProps) {
  const options: { onSuccess?: typeof onSuccess; onError?: typeof onError } = {};
  if (onSuccess) options.onSuccess = onSuccess;
  if (onError) options.onError = onError;
  const { connect, status, error } = useConnect(provider, options);

  const handleClick = (event: MouseEvent<HTMLButtonElement>) => {
    onClick?.(event);
    if (event.defaultPrevented || disabled) return;
    connect();
  };

  return (
    <>
      <button
        {...rest}
        type="button"
        className={className ? `authpipe-connect-button ${className}` : 'authpipe-connect-button'}
        disabled={disabled}
        aria-busy={status === 'connecting'}
        data-status={status}
        onClick={handleClick}
      >
        {children ?? `Connect ${providerDisplayName(provider)}`}
      </button>
      <span role="status" aria-live="polite" aria-atomic="true" className="authpipe-visually-hidden" style={VISUALLY_HIDDEN}>
        {announcement(status, error)}
      </span>
    </>
  );
}
