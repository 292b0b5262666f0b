/**
 * Issue 18's toy demonstration: two named adapters over the toy reference, pulling in different directions —
 * `aligned` (models/toy-inra's trained adapter: 0–1 checks instead of 2–6) and `format`, trained here by
 * `trainInra` with the other adapter frozen, on the reference's long answers ending `sum 632` instead of
 * `answer 632` (a different answer format, same checks; ` sum` is one token of the toy vocabulary). Each alone, mixed, and a λ sweep of each, on held-out
 * problems through the Engine (per-request mixes in one batch).
 *
 *   node --import tsx bench/toy/two-adapters.ts [--charts]   → results-two-adapters.json, a markdown table, two SVGs
 *   (--charts: only redraw the SVGs from the recorded results)
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Engine } from '../../gpu-backend/src/engine/engine.ts';
import { addAdapter } from '../../gpu-backend/src/make/adapters.ts';
import { TextTokenizer } from '../../gpu-backend/src/text/tokenizer.ts';
import { trainInra } from '../../gpu-backend/src/train/inra.ts';
import { DEFAULT_SETTINGS } from '../../gpu-backend/src/train/options.ts';
import { TrainProgress } from '../../gpu-backend/src/train/progress.ts';
import { barChart, lineChart } from './plot.ts';
import { answerOnce } from './evaluate.ts';
import { answerOf, problems, promptOf, type Problem } from './task.ts';

const HERE = import.meta.dirname;
const ROOT = join(HERE, '..', '..');
const SEED = 20250615;
const WORK = join(ROOT, '.realign', 'toy-two-adapters');
const TEST = 100;

/** The reference's answer with its last word changed: `... sum 632`. */
function formatAnswer(p: Problem, checks: number): string {
  return answerOf(p, checks).replace(/answer (\d+)$/, 'sum $1');
}

/** One evaluated mix. */
interface Point {
  mix: Record<string, number>;
  mean_tokens: number;
  accuracy: number;
  /** answers ending `sum N` (the format adapter's style) */
  format_share: number;
  mean_checks: number;
}

/** The README's charts: the format adapter's λ sweep and every mix's answer length. */
function charts(points: Point[]): void {
  const sweep = points.filter((p) => Object.keys(p.mix).every((k) => k === 'format'));
  writeFileSync(
    join(HERE, 'two-adapters-format.svg'),
    lineChart({
      title: 'adapter "format" alone: answers ending "sum N" vs its λ',
      xLabel: 'λ_format   (z = z_ref + λ·(z_format − z_ref))',
      yLabel: 'answers ending "sum N"',
      points: sweep.map((p) => ({ x: p.mix.format ?? 0, y: p.format_share, label: `${Math.round(100 * p.format_share)}%` })),
      yFormat: (v) => `${Math.round(100 * v)}%`,
      yMin: 0,
      yMax: 1,
    }),
  );
  writeFileSync(
    join(HERE, 'two-adapters-length.svg'),
    barChart({
      title: 'mean answer tokens per mix (two adapters, one base)',
      xLabel: 'mean answer tokens',
      bars: points.map((p) => ({
        label: Object.keys(p.mix).length
          ? Object.entries(p.mix)
              .map(([k, v]) => `${k} ${v}`)
              .join(' + ')
          : 'reference',
        value: p.mean_tokens,
        note: `· sum ${Math.round(100 * p.format_share)}% · acc ${Math.round(100 * p.accuracy)}%`,
      })),
    }),
  );
}

async function main(): Promise<void> {
  if (process.argv.includes('--charts')) {
    charts((JSON.parse(readFileSync(join(HERE, 'results-two-adapters.json'), 'utf8')) as { points: Point[] }).points);
    return;
  }
  mkdirSync(WORK, { recursive: true });
  const test = problems(SEED + 1, TEST);
  const heldOut = new Set(test.map(promptOf));
  const model = join(WORK, 'two');
  if (!existsSync(model)) {
    const added = join(WORK, 'added');
    if (!existsSync(added)) addAdapter(join(ROOT, 'models', 'toy-inra'), added, 'format');
    const train = problems(SEED + 7, 1920, heldOut);
    const data = join(WORK, 'format.jsonl');
    writeFileSync(
      data,
      train.map((p, i) => JSON.stringify({ prompt: promptOf(p), response: formatAnswer(p, 2 + (i % 5)) })).join('\n') + '\n',
    );
    await trainInra({
      ...DEFAULT_SETTINGS,
      steps: 120,
      batchSize: 16,
      lr: 1e-3,
      warmupSteps: 10,
      minLrRatio: 0.05,
      optimizer: { beta1: 0.9, beta2: 0.98, eps: 1e-8, weightDecay: 0.01, maxGradNorm: 1 },
      seed: SEED,
      maxLength: 192,
      device: 'cpu',
      threads: 2,
      saveEvery: 0,
      model: added,
      adapter: 'format',
      data,
      out: model,
      progress: new TrainProgress('train-inra format', undefined, false, 20),
    });
  }
  const mixes: Record<string, number>[] = [
    {},
    { aligned: 0.5 },
    { aligned: 1 },
    { format: 0.5 },
    { format: 1 },
    { format: 1.5 },
    { aligned: 1, format: 1 },
    { aligned: 0.5, format: 1 },
  ];
  const tok = TextTokenizer.load(join(model, 'tokenizer.json'), join(model, 'tokenizer_config.json'));
  const engine = await Engine.start({
    source: { mode: 'inra', model },
    device: 'cpu',
    graphCache: join(WORK, 'graphs'),
    maxContext: 256,
    limits: { maxBatch: 64, maxKvTokens: 1 << 22, maxQueue: 100_000, maxPrefillTokens: 1 << 14 },
  });
  const points: Point[] = [];
  try {
    // every mix's requests go to the engine at once: rows of different mixes share the batches
    const all = mixes.map((mix) =>
      Promise.all(
        test.map(async (p, i) => {
          const { text, tokens } = await answerOnce(engine, tok, p, { lambda: 0, mix, seed: SEED * 100_003 + i });
          // the answer: the number after the last "answer" or, in the format adapter's style, the last "sum"
          const m = /(answer|sum) (\d+)\s*$/.exec(text.trim());
          return {
            tokens,
            correct: m !== null && Number(m[2]) === p.a + p.b,
            format: m?.[1] === 'sum',
            checks: (text.match(/check /g) ?? []).length,
          };
        }),
      ),
    );
    for (const [k, done] of (await Promise.all(all)).entries()) {
      const mean = (f: (r: (typeof done)[number]) => number) => done.reduce((s, r) => s + f(r), 0) / done.length;
      points.push({
        mix: mixes[k],
        mean_tokens: mean((r) => r.tokens),
        accuracy: mean((r) => (r.correct ? 1 : 0)),
        format_share: mean((r) => (r.format ? 1 : 0)),
        mean_checks: mean((r) => r.checks),
      });
    }
  } finally {
    await engine.shutdown();
  }
  writeFileSync(join(HERE, 'results-two-adapters.json'), JSON.stringify({ test: TEST, seed: SEED, points }, null, 2) + '\n');
  charts(points);
  const pct = (x: number) => `${(100 * x).toFixed(0)}%`;
  const rows = points.map(
    (p) =>
      `| ${JSON.stringify(p.mix)} | ${p.mean_tokens.toFixed(1)} | ${p.mean_checks.toFixed(2)} | ${pct(p.format_share)} | ${pct(p.accuracy)} |`,
  );
  process.stdout.write(
    ['| mix | mean answer tokens | checks | ends "sum N" | accuracy |', '| --- | ---: | ---: | ---: | ---: |', ...rows].join(
      '\n',
    ) + '\n',
  );
}

await main();
