import { Hono } from 'hono';

/** The edge worker: the public API of realign. Routes are wired here; logic lives in modules. */
const app = new Hono();

app.get('/healthz', (c) => c.json({ ok: true }));

export default app;
