/**
 * `npm run bench`: every CPU comparison of issue 7 in one run on this machine (side by side, interleaved,
 * medians), plus the GPU figures from bench/results/gpu/ when a GPU run left them there. Writes
 * bench/results/<date>.json, bench/results/summary.json, bench/results/report.md and SVG plots.
 *
 *   npm run bench [-- --quick] [-- --skip-05b] [-- --skip-quantized]
 */
import { cpus, totalmem } from 'node:os';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startSystem } from '../scripts/lib/system.ts';
import { adaptersBench, type AdaptersBenchResult } from './adapters-bench.ts';
import { bindingBench, type BindingBenchResult } from './binding-bench.ts';
import { engineBench, prefillInterferenceBench, type EngineRow, type PrefillInterferenceResult } from './engine-bench.ts';
import { graphBench, type GraphBenchResult } from './graph-bench.ts';
import { BENCH_ROOT, benchModels } from './lib/models.ts';
import { logitsBench, type LogitsBenchResult } from './logits-bench.ts';
import { readQuantizedAccuracy, type QuantizedAccuracy } from './quantized-report.ts';
import { quantizedSpeedInChild, type QuantSpeedResult } from './quantized-speed.ts';
import { renderReport } from './report.ts';
import { servingBench, type ServingResult } from './serving-bench.ts';

const ROOT = resolve(import.meta.dirname, '..');
const { values } = parseArgs({
  options: {
    quick: { type: 'boolean' },
    'skip-05b': { type: 'boolean' },
    'skip-quantized': { type: 'boolean' },
    out: { type: 'string' },
  },
});
const quick = values.quick === true;
const log = (s: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${s}\n`);
const outDir = values.out ?? join(ROOT, 'bench', 'results');
mkdirSync(outDir, { recursive: true });

/** Everything one run measured. */
export interface BenchRun {
  date: string;
  machine: { cpu: string; cores: number; memoryGiB: number; node: string; onnxruntime: string };
  graph: GraphBenchResult[];
  /** issue 14: realign's binding vs onnxruntime-node's JS API, decode steps side by side, and bytes per step */
  binding?: BindingBenchResult;
  /** issue 18: batch 16 with 1, 2 and 4 of four named adapters in use, against one adapter, side by side */
  adapters?: AdaptersBenchResult;
  /** issue 17: float32 / int8 / int4 decode steps side by side with their floors (a child process, the server's allocator settings) */
  quantized?: QuantSpeedResult;
  /** issue 17: the recorded accuracy results (bench/quantized-toy.ts, bench/quantized-agreement.ts) */
  quantizedAccuracy?: QuantizedAccuracy;
  engine: EngineRow[];
  /** issue 14.5: a running stream's inter-token gaps while a long prompt is admitted, chunked prefill vs whole prompts */
  prefill?: PrefillInterferenceResult;
  logits: LogitsBenchResult[];
  serving: ServingResult | null;
  gpu: { results: unknown; torch: unknown; engine?: unknown } | null;
}

const run: BenchRun = {
  date: new Date().toISOString(),
  machine: {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    onnxruntime: JSON.parse(readFileSync(join(ROOT, 'node_modules/onnxruntime-node/package.json'), 'utf8')).version,
  },
  graph: [],
  engine: [],
  logits: [],
  serving: null,
  gpu: null,
};

const rounds = quick ? 8 : 25;
for (const preset of quick || values['skip-05b'] ? ['small'] : ['small', 'qwen2.5-0.5b']) {
  run.graph.push(await graphBench(preset, [1, 4, 16], rounds, log));
}

run.binding = await bindingBench('small', [1, 8], 32, rounds, log);

log('several adapters in one batch');
run.adapters = await adaptersBench('small', 16, rounds, log);

if (!values['skip-quantized']) {
  const presets = quick || values['skip-05b'] ? ['qwen2.5-0.5b'] : ['qwen2.5-0.5b', 'r1-distill-qwen-1.5b'];
  log(`quantized weights: ${presets.join(', ')}`);
  run.quantized = await quantizedSpeedInChild(presets, [1, 8], quick ? 6 : 16);
}
run.quantizedAccuracy = readQuantizedAccuracy(join(ROOT, 'bench', 'results'));

// d and e need the real system: backend + worker, on the small InRa model
const { inra } = benchModels('small', log);
log('engine throughput');
run.engine = await engineBench('small', inra, [1, 8, 32], quick ? 24 : 64);
log('prefill beside running streams: chunked vs whole prompts');
run.prefill = await prefillInterferenceBench('small', inra, { promptTokens: 1024, chunkTokens: 128, rounds: quick ? 2 : 3 });
const token = `bench-${Math.random().toString(36).slice(2)}`;
const sys = await startSystem({
  stateDir: join(BENCH_ROOT, 'system'),
  backends: [
    {
      models: [
        {
          id: 'small',
          mode: 'inra',
          model: inra,
          default_lambda: 0.5,
          lambda_range: [-1, 2],
          device: 'cpu',
          max_batch: 64,
          max_queue: 512,
        },
      ],
    },
  ],
  models: [{ id: 'small', defaultLambda: 0.5 }],
  backendToken: token,
});
try {
  log('logits 8 vs 1');
  run.logits.push(await logitsBench(sys.backendUrls[0], token, 'small', 'small', quick ? 10 : 30));
  run.serving = await servingBench(
    { url: sys.backendUrls[0], key: token },
    { url: sys.edgeUrl, key: sys.apiKey },
    'small',
    {
      concurrency: [1, 8, 32],
      perLevel: (c) => (quick ? Math.max(4, c) : Math.max(12, 3 * c)),
      maxTokens: 32,
      rounds: quick ? 10 : 40,
    },
    log,
  );
} finally {
  await sys.stop();
}

const gpuDir = join(ROOT, 'bench', 'results', 'gpu');
if (existsSync(join(gpuDir, 'gpu-results.json'))) {
  run.gpu = {
    results: JSON.parse(readFileSync(join(gpuDir, 'gpu-results.json'), 'utf8')),
    torch: existsSync(join(gpuDir, 'torch-results.json'))
      ? JSON.parse(readFileSync(join(gpuDir, 'torch-results.json'), 'utf8'))
      : null,
    engine: existsSync(join(gpuDir, 'engine-gpu.json'))
      ? JSON.parse(readFileSync(join(gpuDir, 'engine-gpu.json'), 'utf8'))
      : undefined,
  };
}

const day = run.date.slice(0, 10);
writeFileSync(join(outDir, `${day}.json`), JSON.stringify(run, null, 2) + '\n');
const { summary, markdown, plots } = renderReport(run);
writeFileSync(join(outDir, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
// issue 20: the edge's before/after section, written by bench/edge-bench.ts (it needs a second checkout; see there)
const edgeSection = join(outDir, 'edge-report.md');
writeFileSync(
  join(outDir, 'report.md'),
  existsSync(edgeSection) ? `${markdown}\n${readFileSync(edgeSection, 'utf8')}` : markdown,
);
for (const [name, svg] of Object.entries(plots)) writeFileSync(join(outDir, name), svg);
log(`wrote ${outDir}/${day}.json, summary.json, report.md and ${Object.keys(plots).length} plots`);
process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
