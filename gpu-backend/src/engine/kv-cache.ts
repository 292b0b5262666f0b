/**
 * KV caches of one group (see GraphManifest.kvGroups), stored as one buffer per layer and K/V with layout
 * [rows, K, T, E]. Rows are packed at the front (slot i is row i), so any run of consecutive slots is one
 * contiguous view that ONNX Runtime's GroupQueryAttention reads and updates in place. T (the capacity in tokens)
 * grows and shrinks in blocks with the longest row, so the buffers stay close to what is actually used.
 */
import type { KvGroupInfo } from '../graph/model-graph.ts';
import type { HostTensor } from '../ort/session.ts';

type Buffer = Float32Array | Uint16Array;

/** Token granularity of the capacity. */
export const KV_BLOCK_TOKENS = 64;

/** One group's cache. */
export class KvGroupCache {
  private rows = 0;
  private rowCapacity = 0;
  private tokens = 0;
  private keys: Buffer[] = [];
  private values: Buffer[] = [];
  /** tokens currently stored per slot */
  private lengths: number[] = [];

  constructor(
    readonly info: KvGroupInfo,
    readonly float16: boolean,
  ) {}

  /** Rows in use. */
  get size(): number {
    return this.rows;
  }

  /** Token capacity T of every row. */
  get capacity(): number {
    return this.tokens;
  }

  /** Tokens held across all rows (what is used, not what is allocated). */
  get usedTokens(): number {
    return this.lengths.reduce((a, b) => a + b, 0);
  }

  /** Bytes allocated. */
  get allocatedBytes(): number {
    return this.keys.reduce((s, b) => s + b.byteLength, 0) * 2;
  }

  /** Adds an empty row at the end and returns its slot. */
  addRow(): number {
    if (this.rows === this.rowCapacity) this.relayout(Math.max(4, this.rowCapacity * 2), this.tokens);
    this.lengths[this.rows] = 0;
    return this.rows++;
  }

  /**
   * Frees `slot` by moving the last row into it. Returns the slot that moved (its old index), or -1 when the freed
   * slot was the last one. Callers re-point whatever referred to the moved slot.
   */
  removeRow(slot: number): number {
    const last = this.rows - 1;
    if (slot < 0 || slot > last) throw new Error(`kv group ${this.info.name}: no row ${slot}`);
    if (slot !== last) {
      const rowSize = this.rowElements();
      for (const b of [...this.keys, ...this.values]) b.copyWithin(slot * rowSize, last * rowSize, (last + 1) * rowSize);
      this.lengths[slot] = this.lengths[last];
    }
    this.rows--;
    this.lengths.length = this.rows;
    this.maybeShrink();
    return slot === last ? -1 : last;
  }

  /** Records that `slot` now holds `length` tokens (after a step). */
  setLength(slot: number, length: number): void {
    this.lengths[slot] = length;
  }

  /** Makes every row able to hold `tokens` tokens. */
  ensureTokens(tokens: number): void {
    if (tokens <= this.tokens) return;
    this.relayout(Math.max(this.rowCapacity, 4), roundUp(tokens));
  }

  /**
   * Past inputs and in-place present outputs for slots [start, start + count): the same memory, so that the
   * graph appends the new tokens where they belong.
   */
  views(start: number, count: number): { feeds: Record<string, HostTensor>; inPlace: Record<string, HostTensor> } {
    const { numKvHeads: K, headDim: E } = this.info;
    const rowSize = this.rowElements();
    const dims = [count, K, this.tokens, E];
    const type = this.float16 ? 'float16' : 'float32';
    const feeds: Record<string, HostTensor> = {};
    const inPlace: Record<string, HostTensor> = {};
    for (let l = 0; l < this.info.layers; l++) {
      const k = this.keys[l].subarray(start * rowSize, (start + count) * rowSize);
      const v = this.values[l].subarray(start * rowSize, (start + count) * rowSize);
      feeds[this.info.pastKey[l]] = { type, data: k, dims };
      feeds[this.info.pastValue[l]] = { type, data: v, dims };
      inPlace[this.info.presentKey[l]] = { type, data: k, dims };
      inPlace[this.info.presentValue[l]] = { type, data: v, dims };
    }
    return { feeds, inPlace };
  }

  private rowElements(): number {
    return this.info.numKvHeads * this.tokens * this.info.headDim;
  }

  private maybeShrink(): void {
    const longest = this.lengths.reduce((a, b) => Math.max(a, b), 0);
    const wanted = roundUp(Math.max(longest, 1));
    if (this.rows === 0) {
      this.keys = [];
      this.values = [];
      this.rowCapacity = 0;
      this.tokens = 0;
    } else if (wanted * 2 <= this.tokens || (this.rowCapacity > 4 && this.rows * 4 <= this.rowCapacity)) {
      this.relayout(Math.max(4, this.rows * 2), Math.min(this.tokens, wanted));
    }
  }

  /** Reallocates every buffer with a new row capacity and token capacity, keeping each row's tokens. */
  private relayout(rowCapacity: number, tokens: number): void {
    const { numKvHeads: K, headDim: E } = this.info;
    const make = (n: number): Buffer => (this.float16 ? new Uint16Array(n) : new Float32Array(n));
    const copy = (old: Buffer | undefined): Buffer => {
      const next = make(rowCapacity * K * tokens * E);
      if (!old) return next;
      const keep = Math.min(this.tokens, tokens) * E;
      for (let r = 0; r < this.rows; r++) {
        for (let h = 0; h < K; h++) {
          const from = (r * K + h) * this.tokens * E;
          const to = (r * K + h) * tokens * E;
          next.set(old.subarray(from, from + keep), to);
        }
      }
      return next;
    };
    const nk: Buffer[] = [];
    const nv: Buffer[] = [];
    for (let l = 0; l < this.info.layers; l++) {
      nk.push(copy(this.keys[l]));
      nv.push(copy(this.values[l]));
    }
    this.keys = nk;
    this.values = nv;
    this.rowCapacity = rowCapacity;
    this.tokens = tokens;
  }
}

function roundUp(n: number): number {
  return Math.ceil(n / KV_BLOCK_TOKENS) * KV_BLOCK_TOKENS;
}
