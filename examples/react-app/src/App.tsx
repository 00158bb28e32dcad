import { useState } from 'react';
import { AuthpipeProvider, ConnectButton } from '@authpipe/react';
import type { AuthpipeConnection, ConnectError } from '@authpipe/react';

/** Asks our own backend for a connect session; it holds the secret key, the browser never does. */
async function getSessionToken(): Promise<string> {
  const response = await fetch('/api/authpipe/session');
  if (!response.ok) throw new Error(`session: HTTP ${response.status}`);
  const body = (await response.json()) as { token: string };
  return body.token;
}

type Outcome =
  | { kind: 'connected'; connection: AuthpipeConnection }
  | { kind: 'error'; error: ConnectError };

export function App({ authpipeUrl, tenantId, userId }: { authpipeUrl: string; tenantId: string; userId: string }) {
  const [outcomes, setOutcomes] = useState<Record<string, Outcome>>({});
  const record = (provider: string, outcome: Outcome) => setOutcomes((all) => ({ ...all, [provider]: outcome }));

  return (
    <main style={{ fontFamily: 'system-ui, sans-serif', maxWidth: 640, margin: '2rem auto', lineHeight: 1.5 }}>
      <h1>Authpipe example app</h1>
      <p>
        Signed in as user <code>{userId}</code> of tenant <code>{tenantId}</code>. Authpipe:{' '}
        <code>{authpipeUrl}</code>
      </p>
      <AuthpipeProvider baseUrl={authpipeUrl} getSessionToken={getSessionToken}>
        {(['spotify', 'bluesky'] as const).map((provider) => (
          <section key={provider} data-provider={provider} style={{ margin: '1rem 0' }}>
            <ConnectButton
              provider={provider}
              onSuccess={(connection) => record(provider, { kind: 'connected', connection })}
              onError={(error) => record(provider, { kind: 'error', error })}
            />
            <Result provider={provider} outcome={outcomes[provider]} />
          </section>
        ))}
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
