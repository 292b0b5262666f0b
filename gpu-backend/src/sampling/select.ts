/**
 * Partial selection: the k largest finite entries of a vector in O(V log k), without sorting the vocabulary.
 * Order is by value, descending, with ties to the lower index — the same order everywhere in sampling.
 */

/** Whether index a ranks below index b (smaller value, or equal value and higher index). */
function worse(values: Float32Array, a: number, b: number): boolean {
  const va = values[a];
  const vb = values[b];
  return va < vb || (va === vb && a > b);
}

function siftDown(values: Float32Array, heap: Int32Array, size: number, at: number): void {
  while (true) {
    const left = 2 * at + 1;
    if (left >= size) return;
    const right = left + 1;
    const child = right < size && worse(values, heap[right], heap[left]) ? right : left;
    if (!worse(values, heap[child], heap[at])) return;
    const t = heap[at];
    heap[at] = heap[child];
    heap[child] = t;
    at = child;
  }
}

function siftUp(values: Float32Array, heap: Int32Array, at: number): void {
  while (at > 0) {
    const parent = (at - 1) >> 1;
    if (!worse(values, heap[at], heap[parent])) return;
    const t = heap[at];
    heap[at] = heap[parent];
    heap[parent] = t;
    at = parent;
  }
}

/**
 * Writes into `out[0..n)` the indices of the `k` largest finite values (NaN and ±∞ are skipped), best
 * first, and returns n = min(k, number of finite values). `out` must hold at least k entries.
 */
export function topKIndices(values: Float32Array, k: number, out: Int32Array): number {
  let size = 0;
  if (k <= 0) return 0;
  // `out` is a min-heap (worst at the root) of the best indices seen so far.
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v - v !== 0) continue; // NaN or ±∞
    if (size < k) {
      out[size] = i;
      siftUp(values, out, size++);
    } else if (v > values[out[0]]) {
      // Strictly greater: an equal value at a higher index than every kept one never ranks above them.
      out[0] = i;
      siftDown(values, out, size, 0);
    }
  }
  // Heap sort in place: repeatedly move the worst to the end, leaving best-first order.
  for (let end = size - 1; end > 0; end--) {
    const t = out[0];
    out[0] = out[end];
    out[end] = t;
    siftDown(values, out, end, 0);
  }
  return size;
}
