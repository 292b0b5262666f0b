/**
 * The forward computation shared by every graph variant: token rows in, blended logits out, KV caches updated.
 * `g` receives the ops (a graph or a Loop body); `weights` is the top-level graph that holds the initializers.
 */
import { attentionHeadSize } from './attention-heads.ts';
import { DecoderBuilder, type AttentionInputs, type KvNames, type Residual } from './decoder.ts';
import { Graph } from './ir.ts';
import { branchCheckpoints, type GraphSpec } from './io.ts';
import { WeightSource, type FloatType } from './weights.ts';

/** Names of the values a forward pass reads, and the names its KV outputs get. */
export interface ForwardIo {
  ids: string; // int64 [R, S]
  seqlensK: string; // int32 [R]
  totalLength: string; // int32 []
  positions: string; // int64 [R, P]
  lambda: string; // float32 [B]
  alignedRow: string; // int64 [B]
  referenceRow: string; // int64 [B]
  adapterRows?: string; // int64 [A]
  /** multi-adapter inra (io.ts): per adapter, in the config's order, its rows input int64 [A_i] */
  adapterRowsBy?: string[];
  /** multi-adapter inra: the mix of each output row, in place of lambda/aligned_row/reference_row */
  mixRows?: string; // int64 [B, J]
  mixWeights?: string; // float32 [B, J]
  /** per KV group (in kvGroupsFor order), per layer */
  kv: KvNames[][];
  /**
   * the adapter block without its If (`capture` graphs, for CUDA graph capture): the adapter layers always run over
   * `adapter_rows`, which must then list at least one row (the engine pads captured decode steps; see
   * engine/captured-steps.ts)
   */
  unconditionalAdapters?: boolean;
  /** with unconditionalAdapters (one-adapter InRa): int64 [R], each branch row's adapter slot, −1 for none */
  adapterSlot?: string;
}

/** Emits one forward pass; returns the blended logits [B, P, V] in the graph's float type. */
export function emitForward(g: Graph, weights: Graph, spec: GraphSpec, io: ForwardIo): string {
  const ft = spec.floatType;
  if (spec.mode === 'single' || spec.mode === 'inra') {
    const ckpt = spec.model!;
    const cfg = ckpt.config;
    const adapters = spec.mode === 'inra' ? cfg.adapterLayers : 0;
    const b = new DecoderBuilder(g, new WeightSource(weights, ckpt, ft, '', spec.quant), cfg);
    const attn: AttentionInputs = { seqlensK: io.seqlensK, totalLength: io.totalLength, ...b.rotaryTables(spec.maxContext) };
    const [layersKv, adapterKv] = io.kv;
    let x = b.embed(io.ids, '/model'); // [R, S, D]
    if (io.adapterRowsBy) {
      // one block per named adapter, each over its own rows (disjoint), in place in the embedding
      cfg.adapters.forEach((a, i) => {
        x = adapterBlock(g, b, io.adapterRowsBy![i], x, attn, io.kv[1 + i], a.first, a.layers, `/model/adapter.${a.name}`);
      });
    } else if (adapters > 0 && io.unconditionalAdapters) {
      if (!io.adapterSlot) throw new Error('a graph with unconditional adapters needs the adapter_slot input');
      x = adapterLayers(b, io.adapterRows!, io.adapterSlot, x, attn, adapterKv, 0, adapters, '/model/adapter');
    } else if (adapters > 0) x = adapterBlock(g, b, io.adapterRows!, x, attn, adapterKv, 0, adapters, '/model/adapter');
    let stream: Residual = { residual: x, pending: null };
    for (let l = 0; l < layersKv.length; l++) stream = b.layer(adapters + l, `/model/layers.${l}`, stream, attn, layersKv[l]);
    const hidden = b.finalNorm(stream, '/model'); // [R, S, D]
    const idx = g.op1('Unsqueeze', [io.positions, g.constant('int64', [-1])], {}, '/blend/positions/Unsqueeze'); // [R, P, 1]
    const atPositions = g.op1('GatherND', [hidden, idx], { batch_dims: { i: 1 } }, '/blend/positions/GatherND'); // [R, P, D]
    // lm_head is linear without bias: blending the normed hidden states equals blending the logits
    const blended = io.mixRows
      ? mixRows(g, atPositions, io.mixRows, io.mixWeights!, ft, '/blend') // [B, P, D]
      : blendRows(g, atPositions, io, ft, '/blend'); // [B, P, D]
    return b.lmHead(blended, '/model'); // [B, P, V]
  }
  const branches = branchCheckpoints(spec);
  const alignedRows = g.op1(
    'Gather',
    [g.op1('Shape', [io.kv[0][0].pastKey], {}, '/split/aligned/Shape'), g.scalarI64(0)],
    { axis: { i: 0 } },
    '/split/aligned/Gather',
  ); // []
  const cut = g.op1('Unsqueeze', [alignedRows, g.constant('int64', [0])], {}, '/split/Unsqueeze'); // [1]
  const ranges: [string, string][] = [
    [g.constant('int64', [0]), cut],
    [cut, g.constant('int64', [Number.MAX_SAFE_INTEGER])],
  ];
  // fusion of distinct checkpoints gets separate weight names; naive-inra shares one set of weights
  const shared = spec.mode === 'naive-inra' ? new WeightSource(weights, branches[0].ckpt, ft, '', spec.quant) : null;
  const perBranch = branches.map((br, k) => {
    const [start, end] = ranges[k];
    const slice = (v: string, what: string) =>
      g.op1('Slice', [v, start, end, g.constant('int64', [0])], {}, `/split/${br.name}/${what}/Slice`);
    const w = shared ?? new WeightSource(weights, br.ckpt, ft, `${br.name}/`, spec.quant);
    return branchLogits(g, new DecoderBuilder(g, w, br.ckpt.config), br.name, br.first, {
      ids: slice(io.ids, 'input_ids'),
      seqlensK: slice(io.seqlensK, 'seqlens_k'),
      positions: slice(io.positions, 'positions'),
      totalLength: io.totalLength,
      kv: io.kv[k],
      maxContext: spec.maxContext,
      floatType: ft,
    });
  });
  const all = g.op1('Concat', perBranch, { axis: { i: 0 } }, '/blend/logits/Concat'); // [R, P, V]
  return blendRows(g, all, io, ft, '/blend'); // [B, P, V]
}

/**
 * InRa adapter: only the rows listed in `adapter_rows` pass the adapter layer(s) (checkpoint layers first.. of
 * `count`); the others keep the embedding. Wrapped in an If so that a step without rows for it (every λ = 0) runs
 * no adapter at all. A multi-adapter graph chains one such block per adapter (`path` names it).
 *
 *   x [R,S,D] ─► Gather(adapter_rows) ─► adapter layers ─► ScatterND into x ─► x'
 *            └─────────────────────────── (A = 0) ───────────────────────────► x'
 */
function adapterBlock(
  g: Graph,
  b: DecoderBuilder,
  rows: string,
  x: string,
  attn: AttentionInputs,
  kv: KvNames[],
  first: number,
  adapters: number,
  path: string,
): string {
  const count = g.op1(
    'Gather',
    [g.op1('Shape', [rows], {}, `${path}/Shape`), g.scalarI64(0)],
    { axis: { i: 0 } },
    `${path}/count`,
  );
  const any = g.op1('Greater', [count, g.scalarI64(0)], {}, `${path}/any`);
  const then = new Graph('adapter_then');
  const xa = then.op1('Gather', [x, rows], { axis: { i: 0 } }, `${path}/rows/Gather`); // [A, S, D]
  const seqA = then.op1('Gather', [attn.seqlensK, rows], { axis: { i: 0 } }, `${path}/seqlens/Gather`); // [A]
  const tb = new DecoderBuilder(then, b.w, b.cfg);
  let stream: Residual = { residual: xa, pending: null };
  for (let l = 0; l < adapters; l++)
    stream = tb.layer(
      first + l,
      `${path}.${l}`,
      stream,
      { ...attn, seqlensK: seqA },
      { ...kv[l], presentKey: `${kv[l].presentKey}/then`, presentValue: `${kv[l].presentValue}/then` },
    );
  const out = tb.materialize(stream, path);
  const idx = then.op1('Unsqueeze', [rows, then.constant('int64', [-1])], {}, `${path}/rows/Unsqueeze`); // [A, 1]
  then.output(then.op1('ScatterND', [x, idx, out], {}, `${path}/ScatterND`), `${path}/x/then`, b.w.floatType, [
    'R',
    'S',
    b.cfg.hiddenSize,
  ]);
  const els = new Graph('adapter_else');
  els.output(els.op1('Identity', [x], {}, `${path}/skip/x`), `${path}/x/else`, b.w.floatType, ['R', 'S', b.cfg.hiddenSize]);
  const kvDims = ['A', b.cfg.numKvHeads, 'T', attentionHeadSize(b.cfg)];
  for (let l = 0; l < adapters; l++) {
    for (const [past, present] of [
      [kv[l].pastKey, kv[l].presentKey],
      [kv[l].pastValue, kv[l].presentValue],
    ]) {
      then.output(`${present}/then`, `${present}/then`, b.w.floatType, kvDims);
      els.output(els.op1('Identity', [past], {}, `${path}/skip/${present}`), `${present}/else`, b.w.floatType, kvDims);
    }
  }
  const outs = [`${path}/x`, ...kv.flatMap((k) => [k.presentKey, k.presentValue])];
  return g.op('If', [any], { then_branch: { g: then }, else_branch: { g: els } }, { name: `${path}/If`, outputs: outs })[0];
}

/**
 * The adapter layers of `adapterBlock` without the If: the rows of `rows` (at least one) through the adapter layers;
 * each branch row then takes the output of its slot (`slotOfRow` [R], −1: keeps x) by a Gather and a Where rather
 * than a ScatterND, so that padded slots (pointing at any row, e.g. 0) are read by no row and cannot overwrite one
 * (ScatterND with a repeated index has no defined order). The KV presents are written under their final names.
 * Nothing is read on the host.
 */
function adapterLayers(
  b: DecoderBuilder,
  rows: string,
  slotOfRow: string,
  x: string,
  attn: AttentionInputs,
  kv: KvNames[],
  first: number,
  adapters: number,
  path: string,
): string {
  const g = b.g;
  const xa = g.op1('Gather', [x, rows], { axis: { i: 0 } }, `${path}/rows/Gather`); // [A, S, D]
  const seqA = g.op1('Gather', [attn.seqlensK, rows], { axis: { i: 0 } }, `${path}/seqlens/Gather`); // [A]
  let stream: Residual = { residual: xa, pending: null };
  for (let l = 0; l < adapters; l++) stream = b.layer(first + l, `${path}.${l}`, stream, { ...attn, seqlensK: seqA }, kv[l]);
  const out = b.materialize(stream, path); // [A, S, D]
  const zero = g.constant('int64', [0], []);
  const has = g.op1('GreaterOrEqual', [slotOfRow, zero], {}, `${path}/slot/has`); // [R]
  const picked = g.op1(
    'Gather',
    [out, g.op1('Max', [slotOfRow, zero], {}, `${path}/slot/Max`)],
    { axis: { i: 0 } },
    `${path}/slot/Gather`,
  ); // [R, S, D]
  const has3 = g.op1('Unsqueeze', [has, g.constant('int64', [1, 2])], {}, `${path}/slot/Unsqueeze`); // [R, 1, 1]
  return g.op1('Where', [has3, picked, x], {}, `${path}/slot/Where`);
}

interface BranchInputs {
  ids: string;
  seqlensK: string;
  positions: string;
  totalLength: string;
  kv: KvNames[];
  maxContext: number;
  floatType: FloatType;
}

/**
 * One whole model over its own rows (fusion and naive-inra): embedding → layers → norm → positions → lm_head,
 * inside an If so that a branch with no rows in this step costs nothing. Returns logits [R_branch, P, V].
 */
function branchLogits(g: Graph, outer: DecoderBuilder, name: string, firstLayer: number, io: BranchInputs): string {
  const cfg = outer.cfg;
  const path = `/${name}`;
  const count = g.op1(
    'Gather',
    [g.op1('Shape', [io.ids], {}, `${path}/Shape`), g.scalarI64(0)],
    { axis: { i: 0 } },
    `${path}/count`,
  );
  const any = g.op1('Greater', [count, g.scalarI64(0)], {}, `${path}/any`);
  const then = new Graph(`${name}_then`);
  const b = new DecoderBuilder(then, outer.w, cfg);
  const rope = b.rotaryTables(io.maxContext);
  const attn: AttentionInputs = { seqlensK: io.seqlensK, totalLength: io.totalLength, ...rope };
  let stream: Residual = { residual: b.embed(io.ids, path), pending: null };
  for (let l = 0; l < io.kv.length; l++) {
    const kv = io.kv[l];
    stream = b.layer(firstLayer + l, `${path}/layers.${l}`, stream, attn, {
      ...kv,
      presentKey: `${kv.presentKey}/then`,
      presentValue: `${kv.presentValue}/then`,
    });
  }
  const hidden = b.finalNorm(stream, path); // [Rb, S, D]
  const idx = then.op1('Unsqueeze', [io.positions, then.constant('int64', [-1])], {}, `${path}/positions/Unsqueeze`);
  const atPositions = then.op1('GatherND', [hidden, idx], { batch_dims: { i: 1 } }, `${path}/positions/GatherND`); // [Rb, P, D]
  const V = cfg.vocabSize;
  then.output(b.lmHead(atPositions, path), `${path}/logits/then`, io.floatType, [`R_${name}`, 'P', V]);
  const els = new Graph(`${name}_else`);
  const p = els.op1(
    'Gather',
    [els.op1('Shape', [io.positions], {}, `${path}/empty/Shape`), els.scalarI64(1)],
    { axis: { i: 0 } },
    `${path}/empty/P`,
  );
  const shape = els.op1(
    'Concat',
    [
      els.constant('int64', [0]),
      els.op1('Unsqueeze', [p, els.constant('int64', [0])], {}, `${path}/empty/Unsqueeze`),
      els.constant('int64', [V]),
    ],
    { axis: { i: 0 } },
    `${path}/empty/shape`,
  );
  const zero = {
    t: {
      name: 'value',
      type: io.floatType,
      dims: [1],
      data: io.floatType === 'float32' ? new Uint8Array(4) : new Uint8Array(2),
      external: false,
    },
  };
  els.output(
    els.op1('ConstantOfShape', [shape], { value: zero }, `${path}/empty/ConstantOfShape`),
    `${path}/logits/else`,
    io.floatType,
    [0, 'P', V],
  );
  const kvDims = [`R_${name}`, cfg.numKvHeads, 'T', attentionHeadSize(cfg)];
  for (const kv of io.kv) {
    for (const [past, present] of [
      [kv.pastKey, kv.presentKey],
      [kv.pastValue, kv.presentValue],
    ]) {
      then.output(`${present}/then`, `${present}/then`, io.floatType, kvDims);
      els.output(els.op1('Identity', [past], {}, `${path}/skip/${present}`), `${present}/else`, io.floatType, kvDims);
    }
  }
  const outs = [`${path}/logits`, ...io.kv.flatMap((k) => [k.presentKey, k.presentValue])];
  return g.op('If', [any], { then_branch: { g: then }, else_branch: { g: els } }, { name: `${path}/If`, outputs: outs })[0];
}

/**
 * Per output row: λ·x[aligned_row] + (1 − λ)·x[reference_row] over the leading axis of x [R, P, N] → [B, P, N].
 * Written as λ·a + (1 − λ)·r (not r + λ(a − r)) so that λ = 1 and λ = 0 return one branch bit for bit.
 */
function blendRows(
  g: Graph,
  x: string,
  io: Pick<ForwardIo, 'lambda' | 'alignedRow' | 'referenceRow'>,
  ft: FloatType,
  path: string,
): string {
  const a = g.op1('Gather', [x, io.alignedRow], { axis: { i: 0 } }, `${path}/aligned/Gather`); // [B, P, N]
  const r = g.op1('Gather', [x, io.referenceRow], { axis: { i: 0 } }, `${path}/reference/Gather`); // [B, P, N]
  let lam = g.op1('Unsqueeze', [io.lambda, g.constant('int64', [1, 2])], {}, `${path}/lambda/Unsqueeze`); // [B, 1, 1]
  if (ft === 'float16') lam = g.op1('Cast', [lam], { to: { i: 10 } }, `${path}/lambda/Cast`);
  const one = ft === 'float16' ? g.constant('float16', Uint16Array.of(0x3c00), []) : g.constant('float32', [1], []);
  const rest = g.op1('Sub', [one, lam], {}, `${path}/lambda/Sub`); // 1 − λ
  const wa = g.op1('Mul', [a, lam], {}, `${path}/aligned/Mul`);
  const wr = g.op1('Mul', [r, rest], {}, `${path}/reference/Mul`);
  return g.op1('Add', [wa, wr], {}, `${path}/Add`);
}

/**
 * Multi-adapter blend: per output row Σ_j w[b, j]·x[rows[b, j]] over the leading axis of x [R, P, N] → [B, P, N]
 * (weights 1 − Σ λ_i on the reference row and λ_i on adapter i's row give z_ref + Σ λ_i·(z_i − z_ref)).
 *
 *   x ─► Gather(mix_rows) [B,J,P,N] ─► Mul(mix_weights [B,J,1,1]) ─► ReduceSum over J ─► [B,P,N]
 */
function mixRows(g: Graph, x: string, rows: string, weights: string, ft: FloatType, path: string): string {
  const terms = g.op1('Gather', [x, rows], { axis: { i: 0 } }, `${path}/mix/Gather`); // [B, J, P, N]
  let w = g.op1('Unsqueeze', [weights, g.constant('int64', [2, 3])], {}, `${path}/mix/weights/Unsqueeze`); // [B, J, 1, 1]
  if (ft === 'float16') w = g.op1('Cast', [w], { to: { i: 10 } }, `${path}/mix/weights/Cast`);
  const weighted = g.op1('Mul', [terms, w], {}, `${path}/mix/Mul`);
  return g.op1('ReduceSum', [weighted, g.constant('int64', [1])], { keepdims: { i: 0 } }, `${path}/mix/ReduceSum`);
}
