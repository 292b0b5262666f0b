/**
 * Batches of examples, right-padded, and the order they come in. The order is a pure function of (seed, epoch),
 * so a resumed run continues with exactly the batches an uninterrupted run would have seen.
 */
import { NormalStream } from '../random/normal.ts';
import type { TrainExample } from './data.ts';

/** A padded batch. Row b's input is ids[0..n−2] of its example and position t predicts ids[t+1]. */
export interface Batch {
  rows: number;
  /** W: the longest example minus one */
  width: number;
  /** int64 [B, W] (pads are `padId`) */
  ids: BigInt64Array;
  /** int64 [B, W] */
  targets: BigInt64Array;
  /** [B, W]: 1 where the position predicts a response token */
  mask: Float32Array;
  /** Σ mask */
  responseTokens: number;
  /** the unpadded input tokens of each row (for the teacher) */
  inputs: number[][];
}

/** Pads examples into one batch. */
export function makeBatch(examples: readonly TrainExample[], padId: number): Batch {
  const rows = examples.length;
  const width = Math.max(...examples.map((e) => e.ids.length)) - 1;
  const ids = new BigInt64Array(rows * width).fill(BigInt(padId));
  const targets = new BigInt64Array(rows * width).fill(BigInt(padId));
  const mask = new Float32Array(rows * width);
  let responseTokens = 0;
  const inputs: number[][] = [];
  examples.forEach((e, b) => {
    const n = e.ids.length - 1;
    inputs.push(e.ids.slice(0, n));
    for (let t = 0; t < n; t++) {
      ids[b * width + t] = BigInt(e.ids[t]);
      targets[b * width + t] = BigInt(e.ids[t + 1]);
      if (t + 1 >= e.promptLength) {
        mask[b * width + t] = 1;
        responseTokens++;
      }
    }
  });
  return { rows, width, ids, targets, mask, responseTokens, inputs };
}

/**
 * Batch composition per epoch: a seeded shuffle, then examples of similar length grouped (sorted within windows
 * of 16 batches) to waste little on padding, then the batches themselves shuffled.
 */
export class BatchOrder {
  constructor(
    private readonly lengths: readonly number[],
    private readonly batchSize: number,
    private readonly seed: number,
  ) {
    if (!Number.isInteger(batchSize) || batchSize < 1)
      throw new RangeError(`batch size must be a positive integer, got ${batchSize}`);
  }

  /** Batches per epoch (the last one may be smaller). */
  get perEpoch(): number {
    return Math.ceil(this.lengths.length / this.batchSize);
  }

  /** The example indices of each batch of `epoch`. */
  epoch(epoch: number): number[][] {
    const rng = new NormalStream((this.seed * 0x9e3779b1 + epoch * 0x85ebca6b) >>> 0);
    const idx = shuffle(
      Array.from(this.lengths, (_, i) => i),
      rng,
    );
    const window = this.batchSize * 16;
    const batches: number[][] = [];
    for (let w = 0; w < idx.length; w += window) {
      const part = idx.slice(w, w + window).sort((a, b) => this.lengths[a] - this.lengths[b]);
      for (let b = 0; b < part.length; b += this.batchSize) batches.push(part.slice(b, b + this.batchSize));
    }
    return shuffle(batches, rng);
  }

  /** The k-th batch counted from the first batch of epoch 0 (epochs follow each other without a gap). */
  at(k: number): number[] {
    const e = Math.floor(k / this.perEpoch);
    if (this.cached?.epoch !== e) this.cached = { epoch: e, batches: this.epoch(e) };
    return this.cached.batches[k % this.perEpoch];
  }

  private cached: { epoch: number; batches: number[][] } | null = null;
}

function shuffle<T>(xs: T[], rng: NormalStream): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(rng.uniform() * (i + 1));
    [xs[i], xs[j]] = [xs[j], xs[i]];
  }
  return xs;
}
