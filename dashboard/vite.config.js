import { defineConfig } from 'vite';

// The API serves dist/ as static files: index.html at `/`, docs.html (the
// Swagger UI page) at `/docs`, the hashed bundles under `/assets/`. For `npm run dev`, EVENTPULSE_API (default
// http://127.0.0.1:8080) receives every API route.
const api = process.env.EVENTPULSE_API ?? 'http://127.0.0.1:8080';

export default defineConfig({
  base: '/',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // Two pages, so Swagger UI's bundle never weighs on the dashboard's.
    rolldownOptions: { input: { index: 'index.html', docs: 'docs.html' } },
    // Swagger UI is one 1.5 MB (430 kB gzip) module loaded only by /docs;
    // splitting it would not shrink what that page downloads.
    chunkSizeWarningLimit: 1600,
  },
  server: {
    proxy: Object.fromEntries(
      ['/events', '/stats', '/pipeline', '/openapi.json'].map((prefix) => [prefix, { target: api, changeOrigin: true }]),
    ),
  },
});
