/**
 * Deciding the tokens of one model run whose output row i is `seqs[i]`'s next token: inside the graph when it has
 * the sampling block and every row can be decided there (only the tokens and logprobs come back), else on the host
 * from the logits (host-sampling.ts, sampled rows shared with the draw pool). Rows the graph leaves to the host are
 * sampled as a host run's rows are. Both give the same tokens for the same seeds (the same uniform number per draw).
 * The scheduler owns the rows and emits the events; this module runs the step and decides each row's event.
 */
import { availableParallelism } from 'node:os';
import { DrawPool } from '../sampling/draw-pool.ts';
import type { GraphRunner, SamplingFeed } from './graph-runner.ts';
import { hostSample } from './host-sampling.ts';
import type { LoadedModel } from './model-loader.ts';
import type { EngineLimits, GenerateEvent } from './protocol.ts';
import type { RowAllocator, SequencePlan } from './rows.ts';
import type { Sequence } from './sequence.ts';

/**
 * The event for a sequence whose own work for a step (sampling, stop rules, detokenizing) threw: it ends this
 * sequence alone with an error, the rest of the batch is not affected. Callers wrap each row's work in a plain
 * try/catch (no closure per row per step) and emit what comes back.
 */
export function rowFailed(seq: Sequence, err: unknown): GenerateEvent {
  const message = `this request failed inside the engine and was ended; other requests were not affected: ${err instanceof Error ? err.message : String(err)}`;
  return seq.end('error', { message, code: 'sequence_failed' });
}

/** One step of `plan` with its logits read back, committed, its time in `stepMs`. */
export async function timedStep(
  runner: GraphRunner,
  rows: RowAllocator,
  plan: SequencePlan,
  stepMs: number[],
): Promise<Float32Array> {
  const t0 = performance.now();
  const res = await runner.step(plan);
  rows.commit(plan);
  stepMs.push(performance.now() - t0);
  return res.logits;
}

/** The sampling block's per-row inputs; a row nobody reads (null: a first chunk) stays greedy and draws nothing. */
function samplingFeed(seqs: readonly (Sequence | null)[]): SamplingFeed {
  const B = seqs.length;
  const feed: SamplingFeed = {
    uniform: new Float64Array(B),
    temperature: new Float64Array(B),
    topP: new Float64Array(B).fill(1),
    minP: new Float64Array(B),
    topK: new BigInt64Array(B),
    top: false,
  };
  seqs.forEach((seq, i) => {
    if (!seq) return;
    const p = seq.job.params;
    feed.uniform[i] = seq.uniform() ?? 0;
    feed.temperature[i] = p.temperature;
    feed.topP[i] = p.top_p;
    feed.minP[i] = p.min_p;
    feed.topK[i] = BigInt(p.top_k);
    if (p.logprobs && p.top_logprobs > 0) feed.top = true;
  });
  return feed;
}

export class RunSampling {
  /** the host sampler's draw pool (undefined: not started yet; null: not used) */
  private pool: DrawPool | null | undefined;

  constructor(
    private readonly model: LoadedModel,
    private readonly rows: RowAllocator,
    private readonly limits: EngineLimits,
  ) {}

  /** Runs the step and returns each row's event (null where `seqs[i]` is null). */
  async run(plan: SequencePlan, seqs: (Sequence | null)[], stepMs: number[]): Promise<(GenerateEvent | null)[]> {
    const runner = this.model.runner;
    const V = this.model.vocabSize;
    const topCount = runner.manifest.deviceSampling?.topLogprobs ?? 0;
    if (!runner.deviceSampling || !seqs.every((s) => !s || s.deviceSampleable(topCount))) {
      const logits = await timedStep(runner, this.rows, plan, stepMs);
      return hostSample(seqs, logits, V, this.drawPool, rowFailed);
    }
    const t0 = performance.now();
    const res = await runner.stepSampled(plan, samplingFeed(seqs));
    this.rows.commit(plan);
    stepMs.push(performance.now() - t0);
    // rows the graph left to the host (−2, a nucleus wider than its candidates; −1, no finite logit: the host's error)
    // are sampled as a host step's rows are, sampled ones shared with the draw pool
    const host = seqs.map((seq, i) => (seq && res.token[i] < 0n ? seq : null));
    const out = host.some((s) => s) ? hostSample(host, (i) => res.logitsRow(i), V, this.drawPool, rowFailed) : [];
    const K = res.topCount;
    return seqs.map((seq, i) => {
      if (!seq) return null;
      if (out[i]) return out[i];
      const top =
        res.topIds && res.topLogprobs
          ? { ids: res.topIds.subarray(i * K, (i + 1) * K), logprobs: res.topLogprobs.subarray(i * K, (i + 1) * K) }
          : null;
      try {
        return seq.fromDevice(Number(res.token[i]), res.logprob[i], top, () => res.logitsRow(i));
      } catch (err) {
        return rowFailed(seq, err);
      }
    });
  }

  /** The draw pool, started the first time a run has MIN_ROUND_ROWS rows it can draw (see EngineLimits.drawThread). */
  private readonly drawPool = (): DrawPool | null => {
    if (this.pool !== undefined) return this.pool;
    const mode = this.limits.drawThread ?? 'auto';
    if (mode === 'off' || (mode === 'auto' && availableParallelism() < 2)) return (this.pool = null);
    try {
      this.pool = DrawPool.shared();
    } catch {
      this.pool = null; // no entry file (an unusual build): the engine thread samples alone
    }
    return this.pool;
  };
}
