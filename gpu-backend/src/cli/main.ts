/** The `realign` command line: one module per command, this file only dispatches. */
import { UsageError } from './args.ts';

interface Command {
  usage: string;
  run: (argv: string[]) => Promise<void>;
}

const COMMANDS: Record<string, () => Promise<Command>> = {
  'init-model': () => import('./commands/init-model.ts'),
  expand: () => import('./commands/expand.ts'),
  logits: () => import('./commands/logits.ts'),
  'build-graph': () => import('./commands/build-graph.ts'),
  generate: () => import('./commands/generate.ts'),
  serve: () => import('./commands/serve.ts'),
  'train-inra': () => import('./commands/train-inra.ts'),
  'train-trra': () => import('./commands/train-trra.ts'),
};

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === 'help') {
    const usages = await Promise.all(Object.values(COMMANDS).map(async (load) => (await load()).usage));
    process.stdout.write(`usage:\n${usages.map((u) => `  ${u}`).join('\n')}\n`);
    return name ? 0 : 2;
  }
  const load = COMMANDS[name];
  if (!load) {
    process.stderr.write(`realign: unknown command "${name}"; commands: ${Object.keys(COMMANDS).join(', ')}\n`);
    return 2;
  }
  const cmd = await load();
  try {
    await cmd.run(rest);
    return 0;
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`realign ${name}: ${err.message}\nusage: ${cmd.usage}\n`);
      return 2;
    }
    process.stderr.write(`realign ${name}: ${(err as Error).message}\n`);
    if (process.env.REALIGN_DEBUG) process.stderr.write(`${(err as Error).stack}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
