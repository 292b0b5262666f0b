import type { Command } from 'commander';
import { port } from '../args.ts';

/** `realign serve`: serves the models of a config until SIGTERM or SIGINT. */
export function register(program: Command): void {
  program
    .command('serve')
    .description(
      'serve the models of a models.json over HTTP (OpenAI-compatible API, /v1/logits, /healthz, /readyz, /metrics) until SIGTERM or SIGINT',
    )
    .requiredOption('--config <file>', 'models.json (see README.md, "Configuration")')
    .option('--port <port>', 'TCP port (0 picks a free one)', port, 8000)
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .action(async (o: { config: string; port: number; host: string }) => {
      const { loadServerConfig } = await import('../../server/config.ts');
      const { startBackend } = await import('../../server/serve.ts');
      const { defaultGraphCache } = await import('../../graph/build.ts');
      // Hugging Face model ids become cache folders here, downloaded if need be, before any engine starts
      const config = await loadServerConfig(o.config);
      // said once at start, so that a multi-gigabyte cache is never a surprise
      config.graph_cache ??= defaultGraphCache();
      const pino = (await import('pino')).default;
      const logger = pino({ base: { service: 'realign-backend' } });
      logger.info({ graphCache: config.graph_cache }, 'graph cache');
      const backend = await startBackend(config, { port: o.port, host: o.host, logger });
      await new Promise<void>((resolve) => {
        let first = 0;
        const stop = (signal: NodeJS.Signals) => {
          if (first === 0) {
            first = Date.now();
            void backend.stop().then(resolve);
            return;
          }
          // the same signal sent to the process group and forwarded by bin/realign.js arrives twice: not a second request
          if (Date.now() - first < 1000) return;
          logger.warn({ signal }, 'second signal: exiting without waiting for in-flight requests');
          process.exit(1);
        };
        for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(sig, stop);
      });
    });
}
