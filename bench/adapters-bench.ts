/**
 * Issue 18: decode steps of a batch of 16 sequences on a model of four named InRa adapters with 1, 2 and 4 of them
 * in use (rows spread evenly over them, each row one adapter at λ = 0.5), against the same batch on one adapter,
 * and that against today's one-adapter graph — all measured in turn in one process (interleaved, paired medians).
 *
 *   node --import tsx bench/adapters-bench.ts [--preset small] [--rounds 25]
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { openCheckpoint } from '../gpu-backend/src/checkpoint/checkpoint.ts';
import { GraphRunner, type StepPlan } from '../gpu-backend/src/engine/graph-runner.ts';
import { mixTerms } from '../gpu-backend/src/engine/mix.ts';
import { RowAllocator, branchesFor } from '../gpu-backend/src/engine/rows.ts';
import { ensureGraph } from '../gpu-backend/src/graph/build.ts';
import type { GraphManifest } from '../gpu-backend/src/graph/model-graph.ts';
import { addAdapter } from '../gpu-backend/src/make/adapters.ts';
import { perturbCheckpoint } from '../gpu-backend/src/make/synthetic.ts';
import { ModelSession } from '../gpu-backend/src/ort/session.ts';
import { BENCH_ROOT, benchModels } from './lib/models.ts';
import { interleaved, pairedRatio, summarize, type Timing } from './lib/stats.ts';

/** What the bench measured. */
export interface AdaptersBenchResult {
  preset: string;
  batch: number;
  rows: { variant: string; adaptersInUse: number; timing: Timing }[];
  /** paired medians: step time with k adapters in use / with one (the target: ≤ 1.15 at 4 for `small`) */
  vsOneAdapter: Record<number, number>;
  /** the multi-adapter graph with one adapter in use / today's one-adapter graph, same rows */
  multiGraphVsOneAdapterGraph: number;
}

/** `inra` (one perturbed adapter, named `aligned`) with three more perturbed adapters: b, c, d. */
function fourAdapters(inra: string, preset: string, log: (s: string) => void): string {
  const out = join(BENCH_ROOT, 'models', `${preset}-4adapters`);
  if (existsSync(out)) return out;
  log(`${preset}: adding adapters b, c, d`);
  const work = join(BENCH_ROOT, 'models', `.${preset}-4adapters-work-${process.pid}`);
  addAdapter(inra, `${work}-b`, 'b');
  addAdapter(`${work}-b`, `${work}-c`, 'c');
  addAdapter(`${work}-c`, `${work}-d`, 'd');
  // a trained adapter costs what an identity one does; perturbing makes the branches differ, as trained ones do
  perturbCheckpoint(`${work}-d`, out, (n) => /^model\.layers\.[123]\./.test(n), 11, 0.02);
  return out;
}

/** Rows of a multi-adapter graph: each sequence one reference row and one row of its adapter (λ ∉ {0, 1}). */
class AdapterRows {
  private readonly seqs: { adapter: string; ref: number; row: number; length: number }[] = [];
  constructor(readonly runner: GraphRunner) {}

  add(adapter: string): void {
    const c = this.runner.caches;
    const a = this.runner.manifest.adapters!.findIndex((x) => x.name === adapter);
    const ref = c[0].addRow();
    const row = c[0].addRow();
    c[1 + a].addRow();
    this.seqs.push({ adapter, ref, row, length: 0 });
  }

  plan(tokens: (i: number) => number[], prefill: boolean): StepPlan {
    const adapters = this.runner.manifest.adapters!;
    const R = this.runner.caches[0].size;
    const t: number[][] = new Array(R);
    const totals: number[] = new Array(R);
    const positions: number[][] = new Array(R);
    const adapterRowsBy: number[][] = adapters.map(() => []);
    this.seqs.forEach((s, i) => {
      const ids = tokens(i);
      for (const r of [s.ref, s.row]) {
        t[r] = ids;
        totals[r] = s.length + ids.length;
        positions[r] = [ids.length - 1];
      }
      adapterRowsBy[adapters.findIndex((a) => a.name === s.adapter)].push(s.row);
    });
    return {
      ranges: this.runner.caches.map((c) => ({ start: 0, count: c.size })),
      tokens: t,
      totals,
      prefill,
      positions,
      adapterRowsBy,
      outputs: this.seqs.map((s) => ({
        lambda: 0.5,
        aligned: s.row,
        reference: s.ref,
        terms: mixTerms({ [s.adapter]: 0.5 }, s.ref, () => s.row),
      })),
    };
  }

  async step(tokens: (i: number) => number[], prefill: boolean): Promise<void> {
    const plan = this.plan(tokens, prefill);
    await this.runner.step(plan);
    this.seqs.forEach((s, i) => (s.length += tokens(i).length));
  }
}

async function open(dir: string): Promise<{ session: ModelSession; manifest: GraphManifest }> {
  const files = ensureGraph(
    { mode: 'inra', floatType: 'float32', maxContext: 1024, model: openCheckpoint(dir) },
    join(BENCH_ROOT, 'graphs'),
  );
  return { session: await ModelSession.open(files.modelPath, { device: 'cpu' }), manifest: files.manifest };
}

/** Runs the comparison for `preset` at batch `B`. */
export async function adaptersBench(
  preset: string,
  B: number,
  rounds: number,
  log: (s: string) => void,
): Promise<AdaptersBenchResult> {
  const { inra } = benchModels(preset, log);
  const multi = fourAdapters(inra, preset, log);
  log(`${preset}: building/opening the one-adapter and four-adapter graphs`);
  const one = await open(inra);
  const four = await open(multi);
  const vocab = one.manifest.vocabSize;
  const prompt = (i: number) => Array.from({ length: 64 }, (_, k) => (k * 31 + i * 7) % vocab);
  // today's graph through the engine's allocator
  const base = new GraphRunner(one.session, one.manifest);
  const baseRows = new RowAllocator(base);
  const handles = Array.from({ length: B }, () => baseRows.add(branchesFor('inra', [0.5])));
  const pre = baseRows.prefillPlan(handles.map((handle, i) => ({ handle, tokens: prompt(i), lambdas: [0.5] })));
  await base.step(pre);
  baseRows.commit(pre);
  const names = ['aligned', 'b', 'c', 'd'];
  const inUse = [1, 2, 4];
  const variants = new Map<number, AdapterRows>();
  for (const k of inUse) {
    const rows = new AdapterRows(new GraphRunner(four.session, four.manifest));
    for (let i = 0; i < B; i++) rows.add(names[i % k]);
    await rows.step(prompt, true);
    variants.set(k, rows);
  }
  let step = 0;
  const steps: Record<string, () => Promise<void>> = {
    'one-adapter graph': async () => {
      const next = new Map(handles.map((h, i) => [h.id, { token: (i * 13 + h.length) % vocab, lambdas: [0.5] }]));
      const plan = baseRows.decodePlan(next);
      await base.step(plan);
      baseRows.commit(plan);
    },
  };
  for (const [k, rows] of variants) steps[`${k} of 4 adapters`] = () => rows.step((i) => [(i * 13 + 64 + step++) % vocab], false);
  log(`${preset}: batch ${B}, ${rounds} rounds`);
  const samples = await interleaved(steps, rounds, 3);
  const result: AdaptersBenchResult = {
    preset,
    batch: B,
    rows: Object.keys(steps).map((variant) => ({
      variant,
      adaptersInUse: variant === 'one-adapter graph' ? 1 : Number(variant.split(' ')[0]),
      timing: summarize(samples[variant]),
    })),
    vsOneAdapter: Object.fromEntries(
      inUse.map((k) => [k, pairedRatio(samples[`${k} of 4 adapters`], samples['1 of 4 adapters'])]),
    ),
    multiGraphVsOneAdapterGraph: pairedRatio(samples['1 of 4 adapters'], samples['one-adapter graph']),
  };
  await base.release();
  for (const rows of variants.values()) for (const c of rows.runner.caches) c.release();
  await four.session.release();
  return result;
}

/** The report's section (bench/report.ts). */
export function adaptersSection(r: AdaptersBenchResult): string[] {
  const f = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
  const four = r.vsOneAdapter[4];
  return [
    `## Several named adapters in one batch (${r.preset}, batch ${r.batch}, each row one adapter at λ = 0.5, CPU)`,
    '',
    '| variant | ms/step (median) | p10 | p90 | vs 1 adapter in use (paired median) |',
    '| --- | --- | --- | --- | --- |',
    ...r.rows.map((row) => {
      const k = row.variant === 'one-adapter graph' ? null : row.adaptersInUse;
      const ratio =
        k === null ? `${f(r.multiGraphVsOneAdapterGraph ** -1, 3)} (this graph / four-adapter graph)` : f(r.vsOneAdapter[k], 3);
      return `| ${row.variant} | ${f(row.timing.medianMs)} | ${f(row.timing.p10Ms)} | ${f(row.timing.p90Ms)} | ${ratio} |`;
    }),
    '',
    `Target: ≤ 1.15× at 4 adapters in use — ${f(four, 3)}×, ${four <= 1.15 ? 'met' : '**missed**'}. Each adapter in use reads its own layer's weights once per step, for fewer rows; the original layers and lm_head are read once for all rows whatever the mix.`,
  ];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: { preset: { type: 'string' }, rounds: { type: 'string' }, batch: { type: 'string' } },
  });
  const log = (s: string) => process.stderr.write(`[adapters-bench] ${s}\n`);
  const r = await adaptersBench(values.preset ?? 'small', Number(values.batch ?? 16), Number(values.rounds ?? 25), log);
  for (const row of r.rows)
    log(`${row.variant.padEnd(20)} median ${row.timing.medianMs.toFixed(2)} ms/step (p10 ${row.timing.p10Ms?.toFixed(2)})`);
  log(
    `vs one adapter in use: ${JSON.stringify(r.vsOneAdapter)}; multi graph (1 in use) / one-adapter graph: ${r.multiGraphVsOneAdapterGraph.toFixed(3)}`,
  );
  process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
}
