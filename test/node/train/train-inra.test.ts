import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../../gpu-backend/src/checkpoint/checkpoint.ts';
import { expandCheckpoint } from '../../../gpu-backend/src/make/expand.ts';
import { ReferenceModel, blend } from '../../../gpu-backend/src/reference/forward.ts';
import { TextTokenizer } from '../../../gpu-backend/src/text/tokenizer.ts';
import { loadDataset } from '../../../gpu-backend/src/train/data.ts';
import { meanLoss } from '../../../gpu-backend/src/train/evaluate.ts';
import { trainInra } from '../../../gpu-backend/src/train/inra.ts';
import { openGraph, prefill, randomTokens } from '../helpers/graphs.ts';
import { cleanupTempDirs, relErr, tempDir, testSeed } from '../helpers/models.ts';
import { testSettings, tinyModelWithTokenizer, writeDataset } from './helpers.ts';

afterAll(cleanupTempDirs);

/** Expanded tiny checkpoint, its base, and a data set. */
function fixture(seed: number) {
  const base = tinyModelWithTokenizer('qwen2', seed);
  const expanded = join(tempDir(), 'expanded');
  expandCheckpoint(base, expanded, 1);
  return { base, expanded, data: writeDataset(24, seed) };
}

async function dataLoss(dir: string, data: string): Promise<number> {
  const ckpt = openCheckpoint(dir);
  const tok = TextTokenizer.load(ckpt.tokenizerFile!, ckpt.tokenizerConfigFile);
  const examples = loadDataset(data, tok, { eos: tok.eosTokenIds[0], maxLength: 64 });
  return meanLoss({ ckpt, examples, loss: 'sft', padId: tok.eosTokenIds[0], batchSize: 8, maxLength: 64 });
}

describe('train-inra', () => {
  const seed = testSeed();

  it(`a few AdamW steps on the adapter lower the loss; every frozen tensor stays bit-identical; the output serves through the InRa runtime (seed ${seed})`, async () => {
    const { base, expanded, data } = fixture(seed);
    const out = join(tempDir(), 'inra');
    const report = await trainInra({ ...testSettings({ steps: 12 }), model: expanded, data, out });
    expect(report.steps).toBe(12);
    const before = await dataLoss(expanded, data);
    const after = await dataLoss(out, data);
    expect(after).toBeLessThan(0.9 * before);

    const a = openCheckpoint(expanded);
    const b = openCheckpoint(out);
    expect(b.config.adapterLayers).toBe(1);
    let changed = 0;
    for (const e of a.store.entries.values()) {
      const same = Buffer.from(a.store.readBytes(e.name).bytes).equals(Buffer.from(b.store.readBytes(e.name).bytes));
      if (e.name.startsWith('model.layers.0.')) changed += same ? 0 : 1;
      else expect(same, `${e.name} is frozen`).toBe(true);
    }
    // every adapter tensor that gets a gradient moved (the two norms, q/k/v, o, gate/up/down and biases)
    expect(changed).toBeGreaterThanOrEqual(10);
    expect(JSON.parse(readFileSync(join(out, 'realign_train.json'), 'utf8')).losses).toHaveLength(12);

    // the runtime's InRa graph (fused ops, KV cache) serves the trained checkpoint: blends of the float64 reference
    const g = await openGraph('inra', { model: out });
    const ref = new ReferenceModel(b);
    const baseRef = new ReferenceModel(openCheckpoint(base));
    const V = g.vocab;
    const prompt = randomTokens(14, V);
    const lambdas = [0, 0.5, 1, 1.5];
    const got = await prefill(g, [{ tokens: prompt, lambdas }]);
    const aligned = ref.forward(prompt).logits.subarray((prompt.length - 1) * V);
    const reference = ref.forward(prompt, 1).logits.subarray((prompt.length - 1) * V);
    lambdas.forEach((l, k) => expect(relErr(got.logits[0][k], blend(aligned, reference, l))).toBeLessThan(1e-4));
    // λ = 0 is still the base model, and the adapter did change λ = 1
    expect(relErr(got.logits[0][0], baseRef.forward(prompt).logits.subarray((prompt.length - 1) * V))).toBeLessThan(1e-4);
    expect(relErr(got.logits[0][2], got.logits[0][0])).toBeGreaterThan(1e-3);
  });

  it(`zero steps on a fresh expand reproduce the base model exactly (seed ${seed})`, async () => {
    const { base, expanded, data } = fixture(seed);
    const out = join(tempDir(), 'inra0');
    await trainInra({ ...testSettings({ steps: 0 }), model: expanded, data, out });
    const a = openCheckpoint(expanded);
    const b = openCheckpoint(out);
    for (const e of a.store.entries.values())
      expect(Buffer.from(b.store.readBytes(e.name).bytes).equals(Buffer.from(a.store.readBytes(e.name).bytes)), e.name).toBe(
        true,
      );
    const plain = await openGraph('single', { model: base });
    const inra = await openGraph('inra', { model: out });
    const prompt = randomTokens(16, plain.vocab);
    const want = await prefill(plain, [{ tokens: prompt, lambdas: [1] }], true);
    const got = await prefill(inra, [{ tokens: prompt, lambdas: [-0.5, 0, 1, 1.25] }], true);
    // the adapter adds exact zeros (its o_proj and down_proj are zero); what remains is float32 rounding between two
    // differently fused graphs, an order below the 1e-5 the serving graphs' identity test allows
    for (const l of got.logits[0]) expect(relErr(l, want.logits[0][0])).toBeLessThan(1e-6);
  });

  it(`an interrupted run resumes from its last state and ends where an uninterrupted run ends (seed ${seed})`, async () => {
    const { expanded, data } = fixture(seed);
    const straight = join(tempDir(), 'straight');
    await trainInra({ ...testSettings({ steps: 6, gradAccum: 2, batchSize: 2 }), model: expanded, data, out: straight });
    const resumed = join(tempDir(), 'resumed');
    const work = join(tempDir(), 'work');
    const settings = testSettings({ steps: 6, gradAccum: 2, batchSize: 2, saveEvery: 2, workDir: work });
    const stopAt4 = {
      update: (r: { step: number }) => {
        if (r.step === 4) throw new Error('interrupted');
      },
      note: () => {},
    };
    await expect(trainInra({ ...settings, model: expanded, data, out: resumed, progress: stopAt4 as never })).rejects.toThrow(
      'interrupted',
    );
    const report = await trainInra({ ...settings, resume: true, model: expanded, data, out: resumed });
    // the state of step 4 was not saved before the interruption (it happened inside step 4's report)
    expect(report.resumedFrom).toBe(2);
    expect(report.losses).toHaveLength(6);
    const a = openCheckpoint(straight);
    const b = openCheckpoint(resumed);
    for (const e of a.store.entries.values())
      expect(Buffer.from(b.store.readBytes(e.name).bytes).equals(Buffer.from(a.store.readBytes(e.name).bytes)), e.name).toBe(
        true,
      );
  });

  it('refuses a checkpoint without an adapter, and says to expand it', async () => {
    const { base, data } = fixture(7);
    await expect(trainInra({ ...testSettings({ steps: 1 }), model: base, data, out: join(tempDir(), 'x') })).rejects.toThrow(
      /realign expand/,
    );
  });
});
