/**
 * CUDA graphs for decode steps (issue 14 item 4). ONNX Runtime's CUDA EP captures a run as a CUDA graph when the
 * session has the provider option `enable_cuda_graph` and replays it for later runs with the same `gpu_graph_id`
 * run option; a replay reads and writes the very addresses bound at capture, with the shapes of the capture. So a
 * captured decode step needs:
 *
 *   - fixed shapes: a step of R branch rows, A adapter rows and B output rows is padded to a bucket N of
 *     GRAPH_BUCKETS (R, A, B → N), one graph id per bucket (and per KV buffer address set, see below);
 *   - fixed addresses: per bucket one IoBinding, bound once, to input and output buffers allocated once in the
 *     session's memory (host→device: each step writes its padded inputs into a host staging buffer and copies it to
 *     the bucket's device buffer; device→host: only the first B rows of the fetched outputs are copied back), and to
 *     the KV caches' slots [0, N) of every group. If the caches' buffers move (a row-capacity growth), the bucket
 *     gets a new graph id, so a replay never touches freed memory;
 *   - nothing read on the host inside the step: the `capture` graph variant runs InRa's adapter layers without the
 *     If on the adapter row count (graph/forward.ts adapterLayers), `total_sequence_length` (a host input of
 *     GroupQueryAttention, baked into a capture) is the caches' token capacity T for every captured step —
 *     GroupQueryAttention takes each row's length from `seqlens_k` — and the sampling block has no control flow and
 *     constant TopK sizes.
 *
 * Padding rows never touch real rows or their KV: a decode step runs captured only when every row of every cache
 * takes part (no prompt being prefilled holds slots behind them), so the padded slots [size, N) are free slots;
 * padded branch rows decode token 0 at position 0 of their free slot; padded adapter slots read branch row 0 and
 * write KV only in their own free slots, and no branch row takes their output (the capture graph's `adapter_slot`
 * input says which slot's output each row takes, instead of a ScatterND, where a repeated row would have no defined
 * order); padded output rows read
 * branch row 0 (a Gather, read only) at λ 0, greedy. Steps that cannot be captured (prefill, a multi-adapter or
 * split-layout graph, rows of a prompt in the caches, more rows than the largest bucket or than the caches hold)
 * run the ordinary step graph, as without CUDA graphs.
 *
 * On the CPU the same code runs (tests, `cudaGraphs` forced on) with host buffers: the run options are passed and
 * ignored by the CPU EP, and the padded steps must give the unpadded steps' results.
 */
import type { GraphManifest, IoEntry } from '../graph/io.ts';
import { Graph } from '../graph/ir.ts';
import { encodeOnnxModel } from '../graph/onnx-writer.ts';
import {
  MemoryInfo,
  RunOptions,
  Value,
  transfers,
  type IoBinding,
  type ModelSession,
  type TensorData,
  type TensorType,
} from '../ort/session.ts';
import type { SamplingFeed, StepPlan, TransferBytes } from './graph-runner.ts';
import type { KvGroupCache } from './kv-cache.ts';

/** Batch-size buckets of captured decode steps. */
export const GRAPH_BUCKETS: readonly number[] = [1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 192, 256];

/** A decode step's sizes: branch rows R, adapter rows A (absent: no adapter group), output rows B. */
export interface StepShape {
  rows: number;
  adapterRows?: number;
  outputs: number;
}

/** The bucket a decode step is padded to: the smallest N ≥ R, A, B (at most `limit`); null when none fits. */
export function chooseBucket(shape: StepShape, limit: number, buckets: readonly number[] = GRAPH_BUCKETS): number | null {
  const A = shape.adapterRows;
  for (const n of buckets) {
    if (n > limit) return null;
    if (n < shape.rows || n < shape.outputs || (A !== undefined && n < A)) continue;
    return n;
  }
  return null;
}

/** Bytes per element. */
const ELEMENT_SIZE: Record<TensorType, number> = { float32: 4, uint8: 1, int32: 4, int64: 8, bool: 1, float16: 2, float64: 8 };
/** The sampling block's outputs read only when a row asked for top_logprobs. */
const TOP_OUTPUTS = ['sample_top_ids', 'sample_top_logprobs'];

/** Element arrays by tensor type. */
const ARRAYS = {
  float32: Float32Array,
  float64: Float64Array,
  int64: BigInt64Array,
  int32: Int32Array,
  float16: Uint16Array,
  bool: Uint8Array,
  uint8: Uint8Array,
} as const;

interface Buffer {
  entry: IoEntry;
  dims: number[];
  /** bound to the session (device memory on CUDA): a typed part of its block, or (logits) its own buffer */
  bound: Value;
  /** its typed part of the block's host staging (null: not staged, or logits) */
  staging: Value | null;
}

/**
 * The small inputs (and the small outputs) of a bucket share one byte buffer in the session's memory, each in its own
 * 256-byte-aligned part, so that one copy moves all of a step's inputs in (and one its results out); staged, a host
 * byte buffer of the same layout mirrors it.
 */
interface Block {
  device: Value;
  host: Value | null;
  /** bytes to copy back when only the leading outputs are read (sample_token, sample_logprob) */
  leading: number;
}

interface Bucket {
  n: number;
  binding: IoBinding;
  inputs: Map<string, Buffer>;
  outputs: Map<string, Buffer>;
  inBlock: Block;
  outBlock: Block | null;
  /** KV buffer addresses at binding time → graph id */
  ids: Map<string, number>;
  runOptions: Map<number, RunOptions>;
}

/** What a captured step produced: the first B rows of each fetched output on the host, and a view of the logits. */
export interface CapturedResult {
  data: Map<string, TensorData>;
  /** the bucket's logits [B, P, V] left in the session's memory (a view; the caller disposes it) */
  logits: Value;
  bucket: number;
  graphId: number;
}

/** Captured decode steps of one runner: a session of the `capture` graph sharing the runner's KV caches. */
export class CapturedSteps {
  private readonly buckets = new Map<number, Bucket>();
  private nextId = 1;
  private readonly kvInputs: Set<string>;
  private readonly kvOutputs: Set<string>;
  /** captured runs, steps that ran the ordinary graph instead, and graph ids handed out */
  readonly stats = { runs: 0, fallbacks: 0, graphIds: 0 };
  /** one-node Identity graphs per element type, for copies between host and device memory */
  private readonly copiers = new Map<TensorType, { session: ModelSession; binding: IoBinding }>();
  private readonly staged: boolean;
  private readonly bucketList: readonly number[];

  /**
   * `staged` (tests): inputs go through host staging buffers and the Identity copy graphs even when the session
   * computes in host memory, as they do on CUDA.
   */
  constructor(
    readonly session: ModelSession,
    readonly manifest: GraphManifest,
    private readonly caches: KvGroupCache[],
    private readonly transfer: TransferBytes,
    { staged = false, buckets = GRAPH_BUCKETS }: { staged?: boolean; buckets?: readonly number[] } = {},
  ) {
    this.staged = staged || session.memory.device !== 'cpu';
    this.bucketList = buckets;
    this.kvInputs = new Set(manifest.kvGroups.flatMap((g) => [...g.pastKey, ...g.pastValue]));
    this.kvOutputs = new Set(manifest.kvGroups.flatMap((g) => [...g.presentKey, ...g.presentValue]));
  }

  /** Rows each cache's buffers hold (0 before the first row). */
  private rowCapacity(cache: KvGroupCache): number {
    const { layers, numKvHeads, headDim } = cache.info;
    const perRow = layers * 2 * numKvHeads * cache.capacity * headDim * (cache.float16 ? 2 : 4);
    return Math.floor(cache.allocatedBytes / perRow);
  }

  /** The bucket a decode plan runs in, or null when it cannot run captured (then it runs the ordinary graph). */
  bucketOf(plan: StepPlan): number | null {
    const m = this.manifest;
    if (plan.prefill || m.rowLayout !== 'rows' || m.adapters) return null;
    if ((plan.positions[0]?.length ?? 0) !== 1) return null;
    for (let g = 0; g < this.caches.length; g++) {
      const r = plan.ranges[g];
      if (r.start !== 0 || r.count !== this.caches[g].size) return null;
    }
    if (Math.max(...plan.totals) > this.caches[0].capacity) return null;
    const limit = Math.min(...this.caches.map((c) => this.rowCapacity(c)));
    const inra = this.caches.length > 1;
    return chooseBucket(
      { rows: plan.tokens.length, outputs: plan.outputs.length, ...(inra ? { adapterRows: plan.ranges[1].count } : {}) },
      limit,
      this.bucketList,
    );
  }

  private dimsOf(e: IoEntry, n: number): number[] {
    return e.dims.map((d) => {
      if (typeof d === 'number') return d;
      if (d === 'R' || d === 'B' || d === 'A') return n;
      if (d === 'S' || d === 'P') return 1;
      if (d === 'V') return this.manifest.vocabSize;
      throw new Error(`captured step: ${e.name} has a dimension ${d} this runner does not size`);
    });
  }

  /** One block for `entries` (typed parts, 256-byte aligned) and their buffers. */
  private block(entries: IoEntry[], n: number, leadingNames: string[]): { block: Block; buffers: Map<string, Buffer> } {
    const align = (x: number) => Math.ceil(x / 256) * 256;
    const parts = entries.map((e) => {
      const dims = this.dimsOf(e, n);
      return { e, dims, bytes: dims.reduce((x, y) => x * y, 1) * ELEMENT_SIZE[e.type] };
    });
    let at = 0;
    let leading = 0;
    const offsets = parts.map((p) => {
      const o = at;
      at = align(at + p.bytes);
      if (leadingNames.includes(p.e.name)) leading = at;
      return o;
    });
    const total = Math.max(at, 256);
    const device = Value.allocate(this.session.allocator, 'uint8', [total]);
    const host = this.staged ? Value.fromHost('uint8', new Uint8Array(total), [total]) : null;
    const buffers = new Map<string, Buffer>();
    parts.forEach((p, i) => {
      buffers.set(p.e.name, {
        entry: p.e,
        dims: p.dims,
        bound: Value.view(device, offsets[i], p.dims, this.session.memory, p.e.type),
        staging: host ? Value.view(host, offsets[i], p.dims, MemoryInfo.cpu(), p.e.type) : null,
      });
    });
    return { block: { device, host, leading: leading || total }, buffers };
  }

  private bucket(n: number): Bucket {
    let b = this.buckets.get(n);
    if (b) return b;
    const binding = this.session.binding();
    const small = this.manifest.inputs.filter((e) => !this.kvInputs.has(e.name) && e.name !== 'total_sequence_length');
    const { block: inBlock, buffers: inputs } = this.block(small, n, []);
    for (const [name, buf] of inputs) binding.bindInput(name, buf.bound);
    const total = this.manifest.inputs.find((x) => x.name === 'total_sequence_length');
    if (total) {
      // a host input of GroupQueryAttention: the same value for every captured step
      const v = Value.fromHost('int32', Int32Array.of(this.caches[0].capacity), []);
      inputs.set(total.name, { entry: total, dims: [], bound: v, staging: null });
      binding.bindInput(total.name, v);
    }
    const outs = this.manifest.outputs.filter((e) => !this.kvOutputs.has(e.name));
    const outputs = new Map<string, Buffer>();
    // the outputs read every step first, so that one copy of the block's leading bytes brings them back
    const smallOuts = outs
      .filter((e) => e.name !== 'logits')
      .sort((a, c) => Number(TOP_OUTPUTS.includes(a.name)) - Number(TOP_OUTPUTS.includes(c.name)));
    let outBlock: Block | null = null;
    if (smallOuts.length) {
      const made = this.block(smallOuts, n, ['sample_token', 'sample_logprob']);
      outBlock = made.block;
      for (const [name, buf] of made.buffers) outputs.set(name, buf);
    }
    for (const e of outs.filter((x) => x.name === 'logits')) {
      const dims = this.dimsOf(e, n);
      outputs.set(e.name, { entry: e, dims, bound: Value.allocate(this.session.allocator, e.type, dims), staging: null });
    }
    for (const [name, buf] of outputs) binding.bindOutput(name, buf.bound);
    b = { n, binding, inputs, outputs, inBlock, outBlock, ids: new Map(), runOptions: new Map() };
    this.buckets.set(n, b);
    return b;
  }

  /** The padded host inputs of a plan in bucket n (input name → data). */
  paddedInputs(plan: StepPlan, n: number, sampling: SamplingFeed | null): Map<string, TensorData> {
    const R = plan.tokens.length;
    const B = plan.outputs.length;
    const out = new Map<string, TensorData>();
    const ids = new BigInt64Array(n);
    plan.tokens.forEach((t, r) => (ids[r] = BigInt(t[0])));
    out.set('input_ids', ids);
    const seqlens = new Int32Array(n); // padded rows: one token, at position 0 of a free slot
    plan.totals.forEach((t, r) => (seqlens[r] = t - 1));
    out.set('seqlens_k', seqlens);
    out.set('positions', new BigInt64Array(n));
    const lambda = new Float32Array(n);
    const aligned = new BigInt64Array(n);
    const reference = new BigInt64Array(n);
    plan.outputs.forEach((o, b) => {
      lambda[b] = o.lambda;
      aligned[b] = BigInt(o.aligned);
      reference[b] = BigInt(o.reference);
    });
    out.set('lambda', lambda);
    out.set('aligned_row', aligned);
    out.set('reference_row', reference);
    if (this.caches.length > 1) {
      const real = plan.adapterRows ?? [];
      // padded adapter slots read branch row 0 and are read by no row (adapter_slot: forward.ts adapterLayers)
      const rows = new BigInt64Array(n);
      real.forEach((r, k) => (rows[k] = BigInt(r)));
      out.set('adapter_rows', rows);
      const slot = new BigInt64Array(n).fill(-1n);
      real.forEach((r, k) => (slot[r] = BigInt(k)));
      out.set('adapter_slot', slot);
    }
    if (this.manifest.deviceSampling) {
      const s = sampling;
      const pad = <T extends Float64Array | BigInt64Array>(data: T | undefined, empty: T, fill: number | bigint): T => {
        (empty as Float64Array).fill(fill as number);
        if (data) (empty as Float64Array).set((data as Float64Array).subarray(0, B));
        return empty;
      };
      out.set('sample_uniform', pad(s?.uniform, new Float64Array(n), 0));
      out.set('sample_temperature', pad(s?.temperature, new Float64Array(n), 0));
      out.set('sample_top_p', pad(s?.topP, new Float64Array(n), 1));
      out.set('sample_min_p', pad(s?.minP, new Float64Array(n), 0));
      out.set('sample_top_k', pad(s?.topK, new BigInt64Array(n), 0n));
    }
    if (B > n || R > n) throw new Error(`captured step: ${R} rows / ${B} outputs in a bucket of ${n}`);
    return out;
  }

  /**
   * Runs a decode plan in bucket `n` (from bucketOf): writes the padded inputs into the bucket's buffers, runs with
   * the bucket's graph id and copies the first B rows of `fetch` back. The KV caches are bound at slots [0, n).
   */
  run(plan: StepPlan, n: number, sampling: SamplingFeed | null, fetch: string[]): CapturedResult {
    const b = this.bucket(n);
    for (const cache of this.caches) cache.bind(b.binding, 0, n);
    const signature = this.manifest.kvGroups
      .flatMap((g) => [...g.pastKey, ...g.pastValue].map((name) => String(b.binding.input(name)?.address())))
      .join(',');
    let id = b.ids.get(signature);
    if (id === undefined) {
      id = this.nextId++;
      this.stats.graphIds++;
      b.ids.set(signature, id);
      b.runOptions.set(id, RunOptions.graph(id));
    }
    const before = { to: transfers.toDevice, from: transfers.fromDevice };
    for (const [name, data] of this.paddedInputs(plan, n, sampling)) {
      const buf = b.inputs.get(name);
      if (!buf) throw new Error(`captured step: the capture graph has no input ${name}`);
      (buf.staging ?? buf.bound).write(data);
    }
    // one copy of the whole input block (its bytes were counted as written)
    if (b.inBlock.host) this.copy(b.inBlock.host, b.inBlock.device, 'uint8');
    b.binding.run(b.runOptions.get(id));
    this.stats.runs++;
    const B = plan.outputs.length;
    const data = new Map<string, TensorData>();
    const small = fetch.filter((name) => name !== 'logits');
    if (small.length && b.outBlock?.host) {
      // one copy back: the leading outputs, or the whole block when the top logprobs are read too
      const bytes = small.some((x) => TOP_OUTPUTS.includes(x)) ? b.outBlock.device.byteLength : b.outBlock.leading;
      const from = Value.view(b.outBlock.device, 0, [bytes], this.session.memory);
      const to = Value.view(b.outBlock.host, 0, [bytes], MemoryInfo.cpu());
      try {
        this.copy(from, to, 'uint8');
      } finally {
        from.dispose();
        to.dispose();
      }
    }
    for (const name of fetch) {
      const buf = b.outputs.get(name);
      if (!buf) throw new Error(`captured step: the capture graph has no output ${name}`);
      data.set(name, name === 'logits' ? this.readRows(buf, B) : this.leadingRows(buf.staging ?? buf.bound, buf.dims, B));
    }
    const logitsBuf = b.outputs.get('logits')!;
    const logits = Value.view(logitsBuf.bound, 0, [B, ...logitsBuf.dims.slice(1)], this.session.memory);
    this.transfer.toDevice += transfers.toDevice - before.to;
    this.transfer.fromDevice += transfers.fromDevice - before.from;
    this.transfer.steps++;
    return { data, logits, bucket: n, graphId: id };
  }

  /** The first `rows` rows of a host value of `dims` (counted as device→host bytes). */
  private leadingRows(v: Value, dims: number[], rows: number): TensorData {
    const view = Value.view(v, 0, [rows, ...dims.slice(1)], MemoryInfo.cpu());
    try {
      return view.read();
    } finally {
      view.dispose();
    }
  }

  /** The first `rows` rows of an output buffer, on the host (counted as device→host bytes). */
  private readRows(buf: Buffer, rows: number): TensorData {
    const rest = buf.dims.slice(1);
    const dims = [rows, ...rest];
    const view = Value.view(buf.bound, 0, dims, this.session.memory);
    try {
      if (view.device === 'cpu' && !this.staged) return view.read();
      const count = dims.reduce((x, y) => x * y, 1);
      const host = Value.fromHost(buf.entry.type, new ARRAYS[buf.entry.type](count), dims);
      try {
        this.copy(view, host, buf.entry.type);
        return host.read();
      } finally {
        host.dispose();
      }
    } finally {
      view.dispose();
    }
  }

  /**
   * Copies `src` into `dst` (the same element count; host and/or device memory) with the EP's own Identity kernel: a
   * one-node graph of a session forked from this one (without graph capture), run through an IoBinding with both
   * ends bound. ORT 1.29's CopyTensors has no data transfer for the CUDA EP added to a session (see device-copy.ts).
   */
  private copy(src: Value, dst: Value, type: TensorType): void {
    let c = this.copiers.get(type);
    if (!c) {
      const g = new Graph(`realign-copy-${type}`);
      const id = g.op1('Identity', [g.input('src', type, ['N'], 'flat source')], {}, '/copy/Identity');
      g.output(id, 'dst', type, ['N'], 'flat destination');
      const session = this.session.fork(encodeOnnxModel(g));
      c = { session, binding: session.binding() };
      this.copiers.set(type, c);
    }
    const memoryOf = (v: Value) => (v.device === 'cpu' ? MemoryInfo.cpu() : this.session.memory);
    const from = Value.view(src, 0, [src.elements], memoryOf(src));
    const to = Value.view(dst, 0, [dst.elements], memoryOf(dst));
    try {
      c.binding.bindInput('src', from);
      c.binding.bindOutput('dst', to);
      c.binding.run();
    } finally {
      c.binding.clearInputs();
      c.binding.clearOutputs();
      from.dispose();
      to.dispose();
    }
  }

  /** The graph ids handed out, per bucket (for tests and stats). */
  graphIds(): Map<number, number[]> {
    return new Map([...this.buckets].map(([n, b]) => [n, [...b.ids.values()]]));
  }

  /** The values bound in bucket `n` (for tests: their addresses must not change between steps). */
  boundValues(n: number): Value[] {
    const b = this.buckets.get(n);
    if (!b) return [];
    return [...b.inputs.values(), ...b.outputs.values()].map((x) => x.bound);
  }

  async release(): Promise<void> {
    for (const b of this.buckets.values()) {
      b.binding.dispose();
      for (const buf of [...b.inputs.values(), ...b.outputs.values()]) {
        buf.bound.dispose();
        buf.staging?.dispose();
      }
      for (const blk of [b.inBlock, b.outBlock]) {
        blk?.device.dispose();
        blk?.host?.dispose();
      }
      for (const r of b.runOptions.values()) r.dispose();
    }
    this.buckets.clear();
    for (const c of this.copiers.values()) {
      c.binding.dispose();
      await c.session.release();
    }
    this.copiers.clear();
    await this.session.release();
  }
}
