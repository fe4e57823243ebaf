import { defineConfig } from 'vite';

// The API serves dist/ as static files: index.html at `/`, the hashed
// bundle under `/assets/`. For `npm run dev`, EVENTPULSE_API (default
// http://127.0.0.1:8080) receives every API route.
const api = process.env.EVENTPULSE_API ?? 'http://127.0.0.1:8080';

export default defineConfig({
  base: '/',
  build: { outDir: 'dist', emptyOutDir: true },
  server: {
    proxy: Object.fromEntries(
      ['/events', '/stats', '/pipeline'].map((prefix) => [prefix, { target: api, changeOrigin: true }]),
    ),
  },
});
