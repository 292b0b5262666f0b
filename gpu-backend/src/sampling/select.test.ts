import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { topKIndices } from './select.ts';

/** The definition: finite entries sorted by value descending, ties to the lower index, first k. */
function reference(values: Float32Array, k: number): number[] {
  return Array.from(values.keys())
    .filter((i) => Number.isFinite(values[i]))
    .sort((a, b) => values[b] - values[a] || a - b)
    .slice(0, Math.max(0, k));
}

describe('topKIndices (partial selection)', () => {
  it('equals a full sort on vectors with ties, NaN and infinities (property)', () => {
    const value = fc.oneof(
      { weight: 6, arbitrary: fc.integer({ min: -5, max: 5 }).map((v) => v / 2) },
      { weight: 1, arbitrary: fc.constantFrom(Number.NaN, Infinity, -Infinity) },
    );
    fc.assert(
      fc.property(fc.array(value, { maxLength: 80 }), fc.integer({ min: -1, max: 90 }), (values, k) => {
        const v = Float32Array.from(values);
        const out = new Int32Array(Math.max(k, 0));
        const n = topKIndices(v, k, out);
        expect(Array.from(out.subarray(0, n))).toEqual(reference(v, k));
      }),
      { numRuns: 500, seed: 3 },
    );
  });
});
