/** train-inra on one named adapter of several: only its tensors learn, the other adapters and the base stay frozen. */
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../../gpu-backend/src/checkpoint/checkpoint.ts';
import { addAdapter } from '../../../gpu-backend/src/make/adapters.ts';
import { ReferenceModel } from '../../../gpu-backend/src/reference/forward.ts';
import { trainInra } from '../../../gpu-backend/src/train/inra.ts';
import { randomTokens } from '../helpers/graphs.ts';
import { cleanupTempDirs, relErr, tempDir, testSeed } from '../helpers/models.ts';
import { testSettings, tinyModelWithTokenizer, writeDataset } from './helpers.ts';

afterAll(cleanupTempDirs);

describe('train-inra with named adapters', () => {
  const seed = testSeed();

  it(`training adapter "safe" of three changes only its layer; the others stay the base, and its branch moved (seed ${seed})`, async () => {
    const base = tinyModelWithTokenizer('qwen2', seed);
    const work = tempDir();
    addAdapter(base, join(work, '1'), 'concise');
    addAdapter(join(work, '1'), join(work, '2'), 'safe');
    addAdapter(join(work, '2'), join(work, '3'), 'style');
    const model = join(work, '3');
    const data = writeDataset(16, seed);
    await expect(trainInra({ ...testSettings({ steps: 1 }), model, data, out: join(work, 'x') })).rejects.toThrow(
      /3 adapters \(concise, safe, style\): name the one to train/,
    );
    await expect(
      trainInra({ ...testSettings({ steps: 1 }), model, data, out: join(work, 'y'), adapter: 'nope' }),
    ).rejects.toThrow(/no adapter named "nope" \(it has: concise, safe, style\)/);
    const out = join(work, 'trained');
    const report = await trainInra({ ...testSettings({ steps: 8 }), model, data, out, adapter: 'safe' });
    expect(report.losses.at(-1)!).toBeLessThan(report.losses[0]);
    const a = openCheckpoint(model);
    const b = openCheckpoint(out);
    expect(b.config.adapters).toEqual(a.config.adapters);
    let changed = 0;
    for (const e of a.store.entries.values()) {
      const same = Buffer.from(a.store.readBytes(e.name).bytes).equals(Buffer.from(b.store.readBytes(e.name).bytes));
      if (e.name.startsWith('model.layers.1.')) changed += same ? 0 : 1;
      else expect(same, `${e.name} is frozen`).toBe(true);
    }
    expect(changed).toBeGreaterThanOrEqual(10);
    // its branch is no longer the base; concise's still is (each branch through the float64 reference)
    const ref = new ReferenceModel(b);
    const ids = randomTokens(12, b.config.vocabSize);
    const z0 = ref.forwardAdapter(ids, null).logits;
    expect(relErr(ref.forwardAdapter(ids, 'concise').logits, z0)).toBeLessThan(1e-12);
    expect(relErr(ref.forwardAdapter(ids, 'safe').logits, z0)).toBeGreaterThan(1e-3);
  }, 60_000);
});
