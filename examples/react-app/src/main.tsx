import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import '@authpipe/react/styles.css';
import { App } from './App';

interface AppConfig {
  authpipeUrl: string;
  tenantId: string;
  userId: string;
}

// The backend tells the page where browsers reach Authpipe (its AUTHPIPE_PUBLIC_URL) at run time,
// so one build works against any Authpipe.
const config = (await (await fetch('/api/config')).json()) as AppConfig;

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App {...config} />
  </StrictMode>,
);
