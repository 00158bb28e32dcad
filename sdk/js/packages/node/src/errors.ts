/**
 * Errors raised by the Authpipe SDK.
 *
 * Every error is an {@link AuthpipeError}. Errors that come from the server carry its HTTP `status`
 * and the `code` / `message` of its `{"error": {"code", "message"}}` body. Errors that never
 * reached a server answer (network failure, timeout) have `status === undefined` and the code
 * `network_error` or `timeout`.
 *
 * No error message ever contains the secret key: messages are built from the server's answer and
 * from fixed sentences, and any accidental occurrence of the key is redacted before the error is
 * constructed.
 */

export interface AuthpipeErrorOptions {
  /** HTTP status of the server's answer, when there was one. */
  status?: number | undefined;
  /** The underlying error (a network error, a JSON parse error), when there was one. */
  cause?: unknown;
}

export class AuthpipeError extends Error {
  /** HTTP status of the server's answer; `undefined` when no answer was received. */
  readonly status: number | undefined;
  /** Machine-readable snake_case code, e.g. `connection_not_found`, `network_error`. */
  readonly code: string;

  constructor(code: string, message: string, options: AuthpipeErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.status = options.status;
  }

  /** `true` for failures that say nothing about the connection itself: network, timeout, 5xx, 429. */
  get isTransient(): boolean {
    return (
      this.status === undefined ||
      this.status >= 500 ||
      this.status === 429
    );
  }

  override toString(): string {
    return `${this.name} [${this.code}${this.status === undefined ? '' : ` ${this.status}`}]: ${this.message}`;
  }

  toJSON(): { name: string; code: string; status: number | undefined; message: string } {
    return { name: this.name, code: this.code, status: this.status, message: this.message };
  }
}

/** 404 `connection_not_found`: no connection for this (provider, tenant, user). */
export class ConnectionNotFound extends AuthpipeError {}

/**
 * 410 `connection_revoked`: the provider rejected the grant. The user has to connect again.
 * The SDK evicts its cached credential for that key when it sees this error.
 */
export class ConnectionRevoked extends AuthpipeError {}

/** Build the right error class for a server error answer. */
export function errorFromResponse(status: number, code: string, message: string): AuthpipeError {
  if (status === 404 && code === 'connection_not_found') {
    return new ConnectionNotFound(code, message, { status });
  }
  if (status === 410) {
    return new ConnectionRevoked(code, message, { status });
  }
  return new AuthpipeError(code, message, { status });
}
