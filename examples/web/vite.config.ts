import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// The app calls /graphql and /graphql/ws on its own origin; Vite forwards them to the API
// (FV_API, default the quick start's server), so the browser never makes a cross-origin call.
const api = process.env.FV_API ?? 'http://127.0.0.1:8080';
const proxy = {
  '/graphql': { target: api, ws: true, changeOrigin: true },
};

export default defineConfig({
  plugins: [react()],
  server: { proxy },
  preview: { proxy },
});
