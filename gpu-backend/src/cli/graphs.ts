/**
 * Builds (or finds) a model's graphs before the engine opens them, so that the CLI can show the build: it takes
 * tens of seconds for real shapes, and the engine builds in its worker thread without a word. The spec mirrors
 * loadModel's (engine/model-loader.ts), so the engine then finds the graphs in the cache.
 */
import { defaultGraphCache, ensureGraph, graphCached, type GraphVariant } from '../graph/build.ts';
import type { Checkpoint } from '../checkpoint/checkpoint.ts';
import { graphWeights, weightsLabel } from '../graph/quantize.ts';
import { chooseDevice, openSource, type ModelSource } from '../engine/model-loader.ts';
import type { Device } from '../ort/session.ts';
import { note, ProgressBar } from './progress.ts';

/** What the graphs were made for. */
export interface PreparedModel {
  /** the checkpoint whose tokenizer serves text */
  main: Checkpoint & { tokenizerFile: string };
  device: Device;
  deviceReason: string;
  graphCache: string;
  maxContext: number;
}

/**
 * Opens the checkpoints, checks that the tokenizer is there (before any build), and builds the graph variants
 * needed on the device `auto` resolves to, reporting the cache folder once and each build's progress.
 */
export async function prepareGraphs(
  source: ModelSource,
  requested: Device | 'auto',
  variants: (device: Device) => GraphVariant[],
): Promise<PreparedModel> {
  const ckpts = openSource(source);
  const main = (ckpts.model ?? ckpts.reference)!;
  if (!main.tokenizerFile)
    throw new Error(
      `${main.dir} has no tokenizer.json; realign needs the model's tokenizer (copy tokenizer.json and tokenizer_config.json from the model's release)`,
    );
  const { device, reason } = await chooseDevice(requested);
  const graphCache = defaultGraphCache();
  const maxContext = Math.min(8192, main.config.maxPositions);
  const weights = graphWeights(source.weights, device);
  for (const variant of variants(device)) {
    const spec = { mode: source.mode, ...weights, maxContext, ...ckpts } as const;
    const label = `graph ${source.mode}${variant === 'step' ? '' : ` ${variant}`} (${weightsLabel(weights.floatType, weights.quant)}, context ${maxContext})`;
    if (graphCached(spec, graphCache, variant)) {
      note(`${label}: cached in ${graphCache}`);
      continue;
    }
    note(`building ${label} in ${graphCache} (first use of this model; later runs reuse it; REALIGN_CACHE moves the cache)`);
    const bar = new ProgressBar(`building ${label}`);
    ensureGraph(spec, graphCache, (done, total) => bar.update(done, total), variant);
  }
  return { main: main as PreparedModel['main'], device, deviceReason: reason, graphCache, maxContext };
}
