/**
 * KV caches of one group (see GraphManifest.kvGroups), kept where the session computes (device memory on CUDA, host
 * memory on the CPU; the same code): one buffer per layer and K/V, layout [rows, K, T, E], allocated once by the
 * session's allocator with a fixed token capacity T (the graph's maxContext unless given) and a row capacity.
 *
 * Rows are packed at the front (slot i is row i), so any run of consecutive slots [start, start + count) is one
 * contiguous view, which is bound as both the past and the present of GroupQueryAttention (share-buffer mode: the
 * same memory, updated in place; its past sequence length is the capacity T and `seqlens_k` says how much of each
 * row is used). Freeing a row moves the last row into the hole with a copy inside the buffer; growing the row
 * capacity copies the used rows into a larger buffer (device to device: DeviceCopier). Nothing of the cache ever
 * crosses to the host.
 */
import type { KvGroupInfo } from '../graph/model-graph.ts';
import { type IoBinding, type ModelSession, Value } from '../ort/session.ts';
import { DeviceCopier } from './device-copy.ts';

/** Token granularity of lengths (kept for callers that round to it). */
export const KV_BLOCK_TOKENS = 64;

/** Capacity of one group's buffers. */
export interface KvCapacity {
  /** rows allocated at first use (grown by doubling when more are needed) */
  rows?: number;
  /** tokens per row (fixed) */
  tokens?: number;
  /** copy rows as on a device even in host memory (whole rows through the device copier; for tests) */
  deviceCopies?: boolean;
}

/** One group's cache. */
export class KvGroupCache {
  private rows = 0;
  private rowCapacity = 0;
  readonly tokenCapacity: number;
  private keys: Value[] = [];
  private values: Value[] = [];
  /** one row of one layer, for swapRows */
  private spare: Value | null = null;
  /** tokens currently stored per slot */
  private lengths: number[] = [];
  /** views of slot ranges, per "start:count", valid until the buffers change */
  private views = new Map<string, { keys: Value[]; values: Value[] }>();

  constructor(
    readonly info: KvGroupInfo,
    readonly float16: boolean,
    private readonly session: ModelSession,
    maxContext: number,
    capacity: KvCapacity = {},
    private readonly copier = new DeviceCopier(session, float16, capacity.deviceCopies),
  ) {
    this.tokenCapacity = capacity.tokens ?? maxContext;
    this.initialRows = capacity.rows ?? 4;
    this.hostCopies = session.memory.device === 'cpu' && !capacity.deviceCopies;
  }

  private readonly initialRows: number;
  /** copy each head's used tokens with typed arrays (host memory) rather than whole rows through the copier */
  private readonly hostCopies: boolean;

  /** Rows in use. */
  get size(): number {
    return this.rows;
  }

  /** Token capacity T of every row. */
  get capacity(): number {
    return this.tokenCapacity;
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
    if (this.rows === this.rowCapacity) this.grow(Math.max(this.initialRows, this.rowCapacity * 2));
    this.lengths[this.rows] = 0;
    return this.rows++;
  }

  /**
   * Frees `slot` by moving the last row into it (a copy inside each buffer). Returns the slot that moved (its old
   * index), or -1 when the freed slot was the last one. Callers re-point whatever referred to the moved slot.
   */
  removeRow(slot: number): number {
    const last = this.rows - 1;
    if (slot < 0 || slot > last) throw new Error(`kv group ${this.info.name}: no row ${slot}`);
    if (slot !== last) {
      for (let l = 0; l < this.info.layers; l++) {
        this.copyRows(this.keys[l], last, this.keys[l], slot, 1);
        this.copyRows(this.values[l], last, this.values[l], slot, 1);
      }
      this.lengths[slot] = this.lengths[last];
    }
    this.rows--;
    this.lengths.length = this.rows;
    if (this.rows === 0) this.releaseBuffers();
    return slot === last ? -1 : last;
  }

  /**
   * Exchanges the contents of slots `a` and `b`: three row copies inside each buffer, through one spare row of one
   * layer's size (allocated at the first swap, kept with the buffers). Callers re-point whatever referred to them.
   */
  swapRows(a: number, b: number): void {
    for (const s of [a, b]) if (s < 0 || s >= this.rows) throw new Error(`kv group ${this.info.name}: no row ${s}`);
    if (a === b) return;
    this.spare ??= Value.allocate(this.session.allocator, this.float16 ? 'float16' : 'float32', this.rowDims(1));
    const [la, lb] = [this.lengths[a], this.lengths[b]];
    for (const buf of [...this.keys, ...this.values]) {
      this.copyRows(buf, a, this.spare, 0, 1, la);
      this.copyRows(buf, b, buf, a, 1, lb);
      this.copyRows(this.spare, 0, buf, b, 1, la);
    }
    this.lengths[a] = lb;
    this.lengths[b] = la;
  }

  /** Records that `slot` now holds `length` tokens (after a step). */
  setLength(slot: number, length: number): void {
    this.lengths[slot] = length;
  }

  /** Checks that every row can hold `tokens` tokens (the capacity is fixed). */
  ensureTokens(tokens: number): void {
    if (tokens > this.tokenCapacity)
      throw new Error(`kv group ${this.info.name}: ${tokens} tokens exceed the cache capacity of ${this.tokenCapacity}`);
  }

  /**
   * Binds slots [start, start + count) as the past inputs and the present outputs of every layer (the same values).
   * A range bound before is not rebound.
   */
  bind(binding: IoBinding, start: number, count: number): void {
    if (this.rowCapacity === 0) this.grow(this.initialRows);
    const v = this.view(start, count);
    for (let l = 0; l < this.info.layers; l++) {
      binding.bindInput(this.info.pastKey[l], v.keys[l]);
      binding.bindInput(this.info.pastValue[l], v.values[l]);
      binding.bindOutput(this.info.presentKey[l], v.keys[l]);
      binding.bindOutput(this.info.presentValue[l], v.values[l]);
    }
  }

  /** Host copies of slot `slot`'s keys and values per layer (for tests; counted as device→host bytes). */
  readRow(slot: number): { keys: Float32Array[] | Uint16Array[]; values: Float32Array[] | Uint16Array[] } {
    const v = this.view(slot, 1);
    return { keys: v.keys.map((k) => k.read()) as Float32Array[], values: v.values.map((k) => k.read()) as Float32Array[] };
  }

  /** Frees the buffers and the copier (at the end of the runner). */
  release(): void {
    this.releaseBuffers();
    this.copier.release();
  }

  /** Frees the buffers (the cache can be used again: they are reallocated on the next row). */
  private releaseBuffers(): void {
    this.dropViews();
    for (const b of [...this.keys, ...this.values]) b.dispose();
    this.spare?.dispose();
    this.spare = null;
    this.keys = [];
    this.values = [];
    this.rowCapacity = 0;
  }

  private view(start: number, count: number): { keys: Value[]; values: Value[] } {
    if (start < 0 || count < 0 || start + count > this.rowCapacity)
      throw new Error(`kv group ${this.info.name}: slots [${start}, ${start + count}) outside its ${this.rowCapacity} rows`);
    const key = `${start}:${count}`;
    let v = this.views.get(key);
    if (!v) {
      if (this.views.size > 64) this.dropViews();
      const rowSize = this.rowElements();
      const dims = this.rowDims(count);
      const memory = this.session.memory;
      v = {
        keys: this.keys.map((b) => Value.view(b, start * rowSize, dims, memory)),
        values: this.values.map((b) => Value.view(b, start * rowSize, dims, memory)),
      };
      this.views.set(key, v);
    }
    return v;
  }

  /**
   * Copies rows [from, from + count) of `src` to rows [to, to + count) of `dst` (same layout). On the host only each
   * head's used tokens are copied, so untouched pages of the fixed-capacity buffers stay unallocated by the OS; on a
   * device whole rows are copied device to device (DeviceCopier). `used`: the tokens to copy of a single row whose
   * length is not the slot's own (the spare row of a swap).
   */
  private copyRows(src: Value, from: number, dst: Value, to: number, count: number, used?: number): void {
    const rowSize = this.rowElements();
    if (this.hostCopies) {
      const a = src.hostData() as Float32Array;
      const b = dst.hostData() as Float32Array;
      const { numKvHeads: K, headDim: E } = this.info;
      const T = this.tokenCapacity;
      for (let r = 0; r < count; r++) {
        const n = Math.min(T, used ?? this.lengths[from + r] ?? 0) * E;
        for (let h = 0; h < K; h++) {
          const at = (from + r) * rowSize + h * T * E;
          b.set(a.subarray(at, at + n), (to + r) * rowSize + h * T * E);
        }
      }
      return;
    }
    const memory = this.session.memory;
    const dims = this.rowDims(count);
    const s = Value.view(src, from * rowSize, dims, memory);
    const d = Value.view(dst, to * rowSize, dims, memory);
    try {
      this.copier.copy([s], [d]);
    } finally {
      s.dispose();
      d.dispose();
    }
  }

  private dropViews(): void {
    for (const v of this.views.values()) for (const x of [...v.keys, ...v.values]) x.dispose();
    this.views.clear();
  }

  private rowElements(): number {
    return this.info.numKvHeads * this.tokenCapacity * this.info.headDim;
  }

  private rowDims(count: number): number[] {
    return [count, this.info.numKvHeads, this.tokenCapacity, this.info.headDim];
  }

  /** Reallocates every buffer with a larger row capacity, copying the rows in use (a contiguous prefix). */
  private grow(rowCapacity: number): void {
    const type = this.float16 ? 'float16' : 'float32';
    const allocator = this.session.allocator;
    const dims = this.rowDims(rowCapacity);
    const nk = Array.from({ length: this.info.layers }, () => Value.allocate(allocator, type, dims));
    const nv = Array.from({ length: this.info.layers }, () => Value.allocate(allocator, type, dims));
    for (let l = 0; l < this.info.layers && this.rows > 0; l++) {
      this.copyRows(this.keys[l], 0, nk[l], 0, this.rows);
      this.copyRows(this.values[l], 0, nv[l], 0, this.rows);
    }
    this.releaseBuffers();
    this.keys = nk;
    this.values = nv;
    this.rowCapacity = rowCapacity;
  }
}
