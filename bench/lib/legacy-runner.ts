/**
 * The old path, kept only for the benchmark's side-by-side comparison (bench/binding-bench.ts): a decode step through
 * onnxruntime-node's JavaScript API with the KV caches in JS typed arrays fed in and written back in place on every
 * run, as the engine did before it moved onto realign's own binding (gpu-backend/src/ort/binding.ts). It takes the
 * same step plans as GraphRunner (it duck-types the part RowAllocator uses).
 */
import type { GraphManifest, KvGroupInfo } from '../../gpu-backend/src/graph/model-graph.ts';
import { stepInputFeeds, type StepPlan, type StepResult } from '../../gpu-backend/src/engine/graph-runner.ts';
import { JsApiSession } from '../../gpu-backend/src/ort/js-api-session.ts';
import type { HostTensor } from '../../gpu-backend/src/ort/session.ts';

type Buffer = Float32Array | Uint16Array;

/** Token granularity of the capacity. */
const KV_BLOCK_TOKENS = 64;

/** One group's cache in JS memory, grown in blocks of 64 tokens (the engine's cache before issue 14). */
export class LegacyKvGroupCache {
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

/** Bytes one old-path run moves between host and session per step, each way summed (KV in and out included). */
export function legacyStepBytes(
  feeds: Record<string, HostTensor>,
  inPlace: Record<string, HostTensor>,
  out: Record<string, HostTensor>,
): number {
  const sum = (r: Record<string, HostTensor>) => Object.values(r).reduce((s, t) => s + t.data.byteLength, 0);
  return sum(feeds) + sum(inPlace) + sum(out);
}

/** GraphRunner.step as it was, over onnxruntime-node's JS API. */
export class LegacyRunner {
  readonly caches: LegacyKvGroupCache[];
  /** bytes the last step moved (what crosses on CUDA: inputs, KV both ways, logits) */
  lastStepBytes = 0;

  constructor(
    readonly session: JsApiSession,
    readonly manifest: GraphManifest,
  ) {
    this.caches = manifest.kvGroups.map((g) => new LegacyKvGroupCache(g, manifest.floatType === 'float16'));
  }

  static async open(modelPath: string, manifest: GraphManifest, threads?: number): Promise<LegacyRunner> {
    return new LegacyRunner(await JsApiSession.open(modelPath, { device: 'cpu', threads }), manifest);
  }

  async step(plan: StepPlan): Promise<StepResult> {
    const { feeds, maxTotal, S } = stepInputFeeds(plan);
    const B = plan.outputs.length;
    feeds.lambda = { type: 'float32', data: Float32Array.from(plan.outputs, (o) => o.lambda), dims: [B] };
    feeds.aligned_row = { type: 'int64', data: BigInt64Array.from(plan.outputs, (o) => BigInt(o.aligned)), dims: [B] };
    feeds.reference_row = { type: 'int64', data: BigInt64Array.from(plan.outputs, (o) => BigInt(o.reference)), dims: [B] };
    if (this.manifest.mode === 'inra') {
      const rows = plan.adapterRows ?? [];
      feeds.adapter_rows = { type: 'int64', data: BigInt64Array.from(rows, BigInt), dims: [rows.length] };
    }
    const inPlace: Record<string, HostTensor> = {};
    this.caches.forEach((cache, g) => {
      cache.ensureTokens(Math.max(maxTotal, S));
      const v = cache.views(plan.ranges[g].start, plan.ranges[g].count);
      Object.assign(feeds, v.feeds);
      Object.assign(inPlace, v.inPlace);
    });
    const out = await this.session.run(feeds, ['logits'], inPlace);
    this.lastStepBytes = legacyStepBytes(feeds, inPlace, out);
    const [g0, g1] = plan.ranges;
    for (let i = 0; i < g0.count; i++) this.caches[0].setLength(g0.start + i, plan.totals[i]);
    if (this.manifest.rowLayout === 'rows') {
      if (g1) plan.adapterRows?.forEach((r, k) => this.caches[1].setLength(g1.start + k, plan.totals[r]));
    } else {
      for (let i = 0; i < g1.count; i++) this.caches[1].setLength(g1.start + i, plan.totals[g0.count + i]);
    }
    return {
      logits: out.logits.data as Float32Array,
      positions: plan.positions[0]?.length ?? 0,
      vocabSize: this.manifest.vocabSize,
    };
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
