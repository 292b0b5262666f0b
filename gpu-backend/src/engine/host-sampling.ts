/**
 * The host sampler over one step's logits [rows, V]: each running row's event, in row order. Rows whose draw is a
 * pure function of their processed logits (SequenceSampler.boundedDraw: sampled top_p or full-softmax rows without
 * logprobs) are drawn in one round shared with the draw thread (sampling/draw-pool.ts) when there are at least
 * two of them; every other row is sampled on this thread while the draw thread works. The tokens are those of
 * `Sequence.step` row by row: the same draw functions with the same numbers.
 */
import type { DrawPool } from '../sampling/draw-pool.ts';
import type { DrawJob } from '../sampling/draw-bounded.ts';

/** What hostSample needs of a row's sequence (engine/sequence.ts; the benchmark wraps bare samplers in it). */
export interface HostRow<E extends object> {
  readonly sampler: { boundedDraw(vocab: number): boolean };
  step(logits: Float32Array): E;
  prepareDraw(logits: Float32Array, into: Float32Array): DrawJob | E;
  finishDraw(job: DrawJob, token: number): E;
}

/** Fewer bounded rows than this in a step are drawn on the engine thread alone (a round's hand-off costs ~0.05 ms). */
export const MIN_ROUND_ROWS = 2;

/**
 * Each row's event (null where `seqs[i]` is null), from `logits` [rows, V] or a function giving row i's logits (read
 * once per row, e.g. copied from the device for the rows a sampling graph left to the host). `pool` gives the draw
 * pool (asked only when a round would run; null: none). `failed` turns an unexpected error of one row's sampling into that row's event, so one row's failure never ends the others.
 */
export function hostSample<E extends object, S extends HostRow<E>>(
  seqs: readonly (S | null)[],
  logits: Float32Array | ((row: number) => Float32Array),
  vocab: number,
  pool: () => DrawPool | null,
  failed: (seq: S, err: unknown) => E,
): (E | null)[] {
  const out: (E | null)[] = new Array<E | null>(seqs.length).fill(null);
  const rowOf = typeof logits === 'function' ? logits : (i: number) => logits.subarray(i * vocab, (i + 1) * vocab);
  const stepRow = (i: number) => {
    const seq = seqs[i]!;
    try {
      out[i] = seq.step(rowOf(i));
    } catch (err) {
      out[i] = failed(seq, err);
    }
  };
  const bounded: number[] = [];
  const others: number[] = [];
  seqs.forEach((seq, i) => {
    if (seq) (seq.sampler.boundedDraw(vocab) ? bounded : others).push(i);
  });
  const draws = bounded.length >= MIN_ROUND_ROWS ? pool() : null;
  if (!draws?.usable) {
    seqs.forEach((seq, i) => seq && stepRow(i));
    return out;
  }
  const jobs: (DrawJob | null)[] = [];
  const prepare = (j: number, into: Float32Array): DrawJob | null => {
    const i = bounded[j];
    const seq = seqs[i]!;
    let job: DrawJob | null = null;
    try {
      const r = seq.prepareDraw(rowOf(i), into);
      if ('z' in r && r.z instanceof Float32Array) job = r as DrawJob;
      else out[i] = r as E;
    } catch (err) {
      out[i] = failed(seq, err);
    }
    jobs[j] = job;
    return job;
  };
  const tokens = draws.round(bounded.length, vocab, prepare, () => others.forEach(stepRow));
  bounded.forEach((i, j) => {
    const job = jobs[j];
    if (!job) return;
    const seq = seqs[i]!;
    try {
      out[i] = seq.finishDraw(job, tokens[j]);
    } catch (err) {
      out[i] = failed(seq, err);
    }
  });
  return out;
}
