/**
 * Issue 17's accuracy check on a trained model: the toy InRa checkpoint (models/toy-inra, trained by `npm run toy`)
 * on `npm run toy`'s 200 held-out problems through the serving runtime (evaluate.ts: the Engine, one λ per request,
 * sampling at temperature 0.7 with the same per-problem seeds), at λ ∈ {−0.5, 0, 0.5, 1}, with float32, int8 and int4
 * weights (block 32, the CPU's accuracy_level 4; every projection, lm_head, the embedding table and the adapter
 * quantized — the defaults), and int8/int4 with the adapter kept in float32. Accuracy and mean answer length per
 * cell; the float32 column should reproduce bench/toy/README.md's recorded InRa sweep exactly.
 *
 * The toy model's matrices are [128 or 384] × [128 or 384] (hidden 128, MLP 384, head 32): every inner dimension is
 * a multiple of the block size 32, so every block is full and nothing stays in float for shape reasons.
 *
 *   node --import tsx bench/quantized-toy.ts [--out bench/results/quantized-toy.json]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { WeightOptions } from '../gpu-backend/src/graph/quantize.ts';
import { evaluate, EVAL_SAMPLING, type EvalPoint } from './toy/evaluate.ts';
import { problems } from './toy/task.ts';

/** bench/toy/run.ts' seed (its held-out problems are problems(SEED + 1, 200), evaluated with seed SEED) */
const SEED = 20250615;
const LAMBDAS = [-0.5, 0, 0.5, 1];
const MODEL = resolve(import.meta.dirname, '../models/toy-inra');

export interface QuantizedToyResult {
  date: string;
  model: string;
  problems: number;
  sampling: typeof EVAL_SAMPLING;
  lambdas: number[];
  variants: { name: string; weights: WeightOptions | null; points: EvalPoint[] }[];
}

const VARIANTS: { name: string; weights: WeightOptions | null }[] = [
  { name: 'float32', weights: null },
  { name: 'int8', weights: { format: 'int8' } },
  { name: 'int4', weights: { format: 'int4' } },
  { name: 'int8, float adapter', weights: { format: 'int8', keepFloat: ['adapter'] } },
  { name: 'int4, float adapter', weights: { format: 'int4', keepFloat: ['adapter'] } },
];

/** The result as a markdown table: accuracy and mean tokens per λ, int formats with their differences to float32. */
export function toyTable(r: QuantizedToyResult): string {
  const base = r.variants.find((v) => v.name === 'float32')!;
  const lines = [
    `| weights | ${r.lambdas.map((l) => `λ ${l}: accuracy / mean tokens`).join(' | ')} |`,
    `|---|${r.lambdas.map(() => '---').join('|')}|`,
  ];
  for (const v of r.variants) {
    const cells = v.points.map((p, i) => {
      const b = base.points[i];
      const own = `${(100 * p.accuracy).toFixed(1)}% / ${p.mean_tokens.toFixed(1)}`;
      if (v === base) return own;
      const dAcc = 100 * (p.accuracy - b.accuracy);
      const dLen = (100 * (p.mean_tokens - b.mean_tokens)) / b.mean_tokens;
      return `${own} (${dAcc >= 0 ? '+' : ''}${dAcc.toFixed(1)} pt, ${dLen >= 0 ? '+' : ''}${dLen.toFixed(1)}%)`;
    });
    lines.push(`| ${v.name} | ${cells.join(' | ')} |`);
  }
  return lines.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: { out: { type: 'string', default: resolve(import.meta.dirname, 'results/quantized-toy.json') } },
  });
  const test = problems(SEED + 1, 200);
  const graphs = mkdtempSync(join(tmpdir(), 'realign-qtoy-'));
  const result: QuantizedToyResult = {
    date: new Date().toISOString(),
    model: 'models/toy-inra',
    problems: test.length,
    sampling: EVAL_SAMPLING,
    lambdas: LAMBDAS,
    variants: [],
  };
  try {
    for (const v of VARIANTS) {
      process.stderr.write(`quantized-toy: ${v.name}\n`);
      const points = await evaluate(
        { mode: 'inra', model: MODEL, ...(v.weights ? { weights: v.weights } : {}) },
        MODEL,
        test,
        LAMBDAS,
        SEED,
        graphs,
      );
      result.variants.push({ name: v.name, weights: v.weights, points });
    }
  } finally {
    rmSync(graphs, { recursive: true, force: true });
  }
  writeFileSync(values.out!, JSON.stringify(result, null, 2) + '\n');
  process.stdout.write(toyTable(result) + '\n');
}
