/**
 * The TrRa teacher: for every position of a batch, log softmax(λ·z_aligned + (1 − λ)·z_reference) computed by the
 * serving runtime's fusion graph (both models in one graph, the blend applied per output row), read at every
 * position of a prefill. The log-softmax is taken over the vocabulary, in float64.
 */
import type { Checkpoint } from '../checkpoint/checkpoint.ts';
import { GraphRunner } from '../engine/graph-runner.ts';
import { branchesFor, RowAllocator } from '../engine/rows.ts';
import { ensureGraph } from '../graph/build.ts';
import { ModelSession, type Device } from '../ort/session.ts';
import type { Batch } from './batches.ts';
import type { Teacher } from './trainer.ts';

/** Where the teacher runs. */
export interface FusionTeacherOptions {
  device: Device;
  threads?: number;
  /** longest row it must serve */
  maxContext: number;
  graphCache: string;
}

/** A fusion graph session that turns batches into teacher log-probabilities. */
export class FusionTeacher implements Teacher {
  private constructor(
    private readonly runner: GraphRunner,
    private readonly rows: RowAllocator,
    readonly lambda: number,
    readonly vocabSize: number,
  ) {}

  /** Builds (or reuses) the fusion graph of the two checkpoints and opens it. */
  static async open(
    reference: Checkpoint,
    aligned: Checkpoint,
    lambda: number,
    opts: FusionTeacherOptions,
  ): Promise<FusionTeacher> {
    if (!Number.isFinite(lambda)) throw new Error(`--lambda must be a finite number, got ${lambda}`);
    const files = ensureGraph(
      {
        mode: 'fusion',
        floatType: opts.device === 'cuda' ? 'float16' : 'float32',
        maxContext: opts.maxContext,
        aligned,
        reference,
      },
      opts.graphCache,
    );
    const session = await ModelSession.open(files.modelPath, { device: opts.device, threads: opts.threads });
    const runner = new GraphRunner(session, files.manifest);
    return new FusionTeacher(runner, new RowAllocator(runner), lambda, files.manifest.vocabSize);
  }

  /** Teacher log-probabilities [B, W, V]; positions past a row's end hold the uniform distribution. */
  async logprobs(batch: Batch): Promise<Float32Array> {
    const V = this.vocabSize;
    const W = batch.width;
    const handles = batch.inputs.map(() => this.rows.add(branchesFor('fusion', [this.lambda])));
    const plan = this.rows.prefillPlan(
      batch.inputs.map((tokens, i) => ({ handle: handles[i], tokens, lambdas: [this.lambda] })),
      true,
    );
    const res = await this.runner.step(plan);
    this.rows.commit(plan);
    for (const h of handles) this.rows.remove(h);
    const P = res.positions; // = W: the longest row
    const out = new Float32Array(batch.rows * W * V).fill(-Math.log(V));
    batch.inputs.forEach((tokens, b) => {
      for (let t = 0; t < tokens.length; t++) logSoftmaxInto(res.logits, (b * P + t) * V, out, (b * W + t) * V, V);
    });
    return out;
  }

  /** Frees the session. */
  async close(): Promise<void> {
    await this.runner.session.release();
  }
}

function logSoftmaxInto(src: Float32Array, from: number, dst: Float32Array, to: number, V: number): void {
  let max = -Infinity;
  for (let v = 0; v < V; v++) max = Math.max(max, src[from + v]);
  let sum = 0;
  for (let v = 0; v < V; v++) sum += Math.exp(src[from + v] - max);
  const lse = max + Math.log(sum);
  for (let v = 0; v < V; v++) dst[to + v] = src[from + v] - lse;
}
