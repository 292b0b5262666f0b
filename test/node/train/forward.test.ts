import { join } from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterAll, describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../../gpu-backend/src/checkpoint/checkpoint.ts';
import { writeOnnxModel } from '../../../gpu-backend/src/graph/onnx-writer.ts';
import { ModelSession, type HostTensor } from '../../../gpu-backend/src/ort/session.ts';
import { ReferenceModel } from '../../../gpu-backend/src/reference/forward.ts';
import { buildTrainGraph, TRAIN_IO } from '../../../gpu-backend/src/train/graphs.ts';
import { DEFAULT_ADAMW } from '../../../gpu-backend/src/train/model/optimizer.ts';
import { randomTokens } from '../helpers/graphs.ts';
import { cleanupTempDirs, relErr, tempDir, testSeed, tinyCheckpoint } from '../helpers/models.ts';
import { syntheticInra } from '../../../gpu-backend/src/make/synthetic.ts';

// Tolerance: the float32 training forward against the float64 reference, max-abs error relative to the largest
// logit (the serving graphs' tests use the same measure and bound).
const TOL = 1e-4;

afterAll(cleanupTempDirs);

const cases = [
  { arch: 'qwen2', tie: false },
  { arch: 'llama', tie: true },
] as const;

/** Runs the forward graph of a checkpoint over right-padded rows; returns logits [B, T, V]. */
async function trainForward(dir: string, rows: number[][], firstLayer = 0): Promise<{ logits: Float32Array; T: number }> {
  const ckpt = openCheckpoint(dir);
  const { graph, params } = buildTrainGraph(
    {
      ckpt,
      trainable: { kind: 'full' },
      loss: 'sft',
      floatType: 'float32',
      maxPositions: 64,
      optimizer: DEFAULT_ADAMW,
      accumulated: false,
      firstLayer,
    },
    'forward',
  );
  const out = mkdtempSync(join(tmpdir(), 'realign-fwd-'));
  try {
    const session = await ModelSession.open(writeOnnxModel(graph, out, 'forward').modelPath, { device: 'cpu', threads: 1 });
    const T = Math.max(...rows.map((r) => r.length));
    const B = rows.length;
    const ids = new BigInt64Array(B * T);
    rows.forEach((r, b) => r.forEach((t, i) => (ids[b * T + i] = BigInt(t))));
    const feeds: Record<string, HostTensor> = {
      [TRAIN_IO.ids]: { type: 'int64', data: ids, dims: [B, T] },
      [TRAIN_IO.targets]: { type: 'int64', data: new BigInt64Array(B * T), dims: [B, T] },
      [TRAIN_IO.weights]: { type: 'float32', data: new Float32Array(B * T), dims: [B, T] },
    };
    for (const p of params) feeds[p.name] = { type: 'float32', data: ckpt.store.readFloat32(p.name), dims: p.shape };
    const res = await session.run(feeds, [TRAIN_IO.logits]);
    await session.release();
    return { logits: res[TRAIN_IO.logits].data as Float32Array, T };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

describe.each(cases)('plain-op training forward, $arch, tied=$tie', ({ arch, tie }) => {
  const seed = testSeed();

  it(`matches the float64 reference forward at every real position of right-padded rows (seed ${seed})`, async () => {
    const dir = tinyCheckpoint({ arch, tie, seed });
    const ref = new ReferenceModel(openCheckpoint(dir));
    const V = ref.config.vocabSize;
    const rows = [randomTokens(17, V), randomTokens(9, V), randomTokens(23, V)];
    const { logits, T } = await trainForward(dir, rows);
    rows.forEach((r, b) => {
      const got = logits.subarray(b * T * V, (b * T + r.length) * V);
      expect(relErr(got, ref.forward(r).logits)).toBeLessThan(TOL);
    });
  });

  it(`skipping the adapter layers gives InRa's reference branch (seed ${seed})`, async () => {
    const base = tinyCheckpoint({ arch, tie, seed });
    const trained = join(tempDir(), 'trained');
    syntheticInra(base, trained, seed + 1, 0.05);
    const ref = new ReferenceModel(openCheckpoint(trained));
    const V = ref.config.vocabSize;
    const rows = [randomTokens(12, V), randomTokens(7, V)];
    for (const skip of [0, 1]) {
      const { logits, T } = await trainForward(trained, rows, skip);
      rows.forEach((r, b) =>
        expect(relErr(logits.subarray(b * T * V, (b * T + r.length) * V), ref.forward(r, skip).logits)).toBeLessThan(TOL),
      );
    }
  });
});
