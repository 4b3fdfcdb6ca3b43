// A Hono app on Node's HTTP server, started with @hono/node-server's serve().
import { serve } from '@hono/node-server';
import { Hono } from 'hono';

const app = new Hono();

app.get('/', (c) => {
  c.header('x-handover-worker', String(process.pid));
  return c.text(`hello from hono, worker ${process.pid}\n`);
});

serve({ fetch: app.fetch, port: 3000 });
