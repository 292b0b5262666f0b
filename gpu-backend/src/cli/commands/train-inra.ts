import { TrainProgress } from '../../train/progress.ts';
import { parse, UsageError } from '../args.ts';
import { TRAIN_OPTIONS, TRAIN_USAGE, trainSettings } from './train-options.ts';

export const usage = `realign train-inra --model <expanded dir> --data <jsonl> --out <dir> ${TRAIN_USAGE}`;

/** Trains the InRa adapter of an expanded checkpoint on prompt/response pairs (SFT on the response tokens). */
export async function run(argv: string[]): Promise<void> {
  const { values } = parse(argv, { ...TRAIN_OPTIONS, model: { type: 'string' } });
  if (!values.model) throw new UsageError('--model <expanded dir> is required (make one with `realign expand <base> <dir>`)');
  const settings = await trainSettings(values, { lr: 1e-4 });
  const { trainInra } = await import('../../train/inra.ts');
  const report = await trainInra({ ...settings, model: values.model, progress: new TrainProgress('train-inra') });
  const last = report.losses.at(-1);
  process.stderr.write(`realign: ${report.steps} steps, ${report.tokens} response tokens, ${report.seconds.toFixed(1)} s${last === undefined ? '' : `, final loss ${last.toFixed(4)}`}\n`);
  process.stdout.write(`${report.out}\n`);
}
