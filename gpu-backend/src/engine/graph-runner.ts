/**
 * Drives one built graph: turns a step plan (which cached rows take part, their new tokens, which output rows
 * blend which branch rows with which λ) into feeds, runs the session through an IoBinding, and keeps the KV caches'
 * bookkeeping. The KV caches stay bound where the session computes (kv-cache.ts); per step only the small inputs
 * (token ids, lengths, λ, row maps) go in and the logits (or the decode loop's tokens) come out, and the binding
 * counts those bytes (`transferBytes`).
 */
import { Graph } from '../graph/ir.ts';
import type { GraphManifest } from '../graph/model-graph.ts';
import { encodeOnnxModel } from '../graph/onnx-writer.ts';
import { MemoryInfo, transfers, Value, type HostTensor, type IoBinding, type ModelSession } from '../ort/session.ts';
import { CapturedSteps } from './captured-steps.ts';
import { KvGroupCache, type KvCapacity } from './kv-cache.ts';
import { mixFeeds, type MixTerm } from './mix.ts';

/**
 * One output row: logits = λ·z(aligned) + (1 − λ)·z(reference), indices into the step's branch rows. In a
 * multi-adapter graph (manifest.adapters) `terms` gives the row's mix, logits = Σ weight·z(row) (absent: the two
 * terms of λ, aligned and reference).
 */
export interface OutputRow {
  lambda: number;
  aligned: number;
  reference: number;
  terms?: MixTerm[];
}

/**
 * A step over branch rows. For layout `rows` the branch rows are slots [start, start+count) of group 0 (and
 * `adapterRows` lists, for adapter slots [start, start+count) of group 1, their branch-row index). For layout
 * `split` they are group 0's slots followed by group 1's.
 */
export interface StepPlan {
  ranges: { start: number; count: number }[];
  /** new tokens per branch row (rows may differ in length in a prefill) */
  tokens: number[][];
  /** total tokens of each branch row after this step */
  totals: number[];
  /** prefill (rows start empty) or decode (one new token per row) */
  prefill: boolean;
  /** positions (indices into this step's tokens) to project, the same count P for every row */
  positions: number[][];
  adapterRows?: number[];
  /** multi-adapter graphs: per adapter (manifest order), its slots' branch-row indices, like `adapterRows` */
  adapterRowsBy?: number[][];
  outputs: OutputRow[];
}

/** Result of a step. */
export interface StepResult {
  /** [B, P, V] */
  logits: Float32Array;
  positions: number;
  vocabSize: number;
}

/**
 * The sampling block's per-output-row inputs (graphs built with `deviceSampling`; see graph/device-sampling.ts):
 * u from each row's own stream (0 for greedy rows), temperature, top_p, min_p as float64 and top_k as int64.
 */
export interface SamplingFeed {
  uniform: Float64Array;
  temperature: Float64Array;
  topP: Float64Array;
  minP: Float64Array;
  topK: BigInt64Array;
  /** also read back the top logprobs [B, K] (only when a row asked for top_logprobs) */
  top: boolean;
}

/** What the sampling block chose, per output row. */
export interface DeviceSampled {
  /** ≥ 0 the token; −1 no finite logit; −2 the host samples this row (`logitsRow`) */
  token: BigInt64Array;
  logprob: Float64Array;
  /** [B, K], with `top` */
  topIds?: BigInt64Array;
  topLogprobs?: Float64Array;
  /** K */
  topCount: number;
  /**
   * Output row `b`'s blended logits at its last projected position, copied to the host (counted): for rows the
   * host decides. Valid until the runner's next step.
   */
  logitsRow(b: number): Float32Array;
}

/** Host↔device bytes of the steps run so far (inputs written, outputs read back). */
export interface TransferBytes {
  toDevice: number;
  fromDevice: number;
  steps: number;
}

const TOP_OUTPUTS = ['sample_top_ids', 'sample_top_logprobs'];

/** Sampling inputs that make every row greedy (steps whose tokens the host decides, or none). */
function greedyFeed(B: number): SamplingFeed {
  const zeros = new Float64Array(B);
  return {
    uniform: zeros,
    temperature: zeros,
    topP: new Float64Array(B).fill(1),
    minP: zeros,
    topK: new BigInt64Array(B),
    top: false,
  };
}

/** A session with its KV caches. */
export class GraphRunner {
  readonly caches: KvGroupCache[];
  forwardPasses = 0;
  /** host↔device bytes of this runner's runs */
  readonly transferBytes: TransferBytes = { toDevice: 0, fromDevice: 0, steps: 0 };
  /** a decode-loop graph of the same spec, sharing these caches (see loop()) */
  private loopSession: ModelSession | null = null;
  private readonly stepBinding: IoBinding;
  private loopBinding: IoBinding | null = null;
  /** the last sampled step's logits, left where the session computed them (device-sampling graphs) */
  private deviceLogits: Value | null = null;
  /** copies rows of device logits to the host (CUDA; a one-node graph of the same device) */
  private rowReader: { session: ModelSession; binding: IoBinding } | null = null;

  constructor(
    readonly session: ModelSession,
    readonly manifest: GraphManifest,
    kvCapacity: KvCapacity = {},
  ) {
    this.caches = manifest.kvGroups.map(
      (g) => new KvGroupCache(g, manifest.floatType === 'float16', session, manifest.maxContext, kvCapacity),
    );
    this.stepBinding = session.binding();
  }

  /** Whether the graph decides tokens itself (built with `deviceSampling`): then `stepSampled` can be used. */
  get deviceSampling(): boolean {
    return this.manifest.deviceSampling !== undefined;
  }

  /** Captured decode steps (CUDA graphs), when a capture graph is attached (attachCapture). */
  private captured: CapturedSteps | null = null;

  /**
   * Attaches the `capture` variant of this graph's spec (graph/build.ts) opened with CUDA graph capture: from then
   * on, decode steps that can be captured run there, padded to a batch bucket (engine/captured-steps.ts), and the
   * others here.
   */
  attachCapture(session: ModelSession, manifest: GraphManifest, opts: { staged?: boolean } = {}): void {
    if (JSON.stringify(manifest.kvGroups) !== JSON.stringify(this.manifest.kvGroups) || manifest.decodeLoop) {
      throw new Error('attachCapture needs the capture graph of the same spec');
    }
    if (JSON.stringify(manifest.deviceSampling) !== JSON.stringify(this.manifest.deviceSampling)) {
      throw new Error('attachCapture: the capture graph must have the sampling block exactly when the step graph has it');
    }
    this.captured = new CapturedSteps(session, manifest, this.caches, this.transferBytes, opts);
  }

  /** The captured decode steps, if attached. */
  get capture(): CapturedSteps | null {
    return this.captured;
  }

  /** The bucket a plan would run captured in (null: the ordinary graph); counts a decode step that falls back. */
  private captureBucket(plan: StepPlan): number | null {
    if (!this.captured || plan.prefill) return null;
    const n = this.captured.bucketOf(plan);
    if (n === null) this.captured.stats.fallbacks++;
    return n;
  }

  /**
   * Runs a plan captured; when the captured run fails (ORT could not capture or replay it), captured steps are
   * turned off for good and null is returned: the caller runs the step on the ordinary graph, which writes the same
   * KV positions again. The error is kept in `captureError`.
   */
  private runCaptured(plan: StepPlan, n: number, sampling: SamplingFeed | null, fetch: string[]) {
    try {
      return this.captured!.run(plan, n, sampling, fetch);
    } catch (err) {
      this.captureError = err as Error;
      const c = this.captured;
      this.captured = null;
      void c?.release().catch(() => {});
      return null;
    }
  }

  /** Why captured steps were turned off, if they were. */
  captureError: Error | null = null;

  /** Runs one step and records the new lengths in the caches; the logits come back to the host. */
  async step(plan: StepPlan): Promise<StepResult> {
    const n = this.captureBucket(plan);
    const r = n === null ? null : this.runCaptured(plan, n, null, ['logits']);
    if (r) {
      r.logits.dispose();
      this.forwardPasses++;
      this.recordLengths(plan);
      return { logits: r.data.get('logits') as Float32Array, positions: 1, vocabSize: this.manifest.vocabSize };
    }
    const feeds = this.stepFeeds(plan);
    const P = plan.positions[0]?.length ?? 0;
    // a sampling graph takes its inputs on every run: greedy rows here, its outputs left on the device unread
    const unread = this.deviceSampling ? this.addSamplingFeeds(feeds, greedyFeed(plan.outputs.length), false) : [];
    const { data } = this.run(this.stepBinding, feeds, ['logits'], unread);
    this.forwardPasses++;
    this.recordLengths(plan);
    return { logits: data[0] as Float32Array, positions: P, vocabSize: this.manifest.vocabSize };
  }

  /**
   * Runs a step for what it writes into the KV caches only (a chunk of a prompt whose logits nobody reads, see
   * RowAllocator.chunkPlans): the outputs stay where the session computed them and nothing comes back to the host.
   */
  async fill(plan: StepPlan): Promise<void> {
    const feeds = this.stepFeeds(plan);
    const unread = this.deviceSampling ? this.addSamplingFeeds(feeds, greedyFeed(plan.outputs.length), false) : [];
    this.run(this.stepBinding, feeds, [], ['logits', ...unread]);
    this.forwardPasses++;
    this.recordLengths(plan);
  }

  /**
   * Runs one step of a device-sampling graph with each output row's sampling inputs: only the chosen tokens and
   * their logprobs (and the top logprobs when asked) come back; the logits stay on the device, from where single
   * rows can be copied (`logitsRow`) for the rows the host decides.
   */
  async stepSampled(plan: StepPlan, sampling: SamplingFeed): Promise<DeviceSampled> {
    const info = this.manifest.deviceSampling;
    if (!info) throw new Error('stepSampled() needs a graph built with deviceSampling');
    const P = plan.positions[0]?.length ?? 0;
    const V = this.manifest.vocabSize;
    const B = plan.outputs.length;
    this.deviceLogits?.dispose();
    this.deviceLogits = null;
    const fetch = ['sample_token', 'sample_logprob', ...(sampling.top ? TOP_OUTPUTS : [])];
    const n = this.captureBucket(plan);
    const r = n === null ? null : this.runCaptured(plan, n, sampling, fetch);
    let data: HostTensor['data'][];
    let logits: Value;
    if (r) {
      data = fetch.map((name) => r.data.get(name)!);
      logits = r.logits;
    } else {
      const feeds = this.stepFeeds(plan);
      const unread = this.addSamplingFeeds(feeds, sampling, true);
      const out = this.run(this.stepBinding, feeds, fetch, ['logits', ...unread], ['logits']);
      data = out.data;
      logits = out.kept[0];
    }
    this.forwardPasses++;
    this.recordLengths(plan);
    this.deviceLogits = logits;
    return {
      token: data[0] as BigInt64Array,
      logprob: data[1] as Float64Array,
      ...(sampling.top ? { topIds: data[2] as BigInt64Array, topLogprobs: data[3] as Float64Array } : {}),
      topCount: info.topLogprobs,
      logitsRow: (b: number) => {
        if (this.deviceLogits !== logits) throw new Error('logitsRow(): the runner has run another step since');
        if (b < 0 || b >= B) throw new Error(`logitsRow(${b}): ${B} output rows`);
        return this.readRow(logits, (b * P + P - 1) * V, V);
      },
    };
  }

  /** The feeds every step takes (the graph's step inputs of IO). */
  private stepFeeds(plan: StepPlan): Record<string, HostTensor> {
    const { feeds, maxTotal, S } = stepInputFeeds(plan);
    this.bindRows(this.stepBinding, plan, Math.max(maxTotal, S), feeds);
    return feeds;
  }

  /**
   * Adds the sampling block's inputs to `feeds`; returns the block's outputs not read back (`readTop`: the top
   * logprobs may be read), which are still bound on the device every run (the binding would otherwise hand a stale
   * output of another batch size to the next run).
   */
  private addSamplingFeeds(feeds: Record<string, HostTensor>, s: SamplingFeed, readTop: boolean): string[] {
    const B = s.uniform.length;
    feeds.sample_uniform = { type: 'float64', data: s.uniform, dims: [B] };
    feeds.sample_temperature = { type: 'float64', data: s.temperature, dims: [B] };
    feeds.sample_top_p = { type: 'float64', data: s.topP, dims: [B] };
    feeds.sample_min_p = { type: 'float64', data: s.minP, dims: [B] };
    feeds.sample_top_k = { type: 'int64', data: s.topK, dims: [B] };
    return readTop ? (s.top ? [] : TOP_OUTPUTS) : ['sample_token', 'sample_logprob', ...TOP_OUTPUTS];
  }

  /** `count` elements of `value` from element `offset`, copied to the host (counted as device→host bytes). */
  private readRow(value: Value, offset: number, count: number): Float32Array {
    const memory = this.session.memory;
    const view = Value.view(value, offset, [count], memory);
    try {
      if (view.device === 'cpu') return view.read() as Float32Array;
      this.rowReader ??= (() => {
        const g = new Graph('realign-row-read');
        g.output(
          g.op1('Identity', [g.input('src', 'float32', ['N'], 'device row')], {}, '/read/Identity'),
          'dst',
          'float32',
          ['N'],
          'the row on the host',
        );
        const session = this.session.fork(encodeOnnxModel(g));
        return { session, binding: session.binding() };
      })();
      const r = this.rowReader;
      r.binding.bindInput('src', view);
      r.binding.bindOutputToDevice('dst', MemoryInfo.cpu());
      r.binding.run();
      const [out] = r.binding.outputs(['dst']);
      try {
        return out.read() as Float32Array;
      } finally {
        out.dispose();
        r.binding.clearInputs();
      }
    } finally {
      view.dispose();
    }
  }

  /** Whether a decode-loop graph is attached. */
  get hasLoop(): boolean {
    return this.loopSession !== null;
  }

  /** Adds the decode-loop graph of the same spec (its KV inputs match this graph's, so the caches are shared). */
  attachLoop(session: ModelSession, manifest: GraphManifest): void {
    if (!manifest.decodeLoop || JSON.stringify(manifest.kvGroups) !== JSON.stringify(this.manifest.kvGroups)) {
      throw new Error('attachLoop needs the decode-loop graph of the same spec');
    }
    this.loopSession = session;
    this.loopBinding = session.binding();
  }

  /**
   * Runs `steps` greedy decode steps in one run of a decode-loop graph, starting from a decode plan (one token per
   * row). Returns the tokens [steps][B]; the caches then hold every token but the last ones returned.
   */
  async loop(plan: StepPlan, steps: number): Promise<number[][]> {
    if (!this.loopSession || !this.loopBinding) throw new Error('loop() needs a decode-loop graph: attachLoop() first');
    const R = plan.tokens.length;
    const B = plan.outputs.length;
    const maxTotal = Math.max(...plan.totals) + steps - 1;
    const rowOutput = new BigInt64Array(R);
    plan.outputs.forEach((o, b) => {
      rowOutput[o.aligned] = BigInt(b);
      rowOutput[o.reference] = BigInt(b);
      for (const t of o.terms ?? []) rowOutput[t.row] = BigInt(b);
    });
    const feeds: Record<string, HostTensor> = {
      input_ids: { type: 'int64', data: BigInt64Array.from(plan.tokens.map((t) => BigInt(t[0]))), dims: [R, 1] },
      seqlens_k: { type: 'int32', data: Int32Array.from(plan.totals, (t) => t - 1), dims: [R] },
      total_sequence_length: { type: 'int32', data: Int32Array.of(Math.max(...plan.totals)), dims: [] },
      steps: { type: 'int64', data: BigInt64Array.of(BigInt(steps)), dims: [] },
      row_output: { type: 'int64', data: rowOutput, dims: [R] },
    };
    this.bindRows(this.loopBinding, plan, maxTotal, feeds);
    const [out] = this.run(this.loopBinding, feeds, ['tokens']).data;
    this.forwardPasses += steps;
    this.recordLengths({ ...plan, totals: plan.totals.map((t) => t + steps - 1) });
    const tokens = out as BigInt64Array;
    return Array.from({ length: steps }, (_, m) => Array.from(tokens.subarray(m * B, (m + 1) * B), Number));
  }

  /** Releases the bindings, the caches' buffers and the sessions. */
  async release(): Promise<void> {
    this.deviceLogits?.dispose();
    this.deviceLogits = null;
    if (this.rowReader) {
      this.rowReader.binding.dispose();
      await this.rowReader.session.release();
    }
    this.stepBinding.dispose();
    this.loopBinding?.dispose();
    await this.captured?.release();
    this.captured = null;
    for (const c of this.caches) c.release();
    await this.loopSession?.release();
    await this.session.release();
  }

  /**
   * Adds the feeds step() and loop() share to `feeds`: each output row's λ and branch rows, InRa's adapter rows;
   * binds the past and present KV of the plan's slot ranges (checked to hold `tokens`) in `binding`.
   */
  private bindRows(binding: IoBinding, plan: StepPlan, tokens: number, feeds: Record<string, HostTensor>): void {
    const B = plan.outputs.length;
    if (this.manifest.adapters) {
      this.manifest.adapters.forEach((a, i) => {
        const rows = plan.adapterRowsBy?.[i] ?? [];
        feeds[a.rowsInput] = { type: 'int64', data: BigInt64Array.from(rows, BigInt), dims: [rows.length] };
      });
      Object.assign(feeds, mixFeeds(plan.outputs));
    } else {
      feeds.lambda = { type: 'float32', data: Float32Array.from(plan.outputs, (o) => o.lambda), dims: [B] };
      feeds.aligned_row = { type: 'int64', data: BigInt64Array.from(plan.outputs, (o) => BigInt(o.aligned)), dims: [B] };
      feeds.reference_row = { type: 'int64', data: BigInt64Array.from(plan.outputs, (o) => BigInt(o.reference)), dims: [B] };
    }
    if (this.manifest.mode === 'inra' && !this.manifest.adapters) {
      const rows = plan.adapterRows ?? [];
      feeds.adapter_rows = { type: 'int64', data: BigInt64Array.from(rows, BigInt), dims: [rows.length] };
    }
    this.caches.forEach((cache, g) => {
      cache.ensureTokens(tokens);
      cache.bind(binding, plan.ranges[g].start, plan.ranges[g].count);
    });
  }

  /**
   * Binds the step's small inputs (host data, counted as host→device bytes), runs, and returns the `fetch` outputs
   * copied to the host (counted as device→host bytes). The KV caches are bound already and stay where they are.
   * `device` outputs are left in the session's memory, uncounted; of those, `keep` are returned as values (the
   * caller disposes them), the others released.
   */
  private run(
    binding: IoBinding,
    feeds: Record<string, HostTensor>,
    fetch: string[],
    device: string[] = [],
    keep: string[] = [],
  ): { data: HostTensor['data'][]; kept: Value[] } {
    const before = { to: transfers.toDevice, from: transfers.fromDevice };
    const inputs: Value[] = [];
    const outputs: Value[] = [];
    try {
      for (const [name, t] of Object.entries(feeds)) {
        const v = Value.fromHost(t.type, t.data, t.dims);
        inputs.push(v);
        binding.bindInput(name, v);
        transfers.toDevice += v.byteLength;
      }
      // fetched outputs land in host memory; with the CUDA EP ORT copies them there at the end of the run
      for (const name of fetch) binding.bindOutputToDevice(name, MemoryInfo.cpu());
      for (const name of device) binding.bindOutputToDevice(name, this.session.memory);
      binding.run();
      outputs.push(...binding.outputs(fetch));
      const kept = keep.length > 0 ? binding.outputs(keep) : [];
      return { data: outputs.map((v) => v.read()), kept };
    } finally {
      for (const v of [...inputs, ...outputs]) v.dispose();
      this.transferBytes.toDevice += transfers.toDevice - before.to;
      this.transferBytes.fromDevice += transfers.fromDevice - before.from;
      this.transferBytes.steps++;
    }
  }

  private recordLengths(plan: StepPlan): void {
    const [g0, g1] = plan.ranges;
    for (let i = 0; i < g0.count; i++) this.caches[0].setLength(g0.start + i, plan.totals[i]);
    if (this.manifest.adapters) {
      plan.adapterRowsBy?.forEach((rows, i) =>
        rows.forEach((r, k) => this.caches[1 + i].setLength(plan.ranges[1 + i].start + k, plan.totals[r])),
      );
    } else if (this.manifest.rowLayout === 'rows') {
      if (g1) plan.adapterRows?.forEach((r, k) => this.caches[1].setLength(g1.start + k, plan.totals[r]));
    } else {
      for (let i = 0; i < g1.count; i++) this.caches[1].setLength(g1.start + i, plan.totals[g0.count + i]);
    }
  }
}

/**
 * The token, length and position feeds of one step, and the sizes they imply (S tokens per row, the longest total
 * length the step writes). Shared with the benchmark's old-path runner, so both feed a step the same way.
 *
 * A prefill step whose rows all start empty is a first prompt for GroupQueryAttention (S equals
 * total_sequence_length; `seqlens_k` gives each row's real length). A prefill step over rows that already hold
 * tokens (a later chunk of a chunked prefill: past = total − new tokens) is a subsequent prompt, where the operator
 * takes each row's past as `seqlens_k + 1 − S` and accepts only one row (RowAllocator.chunkPlans makes one plan per
 * branch row); each row is fed as if it had S new tokens.
 */
export function stepInputFeeds(plan: StepPlan): { feeds: Record<string, HostTensor>; maxTotal: number; S: number } {
  const R = plan.tokens.length;
  const S = plan.prefill ? Math.max(...plan.tokens.map((t) => t.length)) : 1;
  if (!plan.prefill && plan.tokens.some((t) => t.length !== 1)) throw new Error('a decode step takes exactly one token per row');
  const P = plan.positions[0]?.length ?? 0;
  const withPast = plan.prefill && plan.totals.some((t, r) => t > plan.tokens[r].length);
  const fed = withPast ? plan.totals.map((t, r) => t - plan.tokens[r].length + S) : plan.totals;
  const maxTotal = Math.max(...fed);
  const ids = new BigInt64Array(R * S);
  plan.tokens.forEach((t, r) => t.forEach((id, s) => (ids[r * S + s] = BigInt(id))));
  const feeds: Record<string, HostTensor> = {
    input_ids: { type: 'int64', data: ids, dims: [R, S] },
    seqlens_k: { type: 'int32', data: Int32Array.from(fed, (t) => t - 1), dims: [R] },
    // GroupQueryAttention treats a step as a first prompt exactly when S equals this value
    total_sequence_length: { type: 'int32', data: Int32Array.of(plan.prefill && !withPast ? S : maxTotal), dims: [] },
    positions: { type: 'int64', data: BigInt64Array.from(plan.positions.flat(), BigInt), dims: [R, P] },
  };
  return { feeds, maxTotal, S };
}
