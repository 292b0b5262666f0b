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
  /** bound to the session (device memory on CUDA) */
  bound: Value;
  /** host staging of an input on CUDA (null: `bound` is host memory) */
  staging: Value | null;
}

interface Bucket {
  n: number;
  binding: IoBinding;
  inputs: Map<string, Buffer>;
  outputs: Map<string, Buffer>;
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

  private bucket(n: number): Bucket {
    let b = this.buckets.get(n);
    if (b) return b;
    const buffer = (e: IoEntry, input: boolean): Buffer => {
      const dims = this.dimsOf(e, n);
      const bound = Value.allocate(this.session.allocator, e.type, dims);
      const count = dims.reduce((x, y) => x * y, 1);
      const staging = input && this.staged ? Value.fromHost(e.type, new ARRAYS[e.type](count), dims) : null;
      return { entry: e, dims, bound, staging };
    };
    const binding = this.session.binding();
    const inputs = new Map<string, Buffer>();
    for (const e of this.manifest.inputs) {
      if (this.kvInputs.has(e.name)) continue;
      if (e.name === 'total_sequence_length') {
        // a host input of GroupQueryAttention: the same value for every captured step
        const v = Value.fromHost('int32', Int32Array.of(this.caches[0].capacity), []);
        inputs.set(e.name, { entry: e, dims: [], bound: v, staging: null });
        binding.bindInput(e.name, v);
        continue;
      }
      const buf = buffer(e, true);
      inputs.set(e.name, buf);
      binding.bindInput(e.name, buf.bound);
    }
    const outputs = new Map<string, Buffer>();
    for (const e of this.manifest.outputs) {
      if (this.kvOutputs.has(e.name)) continue;
      const buf = buffer(e, false);
      outputs.set(e.name, buf);
      binding.bindOutput(e.name, buf.bound);
    }
    b = { n, binding, inputs, outputs, ids: new Map(), runOptions: new Map() };
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
      if (buf.staging) {
        buf.staging.write(data);
        this.copy(buf.staging, buf.bound, buf.entry.type);
      } else buf.bound.write(data);
    }
    b.binding.run(b.runOptions.get(id));
    this.stats.runs++;
    const B = plan.outputs.length;
    const data = new Map<string, TensorData>();
    for (const name of fetch) {
      const buf = b.outputs.get(name);
      if (!buf) throw new Error(`captured step: the capture graph has no output ${name}`);
      data.set(name, this.readRows(buf, B));
    }
    const logitsBuf = b.outputs.get('logits')!;
    const logits = Value.view(logitsBuf.bound, 0, [B, ...logitsBuf.dims.slice(1)], this.session.memory);
    this.transfer.toDevice += transfers.toDevice - before.to;
    this.transfer.fromDevice += transfers.fromDevice - before.from;
    this.transfer.steps++;
    return { data, logits, bucket: n, graphId: id };
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
