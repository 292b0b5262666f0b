/** Option parsers and the option groups the commands share, on commander. */
import { InvalidArgumentError, Option, type Command } from 'commander';
import { readModelConfig } from '../checkpoint/config.ts';
import type { ModelSource } from '../engine/model-loader.ts';
import { WEIGHT_FORMATS, type WeightFormat, type WeightOptions } from '../graph/quantize.ts';
import type { Device } from '../ort/session.ts';
import { checkRevisionUse, resolveModelArg } from './model-arg.ts';
import { UsageError } from './usage-error.ts';

export { UsageError };

/** A finite number (negative ones too: `--lambda -0.5`). */
export function finite(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`expected a finite number, got "${value}"`);
  return n;
}

/** An integer ≥ 1. */
export function positiveInt(value: string): number {
  const n = finite(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`expected a positive integer, got "${value}"`);
  return n;
}

/** An integer ≥ 0. */
export function nonNegativeInt(value: string): number {
  const n = finite(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`expected an integer ≥ 0, got "${value}"`);
  return n;
}

/** A TCP port (0 picks a free one). */
export function port(value: string): number {
  const n = nonNegativeInt(value);
  if (n > 65535) throw new InvalidArgumentError(`expected a port in 0–65535, got "${value}"`);
  return n;
}

/** A comma-separated list of λ values (`0,0.5,-1`). */
export function lambdaList(value: string): number[] {
  return value.split(',').map((s) => finite(s));
}

/** The --device option: auto (CUDA when its provider loads, else CPU), cpu or cuda. */
export function deviceOption(): Option {
  return new Option('--device <device>', 'where to run: auto picks CUDA when its provider libraries load, else CPU')
    .choices(['auto', 'cpu', 'cuda'])
    .default('auto');
}

/** The values of the model options (commander's camelCase names). */
export interface ModelValues {
  model?: string;
  inra?: boolean;
  adapterLayers?: number;
  reference?: string;
  aligned?: string;
  revision?: string;
  weights?: WeightFormat;
  blockSize?: number;
  keepFloat?: NonNullable<WeightOptions['keepFloat']>;
}

/** A block size for int8/int4 weights: a power of two ≥ 16. */
export function blockSize(value: string): number {
  const n = positiveInt(value);
  if (n < 16 || (n & (n - 1)) !== 0) throw new InvalidArgumentError(`expected a power of two ≥ 16, got "${value}"`);
  return n;
}

/** `--keep-float lm_head,embedding,adapter`. */
export function keepFloatList(value: string): NonNullable<WeightOptions['keepFloat']> {
  const parts = value.split(',').map((s) => s.trim());
  for (const p of parts)
    if (p !== 'lm_head' && p !== 'embedding' && p !== 'adapter')
      throw new InvalidArgumentError(`expected a list of lm_head, embedding, adapter; got "${p}"`);
  return parts as NonNullable<WeightOptions['keepFloat']>;
}

/** The weight options as the engine takes them (undefined: the device's float type). */
export function weightOptions(v: Pick<ModelValues, 'weights' | 'blockSize' | 'keepFloat'>): WeightOptions | undefined {
  if (!v.weights) {
    if (v.blockSize !== undefined || v.keepFloat)
      throw new UsageError('--block-size and --keep-float need --weights int8 or int4');
    return undefined;
  }
  if ((v.blockSize !== undefined || v.keepFloat) && v.weights !== 'int8' && v.weights !== 'int4')
    throw new UsageError(`--block-size and --keep-float apply to int8 and int4 weights, not ${v.weights}`);
  return { format: v.weights, blockSize: v.blockSize, keepFloat: v.keepFloat };
}

/** Adds the options that choose a model (logits, generate, build-graph). */
export function addModelOptions(cmd: Command): Command {
  return cmd
    .option(
      '--model <dir>',
      'checkpoint folder or Hugging Face model id (org/name): a plain model, or InRa when its config.json carries the realign_inra marker',
    )
    .option('--inra', 'load --model as InRa even without the marker (checkpoints of the original release)')
    .option('--adapter-layers <k>', 'with --inra: how many bottom layers are the adapter (default: 1)', positiveInt)
    .option('--reference <dir>', 'fusion: the reference checkpoint (λ = 0)')
    .option('--aligned <dir>', 'fusion: the aligned checkpoint (λ = 1); same vocabulary as --reference')
    .option('--revision <rev>', 'branch, tag or commit of the Hugging Face model ids among the model options (default: main)')
    .addOption(
      new Option(
        '--weights <format>',
        'weight format of the graph: int8/int4 quantize blockwise while the graph is built (default: float32 on CPU, float16 on CUDA)',
      ).choices([...WEIGHT_FORMATS]),
    )
    .option('--block-size <n>', 'int8/int4: weights per quantization block, a power of two ≥ 16 (default: 32)', blockSize)
    .option('--keep-float <parts>', 'int8/int4: keep these in float: lm_head,embedding,adapter', keepFloatList);
}

/**
 * Turns the model options into a source: fusion with --reference and --aligned, else one checkpoint (InRa with
 * --inra or when its config.json carries realign's adapter marker).
 */
export async function modelSource(v: ModelValues): Promise<ModelSource> {
  checkRevisionUse([v.model, v.reference, v.aligned], v.revision);
  if (v.reference || v.aligned) {
    if (!v.reference || !v.aligned) throw new UsageError('fusion needs both --reference <dir> and --aligned <dir>');
    if (v.model) throw new UsageError('give either --model or --reference/--aligned, not both');
    const reference = await resolveModelArg(v.reference, { option: '--reference', revision: v.revision });
    return {
      mode: 'fusion',
      reference,
      aligned: await resolveModelArg(v.aligned, { option: '--aligned', revision: v.revision }),
      weights: weightOptions(v),
    };
  }
  if (!v.model) throw new UsageError('--model <dir> is required (or --reference and --aligned for fusion)');
  const model = await resolveModelArg(v.model, { option: '--model', revision: v.revision });
  const inra = v.inra === true || readModelConfig(model).adapterLayers > 0;
  if (v.adapterLayers !== undefined && !inra) throw new UsageError('--adapter-layers needs an InRa checkpoint (or --inra)');
  const weights = weightOptions(v);
  return inra ? { mode: 'inra', model, inraAdapterLayers: v.adapterLayers, weights } : { mode: 'single', model, weights };
}

/** The device value as the engine takes it. */
export function device(value: string): Device | 'auto' {
  return value as Device | 'auto';
}
