/**
 * Multi-adapter InRa (graph/io.ts): the per-row mix z = z_ref + Σ_i λ_i·(z_i − z_ref) as the graph's J weighted
 * terms per output row, and their feeds.
 */
import type { HostTensor } from '../ort/session.ts';

/** λ per adapter name (the request's `mix`). */
export type AdapterMix = Readonly<Record<string, number>>;

/** What an output row blends: a λ (on a model of several adapters: its first adapter at that λ) or a mix. */
export type Blend = number | AdapterMix;

/** A blend as a mix, a plain λ going to `defaultAdapter`. */
export function blendMix(b: Blend, defaultAdapter: string): AdapterMix {
  return typeof b === 'number' ? { [defaultAdapter]: b } : b;
}

/** One term of a multi-adapter mix: a branch row and its weight. */
export interface MixTerm {
  row: number;
  weight: number;
}

/** What mixFeeds needs of an output row: its terms, or its λ and the two rows of a one-adapter blend. */
export interface MixedRow {
  lambda: number;
  aligned: number;
  reference: number;
  terms?: MixTerm[];
}

/**
 * The terms of a mix: the reference row (when it is weighted) with 1 − Σ λ_i and each adapter's row with its λ_i.
 * `adapterRow(name)` is the branch row of that adapter; `reference` null when the row has no reference branch row
 * (then Σ λ_i must be 1, a single adapter at λ = 1).
 */
export function mixTerms(
  mix: Readonly<Record<string, number>>,
  reference: number | null,
  adapterRow: (name: string) => number,
): MixTerm[] {
  const terms: MixTerm[] = [];
  let sum = 0;
  for (const [name, lambda] of Object.entries(mix)) {
    if (lambda === 0) continue;
    terms.push({ row: adapterRow(name), weight: lambda });
    sum += lambda;
  }
  if (reference !== null && (sum !== 1 || terms.length === 0)) terms.unshift({ row: reference, weight: 1 - sum });
  if (terms.length === 0) throw new Error('a mix needs a reference row or an adapter');
  return terms;
}

/**
 * The mix_rows / mix_weights feeds [B, J] of a multi-adapter graph: each output row's terms (or its λ pair), padded
 * to the most terms of any row with weight 0 on the row's last term.
 */
export function mixFeeds(outputs: MixedRow[]): Record<string, HostTensor> {
  const B = outputs.length;
  const terms = outputs.map(
    (o) =>
      o.terms ?? [
        { row: o.aligned, weight: o.lambda },
        { row: o.reference, weight: 1 - o.lambda },
      ],
  );
  const J = Math.max(1, ...terms.map((t) => t.length));
  const rows = new BigInt64Array(B * J);
  const weights = new Float32Array(B * J);
  terms.forEach((t, b) => {
    for (let j = 0; j < J; j++) {
      rows[b * J + j] = BigInt(t[Math.min(j, t.length - 1)].row);
      weights[b * J + j] = j < t.length ? t[j].weight : 0;
    }
  });
  return {
    mix_rows: { type: 'int64', data: rows, dims: [B, J] },
    mix_weights: { type: 'float32', data: weights, dims: [B, J] },
  };
}
