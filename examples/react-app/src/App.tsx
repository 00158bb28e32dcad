import { useCallback, useState } from 'react';
import { AuthpipeProvider, ConnectButton } from '@authpipe/react';
import type { AuthpipeConnection, ConnectError } from '@authpipe/react';

/** A connection as our backend's `GET /api/connections` lists it (no secret in it). */
export interface UserConnection {
  id: string;
  provider: string;
  status: string;
  account: { id: string; name: string | null } | null;
  createdAt: string | null;
}

/** Asks our own backend for a connect session; it holds the secret key, the browser never does. */
async function getSessionToken(): Promise<string> {
  const response = await fetch('/api/authpipe/session');
  if (!response.ok) throw new Error(`session: HTTP ${response.status}`);
  const body = (await response.json()) as { token: string };
  return body.token;
}

/** The signed-in user's connections, from our backend (which asks Authpipe with its secret key). */
export async function fetchConnections(): Promise<UserConnection[]> {
  const response = await fetch('/api/connections');
  if (!response.ok) throw new Error(`connections: HTTP ${response.status}`);
  return ((await response.json()) as { connections: UserConnection[] }).connections;
}

/**
 * What ConnectButton's `connected` prop gets: the account name (or id) of a usable connection;
 * false when there is none or the provider revoked it (the user has to connect again).
 */
function connectedAs(connection: UserConnection | undefined): string | boolean {
  if (!connection || connection.status === 'revoked') return false;
  return connection.account?.name ?? connection.account?.id ?? true;
}

type Outcome =
  | { kind: 'connected'; connection: AuthpipeConnection }
  | { kind: 'error'; error: ConnectError };

const PROVIDERS = ['spotify', 'bluesky'] as const;

export function App({
  authpipeUrl,
  tenantId,
  userId,
  initialConnections,
  connectionsError,
}: {
  authpipeUrl: string;
  tenantId: string;
  userId: string;
  initialConnections: UserConnection[];
  connectionsError: string | null;
}) {
  const [outcomes, setOutcomes] = useState<Record<string, Outcome>>({});
  const [connections, setConnections] = useState(initialConnections);
  const [listError, setListError] = useState(connectionsError);
  const record = (provider: string, outcome: Outcome) => setOutcomes((all) => ({ ...all, [provider]: outcome }));

  const reload = useCallback(() => {
    fetchConnections().then(
      (list) => {
        setConnections(list);
        setListError(null);
      },
      (error: unknown) => setListError(String(error)),
    );
  }, []);

  return (
    <main style={{ fontFamily: 'system-ui, sans-serif', maxWidth: 640, margin: '2rem auto', lineHeight: 1.5 }}>
      <h1>Authpipe example app</h1>
      <p>
        Signed in as user <code>{userId}</code> of tenant <code>{tenantId}</code>. Authpipe:{' '}
        <code>{authpipeUrl}</code>
      </p>
      {listError ? <p role="alert">Could not list your connections ({listError}).</p> : null}
      <AuthpipeProvider baseUrl={authpipeUrl} getSessionToken={getSessionToken}>
        {PROVIDERS.map((provider) => {
          const existing = connections.find((c) => c.provider === provider);
          return (
            <section key={provider} data-provider={provider} style={{ margin: '1rem 0' }}>
              <ConnectButton
                provider={provider}
                connected={connectedAs(existing)}
                onSuccess={(connection) => {
                  record(provider, { kind: 'connected', connection });
                  reload();
                }}
                onError={(error) => record(provider, { kind: 'error', error })}
              />
              {existing?.status === 'revoked' ? (
                <p data-testid={`${provider}-revoked`}>The provider revoked this connection: connect again.</p>
              ) : null}
              <Result provider={provider} outcome={outcomes[provider]} />
            </section>
          );
        })}
      </AuthpipeProvider>
    </main>
  );
}

function Result({ provider, outcome }: { provider: string; outcome: Outcome | undefined }) {
  if (!outcome) return null;
  if (outcome.kind === 'error') {
    return (
      <p data-testid={`${provider}-error`} data-code={outcome.error.code}>
        Error: <code>{outcome.error.code}</code>
        {outcome.error.message ? ` (${outcome.error.message})` : ''}
      </p>
    );
  }
  const { connection } = outcome;
  return (
    <p data-testid={`${provider}-connected`} data-connection-id={connection.id}>
      Connected <code>{connection.id}</code> as <strong>{connection.account?.name ?? connection.account?.id ?? '?'}</strong>
      {' '}({connection.status})
    </p>
  );
}
