import { ensureGraph } from '../../graph/build.ts';
import { openSource } from '../../engine/model-loader.ts';
import { MODEL_OPTIONS, modelSource, num, parse, UsageError } from '../args.ts';
import { ProgressBar } from '../progress.ts';

export const usage =
  'realign build-graph --model <dir> [--inra] [--reference <dir> --aligned <dir>] --out <cache dir> [--float f32|f16] [--max-context n] [--naive]';

/** Builds a graph into a cache folder and reports build time and peak memory (JSON). */
export async function run(argv: string[]): Promise<void> {
  const { values } = parse(argv, { ...MODEL_OPTIONS, out: { type: 'string' }, float: { type: 'string' }, 'max-context': { type: 'string' }, naive: { type: 'boolean' } });
  if (!values.out) throw new UsageError('--out <cache dir> is required');
  const float = values.float ?? 'f32';
  if (float !== 'f32' && float !== 'f16') throw new UsageError(`--float must be f32 or f16, got "${float}"`);
  const source = modelSource(values);
  const ckpts = openSource(source);
  const main = (ckpts.model ?? ckpts.reference)!;
  const maxContext = num(values['max-context'], 'max-context', Math.min(8192, main.config.maxPositions));
  const bar = new ProgressBar('build-graph');
  const mode = values.naive ? (source.mode === 'inra' ? 'naive-inra' : UsageErrorThrow('--naive needs an InRa checkpoint')) : source.mode;
  const files = ensureGraph({ mode, floatType: float === 'f16' ? 'float16' : 'float32', maxContext, ...ckpts }, values.out, (d, t) => bar.update(d, t));
  const peakRssMb = Math.round(process.resourceUsage().maxRSS / 1024);
  process.stdout.write(`${JSON.stringify({ dir: files.dir, built: files.built, buildMs: Math.round(files.buildMs), peakRssMb })}\n`);
}

function UsageErrorThrow(msg: string): never {
  throw new UsageError(msg);
}
