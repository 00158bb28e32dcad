import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import '@authpipe/react/styles.css';
import { App, fetchConnections } from './App';
import type { UserConnection } from './App';

interface AppConfig {
  authpipeUrl: string;
  tenantId: string;
  userId: string;
}

// The backend tells the page where browsers reach Authpipe (its AUTHPIPE_PUBLIC_URL) at run time,
// so one build works against any Authpipe. The user's connections are loaded before the first
// render, so that an already connected provider never flashes a "Connect" button.
const [config, connections] = await Promise.all([
  fetch('/api/config').then((response) => response.json() as Promise<AppConfig>),
  fetchConnections().then(
    (list): { list: UserConnection[]; error: string | null } => ({ list, error: null }),
    (error: unknown) => ({ list: [], error: String(error) }),
  ),
]);

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App {...config} initialConnections={connections.list} connectionsError={connections.error} />
  </StrictMode>,
);
