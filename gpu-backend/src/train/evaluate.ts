/**
 * The loss of a checkpoint on a data set, through the training forward graph (no update): the mean over all
 * response tokens of the cross-entropy, or of the KL to a teacher.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Checkpoint } from '../checkpoint/checkpoint.ts';
import { ModelSession, type Device } from '../ort/session.ts';
import { makeBatch } from './batches.ts';
import type { TrainExample } from './data.ts';
import { TRAIN_IO, writeTrainGraph } from './graphs.ts';
import type { LossKind } from './model/losses.ts';
import { DEFAULT_ADAMW } from './model/optimizer.ts';
import { batchFeeds, type Teacher } from './trainer.ts';

/** What to evaluate. */
export interface EvalLossOptions {
  ckpt: Checkpoint;
  examples: readonly TrainExample[];
  loss: LossKind;
  teacher?: Teacher;
  padId: number;
  batchSize: number;
  maxLength: number;
  device?: Device;
}

/** Mean loss per response token over `examples` (in order, batched). */
export async function meanLoss(o: EvalLossOptions): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'realign-eval-'));
  try {
    const spec = {
      ckpt: o.ckpt,
      trainable: { kind: 'full' as const },
      loss: o.loss,
      floatType: 'float32' as const,
      maxPositions: o.maxLength,
      optimizer: DEFAULT_ADAMW,
      accumulated: false,
    };
    const { modelPath, params } = writeTrainGraph(spec, 'forward', dir);
    const session = await ModelSession.open(modelPath, { device: o.device ?? 'cpu' });
    const weights = new Map(params.map((p) => [p.name, o.ckpt.store.readFloat32(p.name)]));
    let total = 0;
    let tokens = 0;
    try {
      for (let at = 0; at < o.examples.length; at += o.batchSize) {
        const batch = makeBatch(o.examples.slice(at, at + o.batchSize), o.padId);
        const feeds = await batchFeeds(batch, batch.mask, o);
        for (const p of params) feeds[p.name] = { type: 'float32', data: weights.get(p.name)!, dims: p.shape };
        const out = await session.run(feeds, [TRAIN_IO.loss]);
        total += Number(out[TRAIN_IO.loss].data[0]);
        tokens += batch.responseTokens;
      }
    } finally {
      await session.release();
    }
    return total / tokens;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
