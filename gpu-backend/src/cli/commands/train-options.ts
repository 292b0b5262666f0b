/** Options shared by `realign train-inra` and `realign train-trra`, parsed into TrainSettings. */
import { InvalidArgumentError, Option, type Command } from 'commander';
import { DEFAULT_SETTINGS, type TrainSettings } from '../../train/options.ts';
import { deviceOption, finite, nonNegativeInt, positiveInt, UsageError } from '../args.ts';

/** The values of the shared options (commander's names). */
export interface TrainValues {
  data?: string;
  out?: string;
  batchSize: number;
  gradAccum: number;
  epochs?: number;
  steps?: number;
  lr?: number;
  warmup: number;
  minLrRatio: number;
  weightDecay: number;
  maxGradNorm: number;
  seed: number;
  maxLength: number;
  device: string;
  threads?: number;
  saveEvery: number;
  resume?: boolean;
  workDir?: string;
  keepWorkDir?: boolean;
}

/** Adds the shared training options; `lr` is the command's default learning rate (shown in --help). */
export function addTrainOptions(cmd: Command, lr: string): Command {
  const d = DEFAULT_SETTINGS;
  const atLeast2 = (v: string) => {
    const n = positiveInt(v);
    if (n < 2) throw new InvalidArgumentError(`expected an integer ≥ 2, got "${v}"`);
    return n;
  };
  return cmd
    .option('--data <jsonl>', 'training pairs, one {"prompt": …, "response": …} per line')
    .option('--out <dir>', 'folder to create for the trained checkpoint')
    .option('--batch-size <n>', 'sequences per micro-batch', positiveInt, d.batchSize)
    .option('--grad-accum <n>', 'micro-batches per optimizer step', positiveInt, d.gradAccum)
    .option('--epochs <n>', `passes over the data (default: ${d.epochs})`, positiveInt)
    .option('--steps <n>', 'optimizer steps (instead of --epochs)', nonNegativeInt)
    .option('--lr <x>', `peak learning rate (default: ${lr})`, positive)
    .option('--warmup <n>', 'linear warm-up steps', nonNegativeInt, d.warmupSteps)
    .option('--min-lr-ratio <r>', 'final learning rate as a fraction of the peak (cosine decay), in [0, 1]', unit, d.minLrRatio)
    .option('--weight-decay <w>', 'AdamW weight decay', nonNegative, d.optimizer.weightDecay)
    .option('--max-grad-norm <g>', 'gradient clipping norm (0: off)', nonNegative, d.optimizer.maxGradNorm)
    .option('--seed <s>', 'data order and initialisation seed', nonNegativeInt, d.seed)
    .option('--max-length <n>', 'longest example in tokens (longer responses are cut)', atLeast2, d.maxLength)
    .addOption(deviceOption())
    .option('--threads <n>', 'CPU threads for onnxruntime (default: its choice)', positiveInt)
    .option('--save-every <n>', 'save a resumable state every n steps (0: never)', nonNegativeInt, d.saveEvery)
    .option('--resume', 'continue from the last saved state in the work folder')
    .addOption(new Option('--work-dir <dir>', 'graphs and states (default: <out>.train)'))
    .option('--keep-work-dir', 'keep the work folder after success');
}

function positive(value: string): number {
  const n = finite(value);
  if (!(n > 0)) throw new InvalidArgumentError(`expected a number > 0, got "${value}"`);
  return n;
}

function nonNegative(value: string): number {
  const n = finite(value);
  if (n < 0) throw new InvalidArgumentError(`expected a number ≥ 0, got "${value}"`);
  return n;
}

function unit(value: string): number {
  const n = nonNegative(value);
  if (n > 1) throw new InvalidArgumentError(`expected a number in [0, 1], got "${value}"`);
  return n;
}

/** Checked settings from parsed options; `defaults` overrides the project-wide defaults (e.g. the learning rate). */
export async function trainSettings(
  v: TrainValues,
  defaults: Partial<TrainSettings> = {},
): Promise<TrainSettings & { data: string; out: string }> {
  const d = { ...DEFAULT_SETTINGS, ...defaults };
  if (!v.data) throw new UsageError('--data <jsonl> is required');
  if (!v.out) throw new UsageError('--out <dir> is required');
  if (v.steps !== undefined && v.epochs !== undefined) throw new UsageError('give either --epochs or --steps, not both');
  return {
    data: v.data,
    out: v.out,
    batchSize: v.batchSize,
    gradAccum: v.gradAccum,
    epochs: v.epochs ?? d.epochs,
    steps: v.steps,
    lr: v.lr ?? d.lr,
    warmupSteps: v.warmup,
    minLrRatio: v.minLrRatio,
    optimizer: { ...d.optimizer, weightDecay: v.weightDecay, maxGradNorm: v.maxGradNorm },
    seed: v.seed,
    maxLength: v.maxLength,
    // loaded here so that a usage error never waits for onnxruntime to load
    device: (await (await import('../../engine/model-loader.ts')).chooseDevice(v.device as 'auto' | 'cpu' | 'cuda')).device,
    threads: v.threads,
    saveEvery: v.saveEvery,
    resume: v.resume === true,
    workDir: v.workDir,
    keepWorkDir: v.keepWorkDir === true,
  };
}
