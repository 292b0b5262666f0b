import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../../gpu-backend/src/checkpoint/checkpoint.ts';
import { NormalStream } from '../../../gpu-backend/src/random/normal.ts';
import { ModelSession, type HostTensor } from '../../../gpu-backend/src/ort/session.ts';
import {
  gradNames,
  TRAIN_IO,
  writeTrainGraph,
  type TrainGraphKind,
  type TrainGraphSpec,
} from '../../../gpu-backend/src/train/graphs.ts';
import { DEFAULT_ADAMW, OPTIMIZER_INPUTS, stateNames } from '../../../gpu-backend/src/train/model/optimizer.ts';
import { initialParams } from '../../../gpu-backend/src/train/params.ts';
import { cleanupTempDirs, relErr, tempDir, testSeed, tinyCheckpoint } from '../helpers/models.ts';

// Tolerance: the same float32 sums taken in another order (one batch of 4 rows, or 2 + 2 rows accumulated).
const TOL = 1e-5;

afterAll(cleanupTempDirs);

describe('gradient accumulation', () => {
  const seed = testSeed();

  it(`two accumulated micro-batches give the update one batch of both gives (gradient norm, AdamW moments, parameters) (seed ${seed})`, async () => {
    const ckpt = openCheckpoint(tinyCheckpoint({ arch: 'llama', seed, shape: { numLayers: 1 } }));
    const base: Omit<TrainGraphSpec, 'accumulated'> = {
      ckpt,
      trainable: { kind: 'full' },
      loss: 'sft',
      floatType: 'float32',
      maxPositions: 32,
      optimizer: { ...DEFAULT_ADAMW, maxGradNorm: 0 },
    };
    const open = async (accumulated: boolean, kind: TrainGraphKind) => {
      const dir = join(tempDir(), kind);
      mkdirSync(dir);
      const g = writeTrainGraph({ ...base, accumulated }, kind, dir);
      return { session: await ModelSession.open(g.modelPath, { device: 'cpu', threads: 1 }), params: g.params };
    };
    const plain = await open(false, 'step');
    const grads = await open(true, 'gradients');
    const last = await open(true, 'step');
    const params = plain.params;
    const init = initialParams(ckpt, { kind: 'full' }, seed);
    const rng = new NormalStream(seed);
    const V = ckpt.config.vocabSize;
    const rows = 4;
    const W = 10;
    const ids = BigInt64Array.from({ length: rows * W }, () => BigInt(Math.floor(rng.uniform() * V)));
    const targets = BigInt64Array.from({ length: rows * W }, () => BigInt(Math.floor(rng.uniform() * V)));
    const mask = Float32Array.from({ length: rows * W }, () => (rng.uniform() < 0.6 ? 1 : 0));
    const n = mask.reduce((a, b) => a + b, 0);
    const part = (from: number, to: number): Record<string, HostTensor> => ({
      [TRAIN_IO.ids]: { type: 'int64', data: ids.slice(from * W, to * W), dims: [to - from, W] },
      [TRAIN_IO.targets]: { type: 'int64', data: targets.slice(from * W, to * W), dims: [to - from, W] },
      [TRAIN_IO.weights]: { type: 'float32', data: mask.slice(from * W, to * W).map((m) => m / n), dims: [to - from, W] },
    });
    const t = (p: (typeof params)[number], data: Float32Array): HostTensor => ({ type: 'float32', data, dims: p.shape });
    const common: Record<string, HostTensor> = {
      [OPTIMIZER_INPUTS.lr]: { type: 'float32', data: Float32Array.of(1e-3), dims: [] },
      [OPTIMIZER_INPUTS.bias1]: { type: 'float32', data: Float32Array.of(1 / (1 - 0.9)), dims: [] },
      [OPTIMIZER_INPUTS.bias2]: { type: 'float32', data: Float32Array.of(1 / (1 - 0.999)), dims: [] },
    };
    for (const p of params) {
      common[p.name] = t(p, init.get(p.name)!);
      common[stateNames(p.name).m] = t(p, new Float32Array(init.get(p.name)!.length));
      common[stateNames(p.name).v] = t(p, new Float32Array(init.get(p.name)!.length));
    }
    const fetch = [
      TRAIN_IO.loss,
      TRAIN_IO.gradNorm,
      ...params.flatMap((p) => [stateNames(p.name).newM, stateNames(p.name).newV, stateNames(p.name).newParam]),
    ];
    const whole = await plain.session.run({ ...common, ...part(0, 4) }, fetch);

    const zeros: Record<string, HostTensor> = {};
    for (const p of params) zeros[gradNames(p.name).input] = t(p, new Float32Array(init.get(p.name)!.length));
    const first = await grads.session.run({ ...common, ...zeros, ...part(0, 2) }, [
      TRAIN_IO.loss,
      ...params.map((p) => gradNames(p.name).output),
    ]);
    const carried: Record<string, HostTensor> = {};
    for (const p of params) carried[gradNames(p.name).input] = t(p, first[gradNames(p.name).output].data as Float32Array);
    const split = await last.session.run({ ...common, ...carried, ...part(2, 4) }, fetch);

    const loss = (r: typeof whole) => Number(r[TRAIN_IO.loss].data[0]);
    expect(Math.abs(loss(first) + loss(split) - loss(whole)) / loss(whole)).toBeLessThan(TOL);
    expect(Math.abs(Number(split[TRAIN_IO.gradNorm].data[0]) - Number(whole[TRAIN_IO.gradNorm].data[0]))).toBeLessThan(
      TOL * Number(whole[TRAIN_IO.gradNorm].data[0]),
    );
    for (const p of params) {
      for (const key of ['newM', 'newV'] as const) {
        const name = stateNames(p.name)[key];
        expect(relErr(split[name].data as Float32Array, whole[name].data as Float32Array), name).toBeLessThan(TOL);
      }
      // an AdamW step of size ≈ lr·sign(g) where g ≠ 0: parameters agree to a small fraction of lr
      const a = split[stateNames(p.name).newParam].data as Float32Array;
      const b = whole[stateNames(p.name).newParam].data as Float32Array;
      let worst = 0;
      for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
      expect(worst, p.name).toBeLessThan(1e-4);
    }
  });
});
