import { readServerConfig } from '../../server/config.ts';
import { startBackend } from '../../server/serve.ts';
import { num, parse, UsageError } from '../args.ts';

export const usage = 'realign serve --config <models.json> [--port p] [--host h]';

/** Serves the models of a config until SIGTERM or SIGINT. */
export async function run(argv: string[]): Promise<void> {
  const { values } = parse(argv, { config: { type: 'string' }, port: { type: 'string' }, host: { type: 'string' } });
  if (!values.config) throw new UsageError('--config <models.json> is required');
  const config = readServerConfig(values.config);
  const backend = await startBackend(config, { port: num(values.port, 'port', 8000), host: values.host ?? '127.0.0.1' });
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      void backend.stop().then(resolve);
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}
