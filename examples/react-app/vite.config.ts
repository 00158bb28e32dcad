import { defineConfig } from 'vite';

// No React plugin needed: Vite compiles TSX itself (tsconfig "jsx": "react-jsx").
// @authpipe/react is linked from ../../sdk/js, whose own node_modules holds another copy of React:
// `dedupe` makes the bundle use this app's single React.
export default defineConfig({
  resolve: { dedupe: ['react', 'react-dom'] },
  build: {
    rollupOptions: {
      onwarn(warning, warn) {
        // @authpipe/react marks its modules 'use client' (for React Server Components); harmless here.
        if (warning.code === 'MODULE_LEVEL_DIRECTIVE') return;
        warn(warning);
      },
    },
  },
  server: {
    // `npm run dev` serves the page on http://localhost:5173, and only there: the backend's
    // APP_ORIGIN must name this origin (Authpipe posts the popup's result to it), so a taken port
    // is an error rather than a silent move to 5174.
    port: 5173,
    strictPort: true,
    // The Vite dev server forwards /api to the backend (`npm start`, port 3000).
    proxy: { '/api': `http://127.0.0.1:${process.env.PORT ?? 3000}` },
  },
});
