import { Option, type Command } from 'commander';
import { addModelOptions, modelSource, positiveInt, UsageError, type ModelValues } from '../args.ts';
import { ProgressBar } from '../progress.ts';

/** `realign build-graph`: builds a graph into a cache folder and reports build time and peak memory (JSON). */
export function register(program: Command): void {
  addModelOptions(
    program
      .command('build-graph')
      .description('build the ONNX graph of a model into a cache folder; prints the folder, build time and peak memory (JSON)'),
  )
    .requiredOption('--out <dir>', 'graph cache folder (the graph goes into a subfolder named by its inputs)')
    .addOption(new Option('--float <type>', 'float type of the graph (CUDA serves f16)').choices(['f32', 'f16']).default('f32'))
    .option('--max-context <n>', "longest sequence the graph serves (default: the model's, capped at 8192)", positiveInt)
    .option('--naive', 'the naive InRa layout (both branches run every layer; benchmarks only)')
    .action(async (o: ModelValues & { out: string; float: 'f32' | 'f16'; maxContext?: number; naive?: boolean }) => {
      const source = await modelSource(o);
      if (o.naive && source.mode !== 'inra') throw new UsageError('--naive needs an InRa checkpoint');
      const { ensureGraph } = await import('../../graph/build.ts');
      const { openSource } = await import('../../engine/model-loader.ts');
      const ckpts = openSource(source);
      const main = (ckpts.model ?? ckpts.reference)!;
      const maxContext = o.maxContext ?? Math.min(8192, main.config.maxPositions);
      const bar = new ProgressBar('build-graph');
      const mode = o.naive ? 'naive-inra' : source.mode;
      const { graphWeights } = await import('../../graph/quantize.ts');
      // --float picks the float type (f16: as on CUDA); --weights float32/float16 sets it, int8/int4 quantize on top of it
      const weights = graphWeights(source.weights, o.float === 'f16' ? 'cuda' : 'cpu');
      const files = ensureGraph({ mode, ...weights, maxContext, ...ckpts }, o.out, (d, t) => bar.update(d, t));
      const peakRssMb = Math.round(process.resourceUsage().maxRSS / 1024);
      process.stdout.write(
        `${JSON.stringify({ dir: files.dir, built: files.built, buildMs: Math.round(files.buildMs), peakRssMb })}\n`,
      );
    });
}
