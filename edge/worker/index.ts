import { Hono } from 'hono';

// Workers entry. The ingest routes join here with the Durable Object accumulator (issue #3);
// until then the Worker answers health checks so deploys and workerd tests have a real entry.
export interface Env {
  TRIBUTARY_WRITE_KEYS: string;
}

const app = new Hono<{ Bindings: Env }>();
app.get('/health', (c) => c.json({ ok: true, runtime: 'workerd' }));

export default {
  fetch: (request, env, ctx) => app.fetch(request, env, ctx),
} satisfies ExportedHandler<Env>;
