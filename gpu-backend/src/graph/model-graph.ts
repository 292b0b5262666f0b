/**
 * Dual-branch decoder graphs for the three serving modes (plus the naive InRa layout used as a benchmark baseline).
 *
 * Dimension legend (named dims in the ONNX file):
 *   R  branch rows in this step (one per sequence and branch it needs)   S  new tokens per row
 *   T  KV cache capacity        P  positions projected per row          B  output rows (sequence × λ)
 *   A  rows through the InRa adapter    D hidden   K KV heads   E head_dim   V vocab
 *
 * Every mode shares one I/O table (IO below). A branch row is one token stream through one branch; an output
 * row blends two branch rows with its own λ: logits[b] = λ[b]·z(aligned_row[b]) + (1 − λ[b])·z(reference_row[b]).
 * A sequence at λ = 0 or 1 has one branch row, and both indices point to it.
 */
import type { Checkpoint } from '../checkpoint/checkpoint.ts';
import type { ModelConfig } from '../checkpoint/config.ts';
import { DecoderBuilder, type AttentionInputs, type KvNames, type Residual } from './decoder.ts';
import { Graph, type Dim, type ElemType } from './ir.ts';
import { WeightSource, type FloatType } from './weights.ts';

/** How the graph is laid out. */
export type GraphMode = 'single' | 'inra' | 'fusion' | 'naive-inra';

/** What to build. */
export interface GraphSpec {
  mode: GraphMode;
  floatType: FloatType;
  /** largest total sequence length the graph serves (rotary table size, KV capacity) */
  maxContext: number;
  /** single, inra, naive-inra: the checkpoint (for inra its config says which layers are adapters) */
  model?: Checkpoint;
  /** fusion: the two checkpoints (same vocabulary) */
  aligned?: Checkpoint;
  reference?: Checkpoint;
}

/** One family of KV caches that share a row order (packed rows, one buffer per layer and K/V). */
export interface KvGroupInfo {
  name: string;
  layers: number;
  numKvHeads: number;
  headDim: number;
  pastKey: string[];
  pastValue: string[];
  presentKey: string[];
  presentValue: string[];
}

/**
 * How the step's branch-row axis R is made of KV groups:
 * - `rows`: R is the rows of group 0; in `inra`, `adapter_rows` lists which of them also pass the adapter (group 1).
 * - `split`: R is group 0's rows followed by group 1's rows (fusion, naive-inra: aligned then reference).
 */
export type RowLayout = 'rows' | 'split';

/** Everything the runtime needs to drive a built graph, saved next to it as JSON. */
export interface GraphManifest {
  mode: GraphMode;
  floatType: FloatType;
  maxContext: number;
  vocabSize: number;
  rowLayout: RowLayout;
  kvGroups: KvGroupInfo[];
  inputs: { name: string; type: ElemType; dims: Dim[]; doc: string }[];
  outputs: { name: string; type: ElemType; dims: Dim[]; doc: string }[];
}

/** The graph's inputs and outputs, in one table (KV caches are added per group, below). */
export const IO = {
  input_ids: { type: 'int64', dims: ['R', 'S'], doc: 'new tokens of each branch row (right-padded when rows differ in length)' },
  seqlens_k: { type: 'int32', dims: ['R'], doc: 'per branch row: its total length after this step, minus one' },
  total_sequence_length: { type: 'int32', dims: [], doc: 'the largest total length after this step' },
  positions: { type: 'int64', dims: ['R', 'P'], doc: 'indices into S of the positions to project to the vocabulary' },
  lambda: { type: 'float32', dims: ['B'], doc: 'λ of each output row' },
  aligned_row: { type: 'int64', dims: ['B'], doc: 'branch row giving the aligned term of each output row' },
  reference_row: { type: 'int64', dims: ['B'], doc: 'branch row giving the reference term of each output row' },
  adapter_rows: { type: 'int64', dims: ['A'], doc: 'inra only: the branch rows that pass the adapter, in adapter-cache order' },
  logits: { type: 'float32', dims: ['B', 'P', 'V'], doc: 'blended logits of each output row at each projected position' },
} as const satisfies Record<string, { type: ElemType; dims: Dim[]; doc: string }>;

/** A graph and the manifest describing how to drive it. */
export interface BuiltGraph {
  graph: Graph;
  manifest: GraphManifest;
}

/** Builds the graph for a spec. */
export function buildModelGraph(spec: GraphSpec): BuiltGraph {
  const g = new Graph(`realign-${spec.mode}`);
  const inputs: GraphManifest['inputs'] = [];
  const input = (key: keyof typeof IO): string => {
    const io = IO[key];
    inputs.push({ name: key, type: io.type, dims: [...io.dims], doc: io.doc });
    return g.input(key, io.type, [...io.dims], io.doc);
  };
  const ids = input('input_ids');
  const seqlensK = input('seqlens_k');
  const totalLength = input('total_sequence_length');
  const positions = input('positions');
  const lambda = input('lambda');
  const alignedRow = input('aligned_row');
  const referenceRow = input('reference_row');
  const ft = spec.floatType;
  const kvGroups: KvGroupInfo[] = [];
  const kvInputs = (group: string, cfg: ModelConfig, layers: number, rowDim: string): KvNames[] => {
    const prefix = group === 'layers' ? '' : `${group}.`;
    const info: KvGroupInfo = { name: group, layers, numKvHeads: cfg.numKvHeads, headDim: cfg.headDim, pastKey: [], pastValue: [], presentKey: [], presentValue: [] };
    const names: KvNames[] = [];
    for (let l = 0; l < layers; l++) {
      const dims = [rowDim, cfg.numKvHeads, 'T', cfg.headDim];
      const kv = {
        pastKey: `${prefix}past_key.${l}`,
        pastValue: `${prefix}past_value.${l}`,
        presentKey: `${prefix}present_key.${l}`,
        presentValue: `${prefix}present_value.${l}`,
      };
      g.input(kv.pastKey, ft, dims, `KV cache (keys) of ${group} layer ${l}`);
      g.input(kv.pastValue, ft, dims, `KV cache (values) of ${group} layer ${l}`);
      inputs.push({ name: kv.pastKey, type: ft, dims, doc: `past keys, ${group} layer ${l}` }, { name: kv.pastValue, type: ft, dims, doc: `past values, ${group} layer ${l}` });
      info.pastKey.push(kv.pastKey);
      info.pastValue.push(kv.pastValue);
      info.presentKey.push(kv.presentKey);
      info.presentValue.push(kv.presentValue);
      names.push(kv);
    }
    kvGroups.push(info);
    return names;
  };

  let logits: string; // [B, P, V] in the float type
  let rowLayout: RowLayout;
  let vocabSize: number;
  if (spec.mode === 'single' || spec.mode === 'inra') {
    const ckpt = need(spec.model, 'model');
    const cfg = ckpt.config;
    vocabSize = cfg.vocabSize;
    const adapters = spec.mode === 'inra' ? cfg.adapterLayers : 0;
    if (spec.mode === 'inra' && adapters === 0) throw new Error(`${ckpt.dir}: inra mode needs a checkpoint with adapter layers (expand it, or open it with --inra)`);
    const b = new DecoderBuilder(g, new WeightSource(g, ckpt, ft, ''), cfg);
    const rope = b.rotaryTables(spec.maxContext);
    const attn: AttentionInputs = { seqlensK, totalLength, ...rope };
    const layersKv = kvInputs('layers', cfg, cfg.numLayers - adapters, 'R');
    let x = b.embed(ids, '/model'); // [R, S, D]
    if (adapters > 0) x = adapterBlock(g, b, input('adapter_rows'), x, attn, kvInputs('adapter', cfg, adapters, 'A'), adapters);
    let stream: Residual = { residual: x, pending: null };
    for (let l = 0; l < layersKv.length; l++) stream = b.layer(adapters + l, `/model/layers.${l}`, stream, attn, layersKv[l]);
    const hidden = b.finalNorm(stream, '/model'); // [R, S, D]
    const atPositions = g.op1('GatherND', [hidden, g.op1('Unsqueeze', [positions, g.constant('int64', [-1])], {}, '/blend/positions/Unsqueeze')], { batch_dims: { i: 1 } }, '/blend/positions/GatherND'); // [R, P, D]
    const blended = blendRows(g, atPositions, lambda, alignedRow, referenceRow, ft, '/blend'); // [B, P, D]
    logits = b.lmHead(blended, '/model'); // [B, P, V]
    rowLayout = 'rows';
  } else {
    let branches: { name: 'aligned' | 'reference'; ckpt: Checkpoint; first: number }[];
    if (spec.mode === 'fusion') {
      const a = need(spec.aligned, 'aligned');
      const r = need(spec.reference, 'reference');
      if (a.config.vocabSize !== r.config.vocabSize) {
        throw new Error(`fusion needs one vocabulary: ${a.dir} has ${a.config.vocabSize} tokens, ${r.dir} has ${r.config.vocabSize}`);
      }
      branches = [
        { name: 'aligned', ckpt: a, first: 0 },
        { name: 'reference', ckpt: r, first: 0 },
      ];
    } else {
      const m = need(spec.model, 'model');
      if (m.config.adapterLayers === 0) throw new Error(`${m.dir}: naive-inra needs a checkpoint with adapter layers`);
      branches = [
        { name: 'aligned', ckpt: m, first: 0 },
        { name: 'reference', ckpt: m, first: m.config.adapterLayers },
      ];
    }
    vocabSize = branches[0].ckpt.config.vocabSize;
    const kv = branches.map((br) => kvInputs(br.name, br.ckpt.config, br.ckpt.config.numLayers - br.first, `R_${br.name}`));
    const alignedRows = g.op1('Gather', [g.op1('Shape', [kv[0][0].pastKey], {}, '/split/aligned/Shape'), g.scalarI64(0)], { axis: { i: 0 } }, '/split/aligned/Gather'); // [] rows of aligned
    const ranges: [string, string][] = [
      [g.constant('int64', [0]), g.op1('Unsqueeze', [alignedRows, g.constant('int64', [0])], {}, '/split/aligned/Unsqueeze')],
      [g.op1('Unsqueeze', [alignedRows, g.constant('int64', [0])], {}, '/split/reference/Unsqueeze'), g.constant('int64', [Number.MAX_SAFE_INTEGER])],
    ];
    // fusion of distinct checkpoints gets separate weight names; naive-inra shares one set of weights
    const shared = spec.mode === 'naive-inra' ? new WeightSource(g, branches[0].ckpt, ft, '') : null;
    const perBranch = branches.map((br, k) => {
      const [start, end] = ranges[k];
      const slice = (v: string, what: string) => g.op1('Slice', [v, start, end, g.constant('int64', [0])], {}, `/split/${br.name}/${what}/Slice`);
      const w = shared ?? new WeightSource(g, br.ckpt, ft, `${br.name}/`);
      return branchLogits(g, new DecoderBuilder(g, w, br.ckpt.config), br.name, br.first, {
        ids: slice(ids, 'input_ids'),
        seqlensK: slice(seqlensK, 'seqlens_k'),
        positions: slice(positions, 'positions'),
        totalLength,
        kv: kv[k],
        maxContext: spec.maxContext,
        floatType: ft,
      });
    });
    const all = g.op1('Concat', perBranch, { axis: { i: 0 } }, '/blend/logits/Concat'); // [R, P, V]
    logits = blendRows(g, all, lambda, alignedRow, referenceRow, ft, '/blend'); // [B, P, V]
    rowLayout = 'split';
  }
  if (ft === 'float16') logits = g.op1('Cast', [logits], { to: { i: 1 } }, '/logits/Cast');
  g.output(logits, 'logits', 'float32', [...IO.logits.dims], IO.logits.doc);
  const outputs: GraphManifest['outputs'] = [{ name: 'logits', type: 'float32', dims: [...IO.logits.dims], doc: IO.logits.doc }];
  for (const grp of kvGroups) {
    for (let l = 0; l < grp.layers; l++) {
      const dims = [grp.name === 'adapter' ? 'A' : grp.name === 'layers' ? 'R' : `R_${grp.name}`, grp.numKvHeads, 'T', grp.headDim];
      g.output(grp.presentKey[l], grp.presentKey[l], ft, dims, `updated keys, ${grp.name} layer ${l} (shares the past buffer)`);
      g.output(grp.presentValue[l], grp.presentValue[l], ft, dims, `updated values, ${grp.name} layer ${l}`);
      outputs.push({ name: grp.presentKey[l], type: ft, dims, doc: 'updated keys' }, { name: grp.presentValue[l], type: ft, dims, doc: 'updated values' });
    }
  }
  return { graph: g, manifest: { mode: spec.mode, floatType: ft, maxContext: spec.maxContext, vocabSize, rowLayout, kvGroups, inputs, outputs } };
}

function need<T>(v: T | undefined, what: string): T {
  if (!v) throw new Error(`graph spec is missing its ${what} checkpoint`);
  return v;
}

/**
 * InRa adapter: only the rows listed in `adapter_rows` pass the adapter layer(s); the others keep the embedding.
 * Wrapped in an If so that a step without aligned rows (every λ = 0) runs no adapter at all.
 *
 *   x [R,S,D] ─► Gather(adapter_rows) ─► adapter layers ─► ScatterND into x ─► x'
 *            └─────────────────────────── (A = 0) ───────────────────────────► x'
 */
function adapterBlock(g: Graph, b: DecoderBuilder, rows: string, x: string, attn: AttentionInputs, kv: KvNames[], adapters: number): string {
  const count = g.op1('Gather', [g.op1('Shape', [rows], {}, '/model/adapter/Shape'), g.scalarI64(0)], { axis: { i: 0 } }, '/model/adapter/count');
  const any = g.op1('Greater', [count, g.scalarI64(0)], {}, '/model/adapter/any');
  const then = new Graph('adapter_then');
  const xa = then.op1('Gather', [x, rows], { axis: { i: 0 } }, '/model/adapter/rows/Gather'); // [A, S, D]
  const seqA = then.op1('Gather', [attn.seqlensK, rows], { axis: { i: 0 } }, '/model/adapter/seqlens/Gather'); // [A]
  const tb = new DecoderBuilder(then, b.w, b.cfg);
  let stream: Residual = { residual: xa, pending: null };
  for (let l = 0; l < adapters; l++) stream = tb.layer(l, `/model/adapter.${l}`, stream, { ...attn, seqlensK: seqA }, { ...kv[l], presentKey: `${kv[l].presentKey}/then`, presentValue: `${kv[l].presentValue}/then` });
  const out = tb.materialize(stream, '/model/adapter');
  const idx = then.op1('Unsqueeze', [rows, then.constant('int64', [-1])], {}, '/model/adapter/rows/Unsqueeze'); // [A, 1]
  then.output(then.op1('ScatterND', [x, idx, out], {}, '/model/adapter/ScatterND'), '/model/adapter/x/then', b.w.floatType, ['R', 'S', b.cfg.hiddenSize]);
  const els = new Graph('adapter_else');
  els.output(els.op1('Identity', [x], {}, '/model/adapter/skip/x'), '/model/adapter/x/else', b.w.floatType, ['R', 'S', b.cfg.hiddenSize]);
  const kvDims = ['A', b.cfg.numKvHeads, 'T', b.cfg.headDim];
  for (let l = 0; l < adapters; l++) {
    for (const [past, present] of [
      [kv[l].pastKey, kv[l].presentKey],
      [kv[l].pastValue, kv[l].presentValue],
    ]) {
      then.output(`${present}/then`, `${present}/then`, b.w.floatType, kvDims);
      els.output(els.op1('Identity', [past], {}, `/model/adapter/skip/${present}`), `${present}/else`, b.w.floatType, kvDims);
    }
  }
  const outs = ['/model/adapter/x', ...kv.flatMap((k) => [k.presentKey, k.presentValue])];
  return g.op('If', [any], { then_branch: { g: then }, else_branch: { g: els } }, { name: '/model/adapter/If', outputs: outs })[0];
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
  const count = g.op1('Gather', [g.op1('Shape', [io.ids], {}, `${path}/Shape`), g.scalarI64(0)], { axis: { i: 0 } }, `${path}/count`);
  const any = g.op1('Greater', [count, g.scalarI64(0)], {}, `${path}/any`);
  const then = new Graph(`${name}_then`);
  const b = new DecoderBuilder(then, outer.w, cfg);
  const rope = b.rotaryTables(io.maxContext);
  const attn: AttentionInputs = { seqlensK: io.seqlensK, totalLength: io.totalLength, ...rope };
  let stream: Residual = { residual: b.embed(io.ids, path), pending: null };
  for (let l = 0; l < io.kv.length; l++) {
    const kv = io.kv[l];
    stream = b.layer(firstLayer + l, `${path}/layers.${l}`, stream, attn, { ...kv, presentKey: `${kv.presentKey}/then`, presentValue: `${kv.presentValue}/then` });
  }
  const hidden = b.finalNorm(stream, path); // [Rb, S, D]
  const idx = then.op1('Unsqueeze', [io.positions, then.constant('int64', [-1])], {}, `${path}/positions/Unsqueeze`);
  const atPositions = then.op1('GatherND', [hidden, idx], { batch_dims: { i: 1 } }, `${path}/positions/GatherND`); // [Rb, P, D]
  const V = cfg.vocabSize;
  then.output(b.lmHead(atPositions, path), `${path}/logits/then`, io.floatType, [`R_${name}`, 'P', V]);
  const els = new Graph(`${name}_else`);
  const p = els.op1('Gather', [els.op1('Shape', [io.positions], {}, `${path}/empty/Shape`), els.scalarI64(1)], { axis: { i: 0 } }, `${path}/empty/P`);
  const shape = els.op1('Concat', [els.constant('int64', [0]), els.op1('Unsqueeze', [p, els.constant('int64', [0])], {}, `${path}/empty/Unsqueeze`), els.constant('int64', [V])], { axis: { i: 0 } }, `${path}/empty/shape`);
  const zero = { t: { name: 'value', type: io.floatType, dims: [1], data: io.floatType === 'float32' ? new Uint8Array(4) : new Uint8Array(2), external: false } };
  els.output(els.op1('ConstantOfShape', [shape], { value: zero }, `${path}/empty/ConstantOfShape`), `${path}/logits/else`, io.floatType, [0, 'P', V]);
  const kvDims = [`R_${name}`, cfg.numKvHeads, 'T', cfg.headDim];
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
function blendRows(g: Graph, x: string, lambda: string, alignedRow: string, referenceRow: string, ft: FloatType, path: string): string {
  const a = g.op1('Gather', [x, alignedRow], { axis: { i: 0 } }, `${path}/aligned/Gather`); // [B, P, N]
  const r = g.op1('Gather', [x, referenceRow], { axis: { i: 0 } }, `${path}/reference/Gather`); // [B, P, N]
  let lam = g.op1('Unsqueeze', [lambda, g.constant('int64', [1, 2])], {}, `${path}/lambda/Unsqueeze`); // [B, 1, 1]
  if (ft === 'float16') lam = g.op1('Cast', [lam], { to: { i: 10 } }, `${path}/lambda/Cast`);
  const one = ft === 'float16' ? g.constant('float16', Uint16Array.of(0x3c00), []) : g.constant('float32', [1], []);
  const rest = g.op1('Sub', [one, lam], {}, `${path}/lambda/Sub`); // 1 − λ
  const wa = g.op1('Mul', [a, lam], {}, `${path}/aligned/Mul`);
  const wr = g.op1('Mul', [r, rest], {}, `${path}/reference/Mul`);
  return g.op1('Add', [wa, wr], {}, `${path}/Add`);
}
