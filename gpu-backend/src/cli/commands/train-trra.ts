import { TrainProgress } from '../../train/progress.ts';
import { num, parse, positiveInt, UsageError } from '../args.ts';
import { TRAIN_OPTIONS, TRAIN_USAGE, trainSettings } from './train-options.ts';

export const usage = `realign train-trra --reference <dir> --aligned <dir> --lambda <l> --data <jsonl> --out <dir> [--lora r] [--lora-alpha a] [--kl forward|reverse] [--iterations k] ${TRAIN_USAGE}`;

/** Distils softmax(λ·z_aligned + (1 − λ)·z_reference) into the reference model (TrRa; TrRa-iter with --iterations). */
export async function run(argv: string[]): Promise<void> {
  const { values } = parse(argv, {
    ...TRAIN_OPTIONS,
    reference: { type: 'string' },
    aligned: { type: 'string' },
    lambda: { type: 'string' },
    lora: { type: 'string' },
    'lora-alpha': { type: 'string' },
    kl: { type: 'string' },
    iterations: { type: 'string' },
  });
  if (!values.reference || !values.aligned) throw new UsageError('--reference <dir> and --aligned <dir> are required');
  if (values.lambda === undefined) throw new UsageError('--lambda is required (λ > 1 extrapolates past the aligned model)');
  const lambda = num(values.lambda, 'lambda');
  const kl = values.kl ?? 'reverse';
  if (kl !== 'forward' && kl !== 'reverse') throw new UsageError(`--kl must be forward or reverse, got "${values.kl}"`);
  const iterations = positiveInt(values.iterations, 'iterations', 1);
  let lora: { rank: number; alpha: number } | null = null;
  if (values.lora !== undefined) {
    const rank = num(values.lora, 'lora');
    if (!Number.isInteger(rank) || rank < 1) throw new UsageError(`--lora must be a positive integer rank, got ${values.lora}`);
    lora = { rank, alpha: num(values['lora-alpha'], 'lora-alpha', 2 * rank) };
  } else if (values['lora-alpha'] !== undefined) throw new UsageError('--lora-alpha needs --lora <rank>');
  const settings = await trainSettings(values, { lr: lora ? 1e-4 : 1e-5 });
  const { trainTrra } = await import('../../train/trra.ts');
  const report = await trainTrra({ ...settings, reference: values.reference, aligned: values.aligned, lambda, kl, iterations, lora, progress: new TrainProgress('train-trra') });
  const last = report.losses.at(-1);
  process.stderr.write(`realign: ${report.steps} steps over ${iterations} iteration(s), ${report.seconds.toFixed(1)} s${last === undefined ? '' : `, final KL ${last.toFixed(4)}`}\n`);
  process.stdout.write(`${report.out}\n`);
}
