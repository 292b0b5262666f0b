/**
 * Drives one built graph: turns a step plan (which cached rows take part, their new tokens, which output rows
 * blend which branch rows with which λ) into feeds, runs the session through an IoBinding, and keeps the KV caches'
 * bookkeeping. The KV caches stay bound where the session computes (kv-cache.ts); per step only the small inputs
 * (token ids, lengths, λ, row maps) go in and the logits (or the decode loop's tokens) come out, and the binding
 * counts those bytes (`transferBytes`).
 */
import type { GraphManifest } from '../graph/model-graph.ts';
import { MemoryInfo, transfers, Value, type HostTensor, type IoBinding, type ModelSession } from '../ort/session.ts';
import { KvGroupCache, type KvCapacity } from './kv-cache.ts';

/** One output row: logits = λ·z(aligned) + (1 − λ)·z(reference), indices into the step's branch rows. */
export interface OutputRow {
  lambda: number;
  aligned: number;
  reference: number;
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
  outputs: OutputRow[];
}

/** Result of a step. */
export interface StepResult {
  /** [B, P, V] */
  logits: Float32Array;
  positions: number;
  vocabSize: number;
}

/** Host↔device bytes of the steps run so far (inputs written, outputs read back). */
export interface TransferBytes {
  toDevice: number;
  fromDevice: number;
  steps: number;
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

  constructor(
    readonly session: ModelSession,
    readonly manifest: GraphManifest,
    kvCapacity: KvCapacity = {},
  ) {
    this.caches = manifest.kvGroups.map((g) => new KvGroupCache(g, manifest.floatType === 'float16', session, manifest.maxContext, kvCapacity));
    this.stepBinding = session.binding();
  }

  /** Runs one step and records the new lengths in the caches. */
  async step(plan: StepPlan): Promise<StepResult> {
    const R = plan.tokens.length;
    const S = plan.prefill ? Math.max(...plan.tokens.map((t) => t.length)) : 1;
    if (!plan.prefill && plan.tokens.some((t) => t.length !== 1)) throw new Error('a decode step takes exactly one token per row');
    const P = plan.positions[0]?.length ?? 0;
    const maxTotal = Math.max(...plan.totals);
    const ids = new BigInt64Array(R * S);
    plan.tokens.forEach((t, r) => t.forEach((id, s) => (ids[r * S + s] = BigInt(id))));
    const feeds: Record<string, HostTensor> = {
      input_ids: { type: 'int64', data: ids, dims: [R, S] },
      seqlens_k: { type: 'int32', data: Int32Array.from(plan.totals, (t) => t - 1), dims: [R] },
      // GroupQueryAttention treats a step as a prompt exactly when S equals this value
      total_sequence_length: { type: 'int32', data: Int32Array.of(plan.prefill ? S : maxTotal), dims: [] },
      positions: { type: 'int64', data: BigInt64Array.from(plan.positions.flat(), BigInt), dims: [R, P] },
    };
    this.bindRows(this.stepBinding, plan, Math.max(maxTotal, S), feeds);
    const [logits] = this.run(this.stepBinding, feeds, ['logits']);
    this.forwardPasses++;
    this.recordLengths(plan);
    return { logits: logits as Float32Array, positions: P, vocabSize: this.manifest.vocabSize };
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
    });
    const feeds: Record<string, HostTensor> = {
      input_ids: { type: 'int64', data: BigInt64Array.from(plan.tokens.map((t) => BigInt(t[0]))), dims: [R, 1] },
      seqlens_k: { type: 'int32', data: Int32Array.from(plan.totals, (t) => t - 1), dims: [R] },
      total_sequence_length: { type: 'int32', data: Int32Array.of(Math.max(...plan.totals)), dims: [] },
      steps: { type: 'int64', data: BigInt64Array.of(BigInt(steps)), dims: [] },
      row_output: { type: 'int64', data: rowOutput, dims: [R] },
    };
    this.bindRows(this.loopBinding, plan, maxTotal, feeds);
    const [out] = this.run(this.loopBinding, feeds, ['tokens']);
    this.forwardPasses += steps;
    this.recordLengths({ ...plan, totals: plan.totals.map((t) => t + steps - 1) });
    const tokens = out as BigInt64Array;
    return Array.from({ length: steps }, (_, m) => Array.from(tokens.subarray(m * B, (m + 1) * B), Number));
  }

  /** Releases the bindings, the caches' buffers and the sessions. */
  async release(): Promise<void> {
    this.stepBinding.dispose();
    this.loopBinding?.dispose();
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
    feeds.lambda = { type: 'float32', data: Float32Array.from(plan.outputs, (o) => o.lambda), dims: [B] };
    feeds.aligned_row = { type: 'int64', data: BigInt64Array.from(plan.outputs, (o) => BigInt(o.aligned)), dims: [B] };
    feeds.reference_row = { type: 'int64', data: BigInt64Array.from(plan.outputs, (o) => BigInt(o.reference)), dims: [B] };
    if (this.manifest.mode === 'inra') {
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
   */
  private run(binding: IoBinding, feeds: Record<string, HostTensor>, fetch: string[]): HostTensor['data'][] {
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
      binding.run();
      outputs.push(...binding.outputs(fetch));
      return outputs.map((v) => v.read());
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
    if (this.manifest.rowLayout === 'rows') {
      if (g1) plan.adapterRows?.forEach((r, k) => this.caches[1].setLength(g1.start + k, plan.totals[r]));
    } else {
      for (let i = 0; i < g1.count; i++) this.caches[1].setLength(g1.start + i, plan.totals[g0.count + i]);
    }
  }
}
