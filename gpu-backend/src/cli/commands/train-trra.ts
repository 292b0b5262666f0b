import { Option, type Command } from 'commander';
import { finite, positiveInt, UsageError } from '../args.ts';
import { addTrainOptions, trainSettings, type TrainValues } from './train-options.ts';

interface TrraValues extends TrainValues {
  reference?: string;
  aligned?: string;
  lambda?: number;
  lora?: number;
  loraAlpha?: number;
  kl: string;
  iterations: number;
}

/** `realign train-trra`: distils softmax(λ·z_aligned + (1 − λ)·z_reference) into the reference model. */
export function register(program: Command): void {
  addTrainOptions(
    program
      .command('train-trra')
      .description(
        'distil the λ-blend softmax(λ·z_aligned + (1 − λ)·z_reference) into the reference model (TrRa; TrRa-iter with --iterations)',
      )
      .option('--reference <dir>', 'the reference checkpoint (the student starts from it)')
      .option('--aligned <dir>', 'the aligned checkpoint')
      .option('--lambda <λ>', 'the teacher λ (λ > 1 extrapolates past the aligned model)', finite)
      .option('--lora <r>', 'train a LoRA of this rank and merge it (default: full fine-tuning)', positiveInt)
      .option('--lora-alpha <a>', 'LoRA scale (default: 2 × rank)', finite)
      .addOption(new Option('--kl <direction>', 'KL direction of the loss').default('reverse'))
      .option('--iterations <k>', 'TrRa-iter: distil k times, each student the next reference', positiveInt, 1),
    '1e-5 (1e-4 with --lora)',
  ).action(async (o: TrraValues) => {
    if (!o.reference || !o.aligned) throw new UsageError('--reference <dir> and --aligned <dir> are required');
    if (o.lambda === undefined) throw new UsageError('--lambda is required (λ > 1 extrapolates past the aligned model)');
    const kl = o.kl;
    if (kl !== 'forward' && kl !== 'reverse') throw new UsageError(`--kl must be forward or reverse, got "${o.kl}"`);
    if (o.loraAlpha !== undefined && o.lora === undefined) throw new UsageError('--lora-alpha needs --lora <rank>');
    const lora = o.lora === undefined ? null : { rank: o.lora, alpha: o.loraAlpha ?? 2 * o.lora };
    const settings = await trainSettings(o, { lr: lora ? 1e-4 : 1e-5 });
    const { TrainProgress } = await import('../../train/progress.ts');
    const { trainTrra } = await import('../../train/trra.ts');
    const report = await trainTrra({
      ...settings,
      reference: o.reference,
      aligned: o.aligned,
      lambda: o.lambda,
      kl,
      iterations: o.iterations,
      lora,
      progress: new TrainProgress('train-trra'),
    });
    const last = report.losses.at(-1);
    process.stderr.write(
      `realign: ${report.steps} steps over ${o.iterations} iteration(s), ${report.seconds.toFixed(1)} s${last === undefined ? '' : `, final KL ${last.toFixed(4)}`}\n`,
    );
    process.stdout.write(`${report.out}\n`);
  });
}
