/**
 * The two orders the device sampler draws in besides plain rank order (see device-sampling.ts): candidates put in
 * the host's tie order, and an inverse CDF in token-id order over the whole vocabulary.
 */
import type { Graph } from './ir.ts';

const INT64 = 7;
const DOUBLE = 11;

/** Block size of the two-level cumulative sum over the vocabulary: the power of two nearest √V. */
export function vocabBlock(vocab: number): number {
  return 2 ** Math.max(0, Math.round(Math.log2(Math.sqrt(vocab))));
}

/**
 * Candidates [B, C] sorted by value (descending) whose equal values may come in any id order — CUDA's radix TopK
 * does not break ties by index — put in the host's rank order: value descending, ties to the lower id. The key
 * run·V + id (run = 1, 2, … per distinct value, in order) is unique, so a second TopK over it cannot tie.
 *
 *   values ─► shift by one ─► ≠ ─► CumSum = run ─► run·V + id ─► TopK(smallest C) ─► GatherElements(values, ids)
 */
export function breakTies(
  g: Graph,
  values: string,
  ids: string,
  V: number,
  C: number,
  p: string,
): { values: string; ids: string } {
  const op = (type: string, inputs: string[], name: string, attrs: Parameters<Graph['op1']>[2] = {}) =>
    g.op1(type, inputs, attrs, `${p}/ties/${name}`);
  const axis1 = g.constant('int64', [1]);
  const previous = op(
    'Pad',
    [
      op('Slice', [values, g.constant('int64', [0]), g.constant('int64', [C - 1]), axis1], 'Slice'),
      g.constant('int64', [0, 1, 0, 0]),
      g.constant('float32', [NaN], []),
    ],
    'Pad',
  ); // [B, C]
  const start = op('Not', [op('Equal', [values, previous], 'Equal')], 'Not'); // [B, C]; NaN ≠ the first value
  const run = op('CumSum', [op('Cast', [start], 'start/Cast', { to: { i: DOUBLE } }), g.scalarI64(1)], 'CumSum'); // [B, C]
  const key = op(
    'Add',
    [op('Mul', [run, g.constant('float64', [V], [])], 'Mul'), op('Cast', [ids], 'ids/Cast', { to: { i: DOUBLE } })],
    'Add',
  ); // [B, C]
  const order = g.op(
    'TopK',
    [key, g.constant('int64', [C])],
    { axis: { i: -1 }, largest: { i: 0 }, sorted: { i: 1 } },
    { name: `${p}/ties/TopK`, outputs: 2 },
  )[1]; // [B, C]
  return {
    values: op('GatherElements', [values, order], 'values', { axis: { i: 1 } }),
    ids: op('GatherElements', [ids, order], 'ids', { axis: { i: 1 } }),
  };
}

/**
 * Inverse CDF in token-id order over weights [B, V] (zero outside `mask`): the first id whose running mass exceeds
 * u·total, else (rounding) the last id in the mask. Two levels — sums of blocks of ~√V ids, then one block — keep
 * every CumSum short (ORT's CUDA CumSum costs O(n²) per row).
 */
export function idOrderDraw(g: Graph, weights: string, mask: string, u: string, index: string, V: number, p: string): string {
  const op = (type: string, inputs: string[], name: string, attrs: Parameters<Graph['op1']>[2] = {}) =>
    g.op1(type, inputs, attrs, `${p}/${name}`);
  const axis1 = g.constant('int64', [1]);
  const bs = vocabBlock(V);
  const nb = Math.ceil(V / bs);
  const count = (b: string, name: string) =>
    op('ReduceSum', [op('Cast', [b], `${name}/Cast`, { to: { i: DOUBLE } }), axis1], `${name}/ReduceSum`, { keepdims: { i: 1 } });
  const padded =
    nb * bs === V
      ? weights
      : op('Pad', [weights, g.constant('int64', [0, 0, 0, nb * bs - V]), g.constant('float64', [0], [])], 'Pad');
  const blocks = op('Reshape', [padded, g.constant('int64', [-1, nb, bs])], 'Reshape'); // [B, nb, bs]
  const blockSum = op('ReduceSum', [blocks, g.constant('int64', [2])], 'blocks/ReduceSum', { keepdims: { i: 0 } }); // [B, nb]
  const upTo = op('CumSum', [blockSum, g.scalarI64(1)], 'blocks/CumSum'); // [B, nb]
  const before = op('CumSum', [blockSum, g.scalarI64(1)], 'blocks/before', { exclusive: { i: 1 } }); // [B, nb]
  const target = op('Mul', [u, op('Gather', [upTo, g.constant('int64', [nb - 1])], 'total', { axis: { i: 1 } })], 'target'); // [B, 1]
  const blockD = count(op('LessOrEqual', [upTo, target], 'blocks/LessOrEqual'), 'blocks/passed'); // [B, 1]
  const block = op('Cast', [op('Min', [blockD, g.constant('float64', [nb - 1], [])], 'block/Min')], 'block/Cast', {
    to: { i: INT64 },
  }); // [B, 1]
  const inBlock = op('GatherND', [blocks, block], 'block/GatherND', { batch_dims: { i: 1 } }); // [B, bs]
  const acc = op(
    'Add',
    [
      op('GatherElements', [before, block], 'block/before', { axis: { i: 1 } }),
      op('CumSum', [inBlock, g.scalarI64(1)], 'block/CumSum'),
    ],
    'acc',
  ); // [B, bs]
  const j = count(op('LessOrEqual', [acc, target], 'acc/LessOrEqual'), 'acc/passed'); // [B, 1]
  const crossed = op(
    'And',
    [
      op('Less', [blockD, g.constant('float64', [nb], [])], 'crossed/block'),
      op('Less', [j, g.constant('float64', [bs], [])], 'crossed/inside'),
    ],
    'crossed',
  );
  const id = op(
    'Cast',
    [
      op(
        'Add',
        [op('Mul', [op('Cast', [block], 'id/Cast', { to: { i: DOUBLE } }), g.constant('float64', [bs], [])], 'id/Mul'), j],
        'id/Add',
      ),
    ],
    'id/Cast64',
    { to: { i: INT64 } },
  );
  const last = op(
    'Cast',
    [
      op('ReduceMax', [op('Where', [mask, index, g.constant('float32', [-1], [])], 'last/Where'), axis1], 'last/ReduceMax', {
        keepdims: { i: 1 },
      }),
    ],
    'last/Cast',
    { to: { i: INT64 } },
  );
  return op('Where', [crossed, id, last], 'Where'); // [B, 1]
}
