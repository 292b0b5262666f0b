/** Options shared by `realign train-inra` and `realign train-trra`, parsed into TrainSettings. */
import { DEFAULT_SETTINGS, type TrainSettings } from '../../train/options.ts';
import { deviceOption, num, UsageError } from '../args.ts';

/** parseArgs options of the training settings. */
export const TRAIN_OPTIONS = {
  data: { type: 'string' },
  out: { type: 'string' },
  'batch-size': { type: 'string' },
  'grad-accum': { type: 'string' },
  epochs: { type: 'string' },
  steps: { type: 'string' },
  lr: { type: 'string' },
  warmup: { type: 'string' },
  'min-lr-ratio': { type: 'string' },
  'weight-decay': { type: 'string' },
  'max-grad-norm': { type: 'string' },
  seed: { type: 'string' },
  'max-length': { type: 'string' },
  device: { type: 'string' },
  threads: { type: 'string' },
  'save-every': { type: 'string' },
  resume: { type: 'boolean' },
  'work-dir': { type: 'string' },
  'keep-work-dir': { type: 'boolean' },
} as const;

/** The usage text of the shared options. */
export const TRAIN_USAGE =
  '[--batch-size n] [--grad-accum n] [--epochs n | --steps n] [--lr x] [--warmup n] [--min-lr-ratio r] [--weight-decay w] [--max-grad-norm g] ' +
  '[--seed s] [--max-length n] [--device auto|cpu|cuda] [--threads n] [--save-every n] [--resume] [--work-dir dir] [--keep-work-dir]';

type Values = { [K in keyof typeof TRAIN_OPTIONS]?: (typeof TRAIN_OPTIONS)[K]['type'] extends 'boolean' ? boolean : string };

/** Checked settings from parsed options; `defaults` overrides the project-wide defaults (e.g. the learning rate). */
export async function trainSettings(v: Values, defaults: Partial<TrainSettings> = {}): Promise<TrainSettings & { data: string; out: string }> {
  const d = { ...DEFAULT_SETTINGS, ...defaults };
  if (!v.data) throw new UsageError('--data <jsonl> is required');
  if (!v.out) throw new UsageError('--out <dir> is required');
  const int = (key: keyof Values, fallback: number, min: number) => {
    const n = num(v[key] as string | undefined, key, fallback);
    if (!Number.isInteger(n) || n < min) throw new UsageError(`--${key} must be an integer ≥ ${min}, got ${v[key]}`);
    return n;
  };
  const positive = (key: keyof Values, fallback: number) => {
    const n = num(v[key] as string | undefined, key, fallback);
    if (!(n > 0)) throw new UsageError(`--${key} must be > 0, got ${v[key]}`);
    return n;
  };
  const nonNegative = (key: keyof Values, fallback: number) => {
    const n = num(v[key] as string | undefined, key, fallback);
    if (n < 0) throw new UsageError(`--${key} must be ≥ 0, got ${v[key]}`);
    return n;
  };
  if (v.steps !== undefined && v.epochs !== undefined) throw new UsageError('give either --epochs or --steps, not both');
  const device = deviceOption(v.device);
  const minLr = nonNegative('min-lr-ratio', d.minLrRatio);
  if (minLr > 1) throw new UsageError(`--min-lr-ratio must be in [0, 1], got ${minLr}`);
  return {
    data: v.data,
    out: v.out,
    batchSize: int('batch-size', d.batchSize, 1),
    gradAccum: int('grad-accum', d.gradAccum, 1),
    epochs: int('epochs', d.epochs, 1),
    steps: v.steps === undefined ? undefined : int('steps', 0, 0),
    lr: positive('lr', d.lr),
    warmupSteps: int('warmup', d.warmupSteps, 0),
    minLrRatio: minLr,
    optimizer: { ...d.optimizer, weightDecay: nonNegative('weight-decay', d.optimizer.weightDecay), maxGradNorm: nonNegative('max-grad-norm', d.optimizer.maxGradNorm) },
    seed: int('seed', d.seed, 0),
    maxLength: int('max-length', d.maxLength, 2),
    // loaded here so that a usage error never waits for onnxruntime to load
    device: (await (await import('../../engine/model-loader.ts')).chooseDevice(device)).device,
    threads: v.threads === undefined ? undefined : int('threads', 0, 1),
    saveEvery: int('save-every', d.saveEvery, 0),
    resume: v.resume === true,
    workDir: v['work-dir'],
    keepWorkDir: v['keep-work-dir'] === true,
  };
}
