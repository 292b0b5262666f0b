/**
 * Runs the backend: loads models in the background, serves HTTP with @hono/node-server, and on SIGTERM stops
 * accepting, lets in-flight requests finish within the grace period, then cancels what is left and exits.
 */
import { getRequestListener } from '@hono/node-server';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino, { type Logger } from 'pino';
import { createApp } from './app.ts';
import {
  answerClientError,
  answeredMalformed,
  continueUnlessTooLarge,
  refuseConnect,
  refuseExpectation,
  unreadableRequest,
} from './client-error.ts';
import type { AuthOptions } from './auth.ts';
import type { ServerConfig } from './config.ts';
import { BackendMetrics } from './metrics.ts';
import { ModelRegistry } from './registry.ts';

/** How long an idle keep-alive connection stays open (longer than the edge lets its pooled connections idle). */
const KEEP_ALIVE_MS = 75_000;

/** A running backend. */
export interface RunningBackend {
  url: string;
  port: number;
  registry: ModelRegistry;
  metrics: BackendMetrics;
  /** stops accepting, waits up to the grace period for in-flight requests, then cancels them */
  stop(): Promise<void>;
}

/** Options of `startBackend`. */
export interface StartOptions {
  port?: number;
  host?: string;
  logger?: Logger;
  env?: NodeJS.ProcessEnv;
}

/** The credentials the server accepts, from the environment variables its configuration names. */
function authOptions(config: ServerConfig, env: NodeJS.ProcessEnv): AuthOptions {
  const hmacSecret = env[config.auth.hmac_secret_env] || null;
  const bearerTokens = (env[config.auth.bearer_tokens_env] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (!hmacSecret && bearerTokens.length === 0 && !config.auth.allow_unauthenticated) {
    throw new Error(
      `no credentials configured: set ${config.auth.hmac_secret_env} (edge HMAC secret) or ${config.auth.bearer_tokens_env} (bearer tokens), or "auth": {"allow_unauthenticated": true} for local use`,
    );
  }
  return {
    hmacSecret,
    bearerTokens,
    allowUnauthenticated: config.auth.allow_unauthenticated,
    maxSkewSeconds: config.auth.max_skew_seconds,
  };
}

/** Starts the server (resolves once it listens; models keep loading in the background). */
export async function startBackend(config: ServerConfig, opts: StartOptions = {}): Promise<RunningBackend> {
  const env = opts.env ?? process.env;
  const logger = opts.logger ?? pino({ base: { service: 'realign-backend' } });
  const metrics = new BackendMetrics();
  const registry = new ModelRegistry(config, logger, (m) => {
    m.engine.onSteps = (ms) => ms.forEach((x) => metrics.stepSeconds.observe({ model: m.config.id }, x / 1000));
  });
  let accepting = true;
  let inFlight = 0;
  const app = createApp({ config, registry, metrics, logger, accepting: () => accepting, auth: authOptions(config, env) });
  const listener = getRequestListener((req: Request) => app.fetch(req), { errorHandler: unreadableRequest });
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    if (answeredMalformed(req, res)) return;
    // in flight until the response is fully sent (a stream to its last byte) or its connection closes
    inFlight++;
    res.once('close', () => inFlight--);
    return listener(req, res);
  };
  // Host is checked in `handle`, which answers with the error JSON rather than Node's bare status line
  const server = createServer({ requireHostHeader: false }, handle);
  server.on('clientError', answerClientError);
  server.on('connect', refuseConnect);
  server.on('checkExpectation', refuseExpectation);
  server.on('checkContinue', continueUnlessTooLarge(config.limits.max_body_bytes, handle));
  // The edge keeps connections to backends open and reuses them. Node closes an idle one after 5 s by default, and a
  // request sent on a connection just as it closes fails ("Broken pipe" / "Network connection lost"), after which
  // the edge marks a healthy backend down. Keep idle connections well past any gap between requests instead.
  server.keepAliveTimeout = KEEP_ALIVE_MS;
  const port = await new Promise<number>((resolve) =>
    server.listen(opts.port ?? 8000, opts.host ?? '127.0.0.1', () => resolve((server.address() as AddressInfo).port)),
  );
  const url = `http://${opts.host ?? '127.0.0.1'}:${port}`;
  logger.info({ url, models: config.models.map((m) => m.id) }, 'listening');
  return {
    url,
    port,
    registry,
    metrics,
    async stop() {
      accepting = false;
      logger.info({ inFlight, graceMs: config.shutdown_grace_ms }, 'shutting down: no new requests');
      server.close();
      const deadline = Date.now() + config.shutdown_grace_ms;
      while (inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      if (inFlight > 0) logger.warn({ inFlight }, 'grace period over: cancelling in-flight requests');
      await registry.shutdown();
      // the answers the cancellation produced (error events, 503s for queued requests) go out before the sockets close
      const flushDeadline = Date.now() + 1000;
      while (inFlight > 0 && Date.now() < flushDeadline) await new Promise((r) => setTimeout(r, 10));
      server.closeAllConnections();
      logger.info({}, 'stopped');
    },
  };
}
