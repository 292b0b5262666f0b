/**
 * The shared-memory protocol between the engine thread and its draw thread (draw-pool.ts, draw-worker.ts). One
 * round draws n rows: the engine writes each row's processed logits into the slab and its numbers into `params`,
 * then publishes it (READY); both threads claim rows by compare-and-swap on CLAIM and write each token into
 * `results` by compare-and-swap over the round's pending tag (the engine thread may draw a row the draw thread holds
 * again; the first write stands), counting DONE. CLAIM carries the round's number in its upper bits, so a thread
 * still holding the last round's view cannot claim a row of the next one.
 */

/** Int32 slots of the control block. */
export const GEN = 0; // the round's number; the draw thread waits on it
export const COUNT = 1; // rows in the round
export const READY = 2; // rows published so far (their logits and numbers written)
export const CLAIM = 3; // (round & ROUND_MASK) << ROUND_SHIFT | next unclaimed row
export const DONE = 4; // rows the draw thread wrote (the engine thread waits on it)
export const VOCAB = 5; // the row length V
export const VERSION = 6; // the buffers' version: a new slab is sent on the port before a round that uses it
export const STOP = 7; // 1: the draw thread exits
export const ONLINE = 8; // draw threads waiting for rounds
export const CONTROL_SLOTS = 9;

export const ROUND_SHIFT = 16;
export const ROUND_MASK = 0x7fff;
export const ROW_MASK = 0xffff;
/** numbers per row in `params`: max, 1 / T, top_p, min_p, u */
export const PARAMS = 5;

/** The buffers a round reads and writes (sent to the draw thread whenever they are replaced). */
export interface DrawBuffers {
  version: number;
  /** rows × V processed logits */
  slab: SharedArrayBuffer;
  /** rows × PARAMS float64 */
  params: SharedArrayBuffer;
  /** rows int32 tokens (UNDECIDED: take the exact draw) */
  results: SharedArrayBuffer;
}

/**
 * A result slot's value while round `gen`'s row is not drawn yet: negative, below every answer drawBounded gives,
 * and different from the last 16,383 rounds' (a token is written only over its own round's tag).
 */
export function pendingTag(gen: number): number {
  return -(16 + (gen & 0x3fff));
}

/** CLAIM's value at the start of round `gen`. */
export function claimBase(gen: number): number {
  return (gen & ROUND_MASK) << ROUND_SHIFT;
}

/**
 * Claims the next row of round `gen` (COUNT rows): its index, or −1 when every row is claimed or the round is over
 * (CLAIM belongs to another round).
 */
export function claimRow(control: Int32Array, gen: number, count: number): number {
  const tag = gen & ROUND_MASK;
  for (;;) {
    const v = Atomics.load(control, CLAIM);
    if (v >>> ROUND_SHIFT !== tag) return -1;
    const row = v & ROW_MASK;
    if (row >= count) return -1;
    if (Atomics.compareExchange(control, CLAIM, v, v + 1) === v) return row;
  }
}
