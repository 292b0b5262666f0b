/**
 * The engine (worker thread, continuous batching) on a CUDA GPU: greedy generation tokens/s at batch 1, 8 and 32,
 * with single-step runs against decode-loop runs (M steps per run).
 *
 *   node engine-gpu.js --inra <dir> --out <file.json> [--device cuda] [--batches 1,8,32] [--tokens 64]
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { engineBench, type EngineRow } from '../engine-bench.ts';

const { values } = parseArgs({
  options: {
    inra: { type: 'string' },
    out: { type: 'string' },
    device: { type: 'string', default: 'cuda' },
    batches: { type: 'string', default: '1,8,32' },
    tokens: { type: 'string', default: '64' },
    cache: { type: 'string', default: '/tmp/engine-graphs' },
  },
});
const batches = values.batches!.split(',').map(Number);
const result: Record<string, EngineRow[] | string> = {};
for (const steps of [0, 16]) {
  process.stderr.write(`engine with decodeLoopSteps=${steps}\n`);
  try {
    result[`loop${steps}`] = await engineBench('r1-distill-qwen-1.5b', values.inra!, batches, Number(values.tokens), {
      device: values.device as 'cpu' | 'cuda',
      decodeLoopSteps: steps,
      graphCache: values.cache,
      promptTokens: 128,
    });
  } catch (err) {
    result[`loop${steps}`] = String((err as Error).stack);
  }
  writeFileSync(values.out!, JSON.stringify(result, null, 2));
  process.stderr.write(`${JSON.stringify(result[`loop${steps}`])}\n`);
}
process.exit(0);
