/**
 * Several named InRa adapters over one base (graph/io.ts, multi-adapter graphs): each row's mix
 * z = z_ref + Σ λ_i·(z_i − z_ref) against the float64 reference, each row run alone there.
 */
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../../gpu-backend/src/checkpoint/checkpoint.ts';
import type { StepPlan } from '../../../gpu-backend/src/engine/graph-runner.ts';
import { mixTerms } from '../../../gpu-backend/src/engine/mix.ts';
import { needsFor, type SequencePlan } from '../../../gpu-backend/src/engine/rows.ts';
import { addAdapter } from '../../../gpu-backend/src/make/adapters.ts';
import { perturbCheckpoint } from '../../../gpu-backend/src/make/synthetic.ts';
import { ReferenceModel } from '../../../gpu-backend/src/reference/forward.ts';
import type { QuantSpec } from '../../../gpu-backend/src/graph/quantize.ts';
import { argmax, openGraph, randomTokens, type TestGraph } from '../helpers/graphs.ts';
import { cleanupTempDirs, relErr, tempDir, testSeed, tinyCheckpoint } from '../helpers/models.ts';

afterAll(cleanupTempDirs);

type Mix = Record<string, number>;

/** `base` with adapters concise (1 layer), safe (1 layer), style (2 layers) added one by one. */
function threeAdapters(base: string): string {
  const d = tempDir();
  addAdapter(base, join(d, '1'), 'concise');
  addAdapter(join(d, '1'), join(d, '2'), 'safe');
  addAdapter(join(d, '2'), join(d, '3'), 'style', 2);
  return join(d, '3');
}

/** The adapter layers of `model` perturbed (seeded), as training would change them; `nan`: that adapter poisoned. */
function trained(model: string, seed: number, nan?: string): string {
  const cfg = openCheckpoint(model).config;
  const out = join(tempDir(), 'trained');
  const poison = cfg.adapters.find((a) => a.name === nan);
  const layerOf = (name: string) => Number(/^model\.layers\.(\d+)\./.exec(name)?.[1] ?? -1);
  perturbCheckpoint(model, out, (n) => layerOf(n) >= 0 && layerOf(n) < cfg.adapterLayers, seed, 0.05);
  if (!poison) return out;
  const poisoned = join(tempDir(), 'poisoned');
  const inPoison = (n: string) => layerOf(n) >= poison.first && layerOf(n) < poison.first + poison.layers;
  perturbCheckpoint(out, poisoned, inPoison, seed, Number.NaN);
  return poisoned;
}

/**
 * Rows of a multi-adapter graph (test-side allocation, one step at a time over every row): each sequence gets a
 * reference branch row unless its mix is one adapter at λ = 1, and one branch row per adapter with λ ≠ 0, whose
 * adapter slot is in that adapter's cache group.
 */
class MixRows {
  private readonly seqs: { mix: Mix; ref: number | null; rows: Map<string, number>; length: number }[] = [];
  constructor(private readonly t: TestGraph) {}

  add(mix: Mix): void {
    const caches = this.t.runner.caches;
    const names = this.t.runner.manifest.adapters!.map((a) => a.name);
    const used = Object.entries(mix).filter(([, l]) => l !== 0);
    const needRef = !(used.length === 1 && used[0][1] === 1);
    const ref = needRef ? caches[0].addRow() : null;
    const rows = new Map<string, number>();
    for (const [name] of used) {
      rows.set(name, caches[0].addRow());
      caches[1 + names.indexOf(name)].addRow();
    }
    this.seqs.push({ mix, ref, rows, length: 0 });
  }

  /** A plan feeding `tokens[i]` to sequence i (all sequences, in order). */
  plan(tokens: number[][], prefill: boolean): StepPlan {
    const adapters = this.t.runner.manifest.adapters!;
    const caches = this.t.runner.caches;
    const R = caches[0].size;
    const planTokens: number[][] = new Array(R);
    const totals: number[] = new Array(R);
    const positions: number[][] = new Array(R);
    const adapterRowsBy: number[][] = adapters.map(() => []);
    const seen = adapters.map(() => 0);
    for (const [i, s] of this.seqs.entries()) {
      const total = s.length + tokens[i].length;
      for (const r of [s.ref, ...s.rows.values()]) {
        if (r === null) continue;
        planTokens[r] = tokens[i];
        totals[r] = total;
        positions[r] = [tokens[i].length - 1];
      }
      // adapter slots were taken in sequence order, so the k-th slot of an adapter is its k-th user's row
      for (const [name, r] of s.rows) {
        const a = adapters.findIndex((x) => x.name === name);
        adapterRowsBy[a][seen[a]++] = r;
      }
    }
    return {
      ranges: caches.map((c) => ({ start: 0, count: c.size })),
      tokens: planTokens,
      totals,
      prefill,
      positions,
      adapterRowsBy,
      outputs: this.seqs.map((s) => ({
        lambda: Number.NaN,
        aligned: -1,
        reference: -1,
        terms: mixTerms(s.mix, s.ref, (name) => s.rows.get(name)!),
      })),
    };
  }

  /** Runs `steps` greedy decode steps in one decode-loop run from each sequence's next token; returns [step][seq]. */
  async loop(next: number[], steps: number): Promise<number[][]> {
    const out = await this.t.runner.loop(
      this.plan(
        next.map((t) => [t]),
        false,
      ),
      steps,
    );
    this.seqs.forEach((s) => (s.length += steps));
    return out;
  }

  /** Runs a step; returns each sequence's logits [V] at its last position. */
  async step(tokens: number[][], prefill: boolean): Promise<{ logits: Float32Array[]; plan: StepPlan }> {
    const plan = this.plan(tokens, prefill);
    const res = await this.t.runner.step(plan);
    this.seqs.forEach((s, i) => (s.length += tokens[i].length));
    const V = res.vocabSize;
    return { logits: this.seqs.map((_, i) => res.logits.slice(i * V, (i + 1) * V)), plan };
  }
}

describe.each(['qwen2', 'llama'] as const)('multi-adapter InRa graphs (%s)', (arch) => {
  const seed = testSeed();

  it(`three untrained adapters added to a base give the base model's logits at any mix within 1e-5 (seed ${seed})`, async () => {
    const base = tinyCheckpoint({ arch, seed });
    const model = threeAdapters(base);
    const cfg = openCheckpoint(model).config;
    expect(cfg.adapters).toEqual([
      { name: 'concise', first: 0, layers: 1 },
      { name: 'safe', first: 1, layers: 1 },
      { name: 'style', first: 2, layers: 2 },
    ]);
    expect(cfg.numLayers).toBe(2 + 4);
    const ref = new ReferenceModel(openCheckpoint(base));
    const g = await openGraph('inra', { model });
    expect(g.runner.manifest.adapters?.map((a) => a.name)).toEqual(['concise', 'safe', 'style']);
    const mixes: Mix[] = [{}, { concise: 1 }, { safe: -1.5 }, { concise: 0.7, safe: 0.5 }, { concise: 2, safe: -1, style: 0.4 }];
    const rows = new MixRows(g);
    const prompts = mixes.map((_, i) => randomTokens(5 + 3 * i, g.vocab));
    mixes.forEach((m) => rows.add(m));
    const { logits } = await rows.step(prompts, true);
    prompts.forEach((p, i) => {
      const want = ref.forward(p).logits.subarray((p.length - 1) * g.vocab);
      expect(relErr(logits[i], want)).toBeLessThan(1e-5);
    });
  });

  it(`one batch of rows of 3 adapters — single-adapter λ, two- and three-adapter mixes, identity rows — equals each row run alone through the float64 reference within 1e-4, prefill and decode (seed ${seed})`, async () => {
    const base = tinyCheckpoint({ arch, seed: seed + 1 });
    const model = trained(threeAdapters(base), seed + 2);
    const ref = new ReferenceModel(openCheckpoint(model));
    const g = await openGraph('inra', { model });
    const V = g.vocab;
    const mixes: Mix[] = [
      { concise: 0.7 },
      { safe: 1 },
      { concise: 0.7, safe: 0.5 },
      {},
      { style: -0.5 },
      { safe: 0.3, style: 1.2 },
      { concise: 0, safe: 0, style: 0 },
      { concise: 1.5, safe: -0.4, style: 0.6 },
    ];
    const rows = new MixRows(g);
    mixes.forEach((m) => rows.add(m));
    // reference rows for all but {safe: 1}, plus one row per adapter used: 7 + 10 branch rows
    expect(g.runner.caches[0].size).toBe(7 + 10);
    expect(g.runner.caches.slice(1).map((c) => c.size)).toEqual([3, 4, 3]);
    const seqs = mixes.map((_, i) => randomTokens(4 + ((i * 5) % 13), V));
    const check = (got: Float32Array[]) =>
      seqs.forEach((s, i) => {
        const want = ref.mixLogits(s, mixes[i]).subarray((s.length - 1) * V);
        expect(relErr(got[i], want), `row ${i} ${JSON.stringify(mixes[i])}`).toBeLessThan(1e-4);
      });
    let out = await rows.step(seqs, true);
    check(out.logits);
    for (let step = 0; step < 3; step++) {
      const next = out.logits.map((l) => argmax(l));
      next.forEach((t, i) => seqs[i].push(t));
      out = await rows.step(
        next.map((t) => [t]),
        false,
      );
      check(out.logits);
    }
    // the identity rows (3 and 6) hold no adapter row: no adapter layer runs for them
    const routed = new Set(out.plan.adapterRowsBy!.flat());
    for (const i of [3, 6]) for (const t of out.plan.outputs[i].terms!) expect(routed.has(t.row)).toBe(false);
    expect(out.plan.outputs[3].terms).toHaveLength(1);
  });

  it(`identity rows skip every adapter: a batch of identity rows beside an adapter whose weights are NaN leaves every row finite and equal to the reference (seed ${seed})`, async () => {
    const base = tinyCheckpoint({ arch, seed: seed + 3 });
    const model = trained(threeAdapters(base), seed + 4, 'style');
    const ref = new ReferenceModel(openCheckpoint(model));
    const g = await openGraph('inra', { model });
    const V = g.vocab;
    const mixes: Mix[] = [{}, { concise: 0.5 }, { style: 0 }, { safe: 1 }, {}];
    const rows = new MixRows(g);
    mixes.forEach((m) => rows.add(m));
    expect(g.runner.caches.slice(1).map((c) => c.size)).toEqual([1, 1, 0]);
    const seqs = mixes.map((_, i) => randomTokens(6 + i, V));
    const { logits, plan } = await rows.step(seqs, true);
    expect(plan.adapterRowsBy!.map((r) => r.length)).toEqual([1, 1, 0]);
    seqs.forEach((s, i) => {
      expect(logits[i].every(Number.isFinite), `row ${i} finite`).toBe(true);
      expect(relErr(logits[i], ref.mixLogits(s, mixes[i]).subarray((s.length - 1) * V))).toBeLessThan(1e-4);
    });
    // the poisoned adapter does run when a row uses it (so the finite rows above are the skip, not a dead adapter)
    const poisoned = await openGraph('inra', { model });
    const one = new MixRows(poisoned);
    one.add({ style: 0.5 });
    const res = await one.step([seqs[0]], true);
    expect(res.logits[0].some((x) => Number.isNaN(x))).toBe(true);
  });
});

describe('multi-adapter InRa graphs: decode loop and quantized weights', () => {
  const seed = testSeed();

  it(`a decode-loop run of 6 greedy steps over rows of different mixes gives the tokens of 6 single steps (seed ${seed})`, async () => {
    const model = trained(threeAdapters(tinyCheckpoint({ arch: 'qwen2', seed })), seed + 1);
    const mixes: Mix[] = [{ concise: 0.8 }, { safe: 1 }, { concise: 0.5, style: 1.5 }, {}];
    const V = openCheckpoint(model).config.vocabSize;
    const prompts = mixes.map((_, i) => randomTokens(5 + 2 * i, V));
    const run = async (inOneRun: boolean) => {
      const g = await openGraph('inra', { model }, 128, inOneRun);
      const rows = new MixRows(g);
      mixes.forEach((m) => rows.add(m));
      const first = (await rows.step(prompts, true)).logits.map((l) => argmax(l));
      if (inOneRun) return [first, ...(await rows.loop(first, 6)).slice(0, 5)];
      const out = [first];
      for (let s = 0; s < 5; s++)
        out.push(
          (
            await rows.step(
              out.at(-1)!.map((t) => [t]),
              false,
            )
          ).logits.map((l) => argmax(l)),
        );
      return out;
    };
    const stepped = await run(false);
    expect(await run(true)).toEqual(stepped);
    // the mixes pull apart: not every row decodes the same tokens
    expect(new Set(mixes.map((_, i) => stepped.map((t) => t[i]).join(','))).size).toBeGreaterThan(1);
  });

  it(`int8 and int4 weights: untrained adapters give the quantized base model's logits at any mix within 1e-5 (seed ${seed})`, async () => {
    const base = tinyCheckpoint({ arch: 'llama', seed: seed + 5 });
    const model = threeAdapters(base);
    for (const quant of [
      { bits: 8, blockSize: 32, accuracyLevel: 0 },
      { bits: 4, blockSize: 32, accuracyLevel: 0 },
    ] satisfies QuantSpec[]) {
      const plain = await openGraph('single', { model: base }, 128, false, quant);
      const g = await openGraph('inra', { model }, 128, false, quant);
      const prompt = randomTokens(9, g.vocab);
      const rows = new MixRows(g);
      const mixes: Mix[] = [{ concise: 1 }, { safe: 0.6, style: -0.7 }, { concise: 2, style: 1 }];
      mixes.forEach((m) => rows.add(m));
      const { logits } = await rows.step(
        mixes.map(() => prompt),
        true,
      );
      const ref = await plain.runner.step(
        plain.rows.prefillPlan([{ handle: plain.rows.add({ aligned: true, reference: false }), tokens: prompt, lambdas: [1] }]),
      );
      for (const l of logits) expect(relErr(l, ref.logits)).toBeLessThan(1e-5);
    }
  });
});

describe("multi-adapter InRa through the engine's row allocator", () => {
  const seed = testSeed();

  it(`sequences with several mixes each, one leaving mid-way, match the float64 reference within 1e-4; a λ goes to the first adapter (seed ${seed})`, async () => {
    const model = trained(threeAdapters(tinyCheckpoint({ arch: 'llama', seed })), seed + 1);
    const ref = new ReferenceModel(openCheckpoint(model));
    const g = await openGraph('inra', { model });
    const V = g.vocab;
    const blends: (number | Mix)[][] = [
      [0.6, { safe: 1 }],
      [{ concise: 0.7, safe: 0.5 }, {}],
      [{ style: -0.5 }],
      [0, { concise: 0.2, style: 1.1 }],
    ];
    const want = (b: number | Mix): Mix => (typeof b === 'number' ? { concise: b } : b);
    const needs = blends.map((b) => needsFor(g.runner.manifest, b));
    expect(needs.map((n) => n.adapters)).toEqual([['concise', 'safe'], ['concise', 'safe'], ['style'], ['concise', 'style']]);
    expect(needsFor(g.runner.manifest, [{ safe: 1 }]).reference).toBe(false);
    const handles = needs.map((n) => g.rows.add(n));
    const seqs = blends.map((_, i) => randomTokens(5 + 3 * i, V));
    const check = (plan: SequencePlan, logits: Float32Array, live: number[]) => {
      let b = 0;
      for (const i of live)
        for (const blend of blends[i]) {
          const got = logits.subarray(b * V, ++b * V);
          const s = seqs[i];
          expect(
            relErr(got, ref.mixLogits(s, want(blend)).subarray((s.length - 1) * V)),
            `seq ${i} ${JSON.stringify(blend)}`,
          ).toBeLessThan(1e-4);
        }
      expect(b).toBe(plan.outputs.length);
    };
    const pre = g.rows.prefillPlan(handles.map((handle, i) => ({ handle, tokens: seqs[i], lambdas: blends[i] })));
    check(pre, (await g.runner.step(pre)).logits, [0, 1, 2, 3]);
    g.rows.commit(pre);
    let live = [0, 1, 2, 3];
    for (let step = 0; step < 3; step++) {
      if (step === 1) {
        g.rows.remove(handles[1]); // its rows' holes are filled by other sequences' rows
        live = [0, 2, 3];
      }
      const next = new Map(live.map((i) => [handles[i].id, { token: (step * 7 + i * 3) % V, lambdas: blends[i] }]));
      live.forEach((i) => seqs[i].push((step * 7 + i * 3) % V));
      const plan = g.rows.decodePlan(next);
      const order = plan.handles.map((h) => handles.indexOf(h));
      check(plan, (await g.runner.step(plan)).logits, order);
      g.rows.commit(plan);
    }
    // left: concise (seqs 0, 3), safe (seq 0), style (seqs 2, 3)
    expect(g.runner.caches.slice(1).map((c) => c.size)).toEqual([2, 1, 2]);
  });
});
