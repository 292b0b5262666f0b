/**
 * The `realign` command line on commander: one module per command (each registers its options, descriptions and
 * defaults, and loads its heavy modules only when it runs). Exit status: 0 done (and --help, --version), 1 the
 * work failed, 2 a usage error.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { UsageError } from './usage-error.ts';
import * as adapters from './commands/adapters.ts';
import * as buildGraph from './commands/build-graph.ts';
import * as expand from './commands/expand.ts';
import * as generate from './commands/generate.ts';
import * as initModel from './commands/init-model.ts';
import * as logits from './commands/logits.ts';
import * as serve from './commands/serve.ts';
import * as trainInra from './commands/train-inra.ts';
import * as trainTrra from './commands/train-trra.ts';

const VERSION = (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string })
  .version;

/** The program with every command registered. */
function program(): Command {
  const p = new Command('realign')
    .description(
      'realign: serve and train language models with flexible realignment (a per-request λ between a reference and an aligned model)',
    )
    .version(VERSION, '-V, --version', 'print the version')
    .exitOverride()
    .showHelpAfterError('(add --help for usage)')
    .addHelpText(
      'after',
      '\nEnvironment: REALIGN_CACHE (cache root, default $XDG_CACHE_HOME/realign or ~/.cache/realign), REALIGN_GRAPH_CACHE (built graphs),\n' +
        'REALIGN_PROGRESS=bar|lines|off (default: a bar on a terminal, one line per stage otherwise), REALIGN_DEBUG=1 (stack traces).',
    );
  for (const cmd of [initModel, expand, adapters, logits, generate, buildGraph, serve, trainInra, trainTrra]) cmd.register(p);
  return p;
}

/** Runs the command line; resolves with the exit status. */
async function main(argv: string[]): Promise<number> {
  const p = program();
  let name = 'realign';
  p.hook('preAction', (_, action) => {
    name = `realign ${action.name()}`;
  });
  try {
    await p.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander has printed the help, the version or the error
      return err.exitCode === 0 ? 0 : 2;
    }
    if (err instanceof UsageError) {
      process.stderr.write(`${name}: ${err.message}\n(add --help for usage)\n`);
      return 2;
    }
    process.stderr.write(`${name}: ${(err as Error).message}\n`);
    if (process.env.REALIGN_DEBUG) process.stderr.write(`${(err as Error).stack}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
