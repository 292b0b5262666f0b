import type { Command } from 'commander';
import { UsageError } from '../args.ts';
import { addTrainOptions, trainSettings, type TrainValues } from './train-options.ts';

/** `realign train-inra`: trains the InRa adapter of an expanded checkpoint on prompt/response pairs. */
export function register(program: Command): void {
  addTrainOptions(
    program
      .command('train-inra')
      .description('train the InRa adapter of an expanded checkpoint on prompt/response pairs (SFT on the response tokens)')
      .option('--model <dir>', 'the expanded checkpoint (make one with `realign expand <base> <dir>`)')
      .option('--adapter <name>', 'the named adapter to train, the others frozen (needed when the model has several)'),
    '1e-4',
  ).action(async (o: TrainValues & { model?: string; adapter?: string }) => {
    if (!o.model) throw new UsageError('--model <expanded dir> is required (make one with `realign expand <base> <dir>`)');
    const settings = await trainSettings(o, { lr: 1e-4 });
    const { TrainProgress } = await import('../../train/progress.ts');
    const { trainInra } = await import('../../train/inra.ts');
    const report = await trainInra({
      ...settings,
      model: o.model,
      adapter: o.adapter,
      progress: new TrainProgress('train-inra'),
    });
    const last = report.losses.at(-1);
    process.stderr.write(
      `realign: ${report.steps} steps, ${report.tokens} response tokens, ${report.seconds.toFixed(1)} s${last === undefined ? '' : `, final loss ${last.toFixed(4)}`}\n`,
    );
    process.stdout.write(`${report.out}\n`);
  });
}
