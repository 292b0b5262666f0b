import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../../gpu-backend/src/checkpoint/checkpoint.ts';
import { ReferenceModel, blend } from '../../../gpu-backend/src/reference/forward.ts';
import { TextTokenizer } from '../../../gpu-backend/src/text/tokenizer.ts';
import { makeBatch } from '../../../gpu-backend/src/train/batches.ts';
import { loadDataset, type TrainExample } from '../../../gpu-backend/src/train/data.ts';
import { meanLoss } from '../../../gpu-backend/src/train/evaluate.ts';
import { FusionTeacher } from '../../../gpu-backend/src/train/teacher.ts';
import { trainTrra } from '../../../gpu-backend/src/train/trra.ts';
import { cleanupTempDirs, relErr, tempDir, testSeed } from '../helpers/models.ts';
import { testSettings, tinyModelWithTokenizer, writeDataset } from './helpers.ts';

afterAll(cleanupTempDirs);

function examplesOf(dir: string, data: string): { examples: TrainExample[]; pad: number } {
  const ckpt = openCheckpoint(dir);
  const tok = TextTokenizer.load(ckpt.tokenizerFile!, ckpt.tokenizerConfigFile);
  return { examples: loadDataset(data, tok, { eos: tok.eosTokenIds[0], maxLength: 64 }), pad: tok.eosTokenIds[0] };
}

/** KL of `student` to the teacher of (reference, aligned, λ), per response token. */
async function klTo(
  student: string,
  reference: string,
  aligned: string,
  lambda: number,
  data: string,
  kl: 'kl-forward' | 'kl-reverse',
): Promise<number> {
  const { examples, pad } = examplesOf(student, data);
  const teacher = await FusionTeacher.open(openCheckpoint(reference), openCheckpoint(aligned), lambda, {
    device: 'cpu',
    maxContext: 64,
    graphCache: tempDir(),
  });
  try {
    return await meanLoss({
      ckpt: openCheckpoint(student),
      examples,
      loss: kl,
      teacher,
      padId: pad,
      batchSize: 8,
      maxLength: 64,
    });
  } finally {
    await teacher.close();
  }
}

describe('train-trra', () => {
  const seed = testSeed();

  it(`the teacher is log softmax(λ·z_aligned + (1 − λ)·z_reference) over the vocabulary at every position, from the fusion graph (seed ${seed})`, async () => {
    const reference = tinyModelWithTokenizer('qwen2', seed);
    const aligned = tinyModelWithTokenizer('qwen2', seed + 1);
    const { examples, pad } = examplesOf(reference, writeDataset(3, seed));
    const batch = makeBatch(examples, pad);
    const lambda = 1.75;
    const teacher = await FusionTeacher.open(openCheckpoint(reference), openCheckpoint(aligned), lambda, {
      device: 'cpu',
      maxContext: 64,
      graphCache: tempDir(),
    });
    const got = await teacher.logprobs(batch);
    await teacher.close();
    const ra = new ReferenceModel(openCheckpoint(aligned));
    const rr = new ReferenceModel(openCheckpoint(reference));
    const V = ra.config.vocabSize;
    batch.inputs.forEach((tokens, b) => {
      const z = blend(ra.forward(tokens).logits, rr.forward(tokens).logits, lambda); // [T, V]
      for (let t = 0; t < tokens.length; t++) {
        const row = z.subarray(t * V, (t + 1) * V);
        const max = Math.max(...row);
        const lse = max + Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0));
        const want = row.map((v) => v - lse);
        expect(relErr(got.subarray((b * batch.width + t) * V, (b * batch.width + t + 1) * V), want)).toBeLessThan(1e-4);
      }
    });
  });

  it(`with the reference as its own aligned model, the KL of the reference to the teacher is zero at any λ (seed ${seed})`, async () => {
    const reference = tinyModelWithTokenizer('llama', seed);
    const data = writeDataset(8, seed);
    for (const kl of ['kl-forward', 'kl-reverse'] as const)
      expect(await klTo(reference, reference, reference, 2.5, data, kl)).toBeLessThan(1e-6);
  });

  it(`full fine-tuning distils a λ > 1 teacher into the reference (the KL falls); LoRA does too and changes only the wrapped weights (seed ${seed})`, async () => {
    const reference = tinyModelWithTokenizer('qwen2', seed);
    const aligned = tinyModelWithTokenizer('qwen2', seed + 1);
    const data = writeDataset(24, seed);
    const lambda = 1.5;
    const before = await klTo(reference, reference, aligned, lambda, data, 'kl-reverse');
    const full = join(tempDir(), 'full');
    await trainTrra({
      ...testSettings({ steps: 12 }),
      reference,
      aligned,
      lambda,
      data,
      out: full,
      lora: null,
      kl: 'reverse',
      iterations: 1,
    });
    expect(await klTo(full, reference, aligned, lambda, data, 'kl-reverse')).toBeLessThan(0.7 * before);

    const lora = join(tempDir(), 'lora');
    await trainTrra({
      ...testSettings({ steps: 12 }),
      reference,
      aligned,
      lambda,
      data,
      out: lora,
      lora: { rank: 4, alpha: 8 },
      kl: 'forward',
      iterations: 1,
    });
    const beforeF = await klTo(reference, reference, aligned, lambda, data, 'kl-forward');
    expect(await klTo(lora, reference, aligned, lambda, data, 'kl-forward')).toBeLessThan(0.9 * beforeF);
    const r = openCheckpoint(reference);
    const l = openCheckpoint(lora);
    let changed = 0;
    for (const e of r.store.entries.values()) {
      const same = Buffer.from(r.store.readBytes(e.name).bytes).equals(Buffer.from(l.store.readBytes(e.name).bytes));
      if (/proj\.weight$/.test(e.name)) changed += same ? 0 : 1;
      else expect(same, `${e.name} is not wrapped by LoRA`).toBe(true);
    }
    expect(changed).toBe(7 * r.config.numLayers);
  });

  it(`TrRa-iter: the second iteration learns from a teacher whose aligned model is the first student (seed ${seed})`, async () => {
    const reference = tinyModelWithTokenizer('qwen2', seed);
    const aligned = tinyModelWithTokenizer('qwen2', seed + 1);
    const data = writeDataset(12, seed);
    const out = join(tempDir(), 'iter');
    const work = join(tempDir(), 'work');
    // one batch holds the whole data set, so the loss of a step is the KL over all of it
    const report = await trainTrra({
      ...testSettings({ steps: 4, batchSize: 12, workDir: work, keepWorkDir: true }),
      reference,
      aligned,
      lambda: 1.5,
      data,
      out,
      lora: null,
      kl: 'reverse',
      iterations: 2,
    });
    expect(report.steps).toBe(8);
    const first = join(work, 'student-1');
    expect(existsSync(first)).toBe(true);
    // every iteration's student starts from the reference: step 1 of iteration k measures the reference against
    // teacher k, built from the aligned model (k = 1) or from student 1 (k = 2)
    const teacher1 = await klTo(reference, reference, aligned, 1.5, data, 'kl-reverse');
    const teacher2 = await klTo(reference, reference, first, 1.5, data, 'kl-reverse');
    expect(Math.abs(report.losses[0] - teacher1) / teacher1).toBeLessThan(1e-3);
    expect(Math.abs(report.losses[4] - teacher2) / teacher2).toBeLessThan(1e-3);
    expect(Math.abs(teacher2 - teacher1) / teacher1).toBeGreaterThan(1e-2);
    expect(report.trra?.iterations).toBe(2);
  });
});
