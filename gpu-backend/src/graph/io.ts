/**
 * The I/O contract of realign's graphs. Dimension legend (named dims in the ONNX files):
 *   R  branch rows in this step (one per sequence and branch it needs)   S  new tokens per row
 *   T  KV cache capacity        P  positions projected per row          B  output rows (sequence × λ)
 *   A  rows through the InRa adapter    M  decode steps inside one run (decode-loop graphs)
 *   K  KV heads   E  head_dim   V  vocab
 *
 * A branch row is one token stream through one branch; an output row blends two branch rows with its own λ:
 *   logits[b] = λ[b]·z(aligned_row[b]) + (1 − λ[b])·z(reference_row[b]).
 * A sequence at λ = 0 or 1 has one branch row, and both indices point to it.
 *
 * An InRa checkpoint with N ≥ 2 named adapters (multi-adapter graphs) has one adapter KV group per adapter, an
 * `adapter_rows.<name>` input per adapter (the branch rows passing it, in its cache order) and, in place of
 * lambda/aligned_row/reference_row, a mix of J terms per output row:
 *   logits[b] = Σ_j mix_weights[b, j]·z(mix_rows[b, j])
 * which is z_ref + Σ_i λ_i·(z_i − z_ref) when the terms are the reference row with weight 1 − Σ λ_i and each
 * adapter's row with weight λ_i (J is the most terms any row of the step has; shorter rows pad with weight 0).
 */
import type { Checkpoint } from '../checkpoint/checkpoint.ts';
import type { ModelConfig } from '../checkpoint/config.ts';
import { attentionHeadSize } from './attention-heads.ts';
import type { Dim, ElemType } from './ir.ts';
import type { QuantSpec } from './quantize.ts';
import type { FloatType } from './weights.ts';

/** How the graph is laid out. */
export type GraphMode = 'single' | 'inra' | 'fusion' | 'naive-inra';

/** What to build. */
export interface GraphSpec {
  mode: GraphMode;
  floatType: FloatType;
  /** largest total sequence length the graph serves (rotary table size) */
  maxContext: number;
  /** int8/int4 weights (quantize.ts); absent: weights in `floatType` */
  quant?: QuantSpec;
  /**
   * step graph only: sampling decided in the graph after the blend (device-sampling.ts), over the last projected
   * position of each output row; its SAMPLING_IO inputs and outputs are added. Absent or false: the graph is as before.
   */
  deviceSampling?: boolean;
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
  /** head size as the cache stores it: the checkpoint's, or padded for GroupQueryAttention (attentionHeadSize) */
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

/** A graph input or output as listed in the manifest. */
export interface IoEntry {
  name: string;
  type: ElemType;
  dims: Dim[];
  doc: string;
}

/** Everything the runtime needs to drive a built graph, saved next to it as JSON. */
export interface GraphManifest {
  mode: GraphMode;
  floatType: FloatType;
  maxContext: number;
  vocabSize: number;
  rowLayout: RowLayout;
  kvGroups: KvGroupInfo[];
  inputs: IoEntry[];
  outputs: IoEntry[];
  /** decode-loop graphs: several greedy decode steps per run */
  decodeLoop?: boolean;
  /**
   * multi-adapter InRa graphs (N ≥ 2 adapters): the adapters in KV-group order (group 1 + i is adapter i) with the
   * name of each one's rows input; absent for every other graph (one-adapter InRa graphs keep adapter_rows and λ)
   */
  adapters?: { name: string; layers: number; rowsInput: string }[];
  /**
   * step graphs with the sampling block: its ranked candidates C (rows whose truncation reaches past them come out
   * −2, sampled on the host) and the top logprobs K it returns (sample_top_ids / sample_top_logprobs [B, K])
   */
  deviceSampling?: { candidates: number; topLogprobs: number };
}

/** The graph's inputs and outputs, in one table (KV caches are added per group by `kvGroupsFor`). */
export const IO = {
  input_ids: { type: 'int64', dims: ['R', 'S'], doc: 'new tokens of each branch row (right-padded when rows differ in length)' },
  seqlens_k: { type: 'int32', dims: ['R'], doc: 'per branch row: its total length after this step, minus one' },
  total_sequence_length: { type: 'int32', dims: [], doc: 'the largest total length after this step (in a prefill: S)' },
  positions: { type: 'int64', dims: ['R', 'P'], doc: 'indices into S of the positions to project to the vocabulary' },
  lambda: { type: 'float32', dims: ['B'], doc: 'λ of each output row' },
  aligned_row: { type: 'int64', dims: ['B'], doc: 'branch row giving the aligned term of each output row' },
  reference_row: { type: 'int64', dims: ['B'], doc: 'branch row giving the reference term of each output row' },
  adapter_rows: { type: 'int64', dims: ['A'], doc: 'inra only: the branch rows that pass the adapter, in adapter-cache order' },
  mix_rows: { type: 'int64', dims: ['B', 'J'], doc: 'multi-adapter inra only: the branch rows each output row mixes' },
  mix_weights: { type: 'float32', dims: ['B', 'J'], doc: 'multi-adapter inra only: the weight of each of those rows' },
  steps: { type: 'int64', dims: [], doc: 'decode-loop only: greedy decode steps to run (M)' },
  row_output: { type: 'int64', dims: ['R'], doc: 'decode-loop only: the output row whose argmax feeds each branch row' },
  logits: { type: 'float32', dims: ['B', 'P', 'V'], doc: 'blended logits of each output row at each projected position' },
  tokens: { type: 'int64', dims: ['M', 'B'], doc: 'decode-loop only: the greedy token of each output row at each step' },
} as const satisfies Record<string, { type: ElemType; dims: Dim[]; doc: string }>;

/** The KV groups of a spec, with their configs and row dimension names. */
export function kvGroupsFor(spec: GraphSpec): { info: KvGroupInfo; cfg: ModelConfig; rowDim: string }[] {
  const make = (name: string, cfg: ModelConfig, layers: number, rowDim: string) => {
    const prefix = name === 'layers' ? '' : `${name}.`;
    const names = (what: string) => Array.from({ length: layers }, (_, l) => `${prefix}${what}.${l}`);
    return {
      info: {
        name,
        layers,
        numKvHeads: cfg.numKvHeads,
        headDim: attentionHeadSize(cfg),
        pastKey: names('past_key'),
        pastValue: names('past_value'),
        presentKey: names('present_key'),
        presentValue: names('present_value'),
      },
      cfg,
      rowDim,
    };
  };
  if (spec.mode === 'single' || spec.mode === 'inra') {
    const cfg = need(spec.model, 'model').config;
    const adapters = spec.mode === 'inra' ? cfg.adapterLayers : 0;
    if (spec.mode === 'inra' && adapters === 0)
      throw new Error(`${spec.model!.dir}: inra mode needs a checkpoint with adapter layers (expand it, or open it with --inra)`);
    const groups = [make('layers', cfg, cfg.numLayers - adapters, 'R')];
    if (spec.mode === 'inra' && cfg.adapters.length > 1)
      for (const a of cfg.adapters) groups.push(make(`adapter.${a.name}`, cfg, a.layers, `A.${a.name}`));
    else if (adapters > 0) groups.push(make('adapter', cfg, adapters, 'A'));
    return groups;
  }
  const [a, r] = branchCheckpoints(spec);
  return [
    make('aligned', a.ckpt.config, a.ckpt.config.numLayers - a.first, 'R_aligned'),
    make('reference', r.ckpt.config, r.ckpt.config.numLayers - r.first, 'R_reference'),
  ];
}

/** Whether a spec builds a multi-adapter InRa graph (N ≥ 2 named adapters; see the header). */
export function multiAdapter(spec: GraphSpec): boolean {
  return spec.mode === 'inra' && (spec.model?.config.adapters.length ?? 0) > 1;
}

/** The rows input of adapter `name` in a multi-adapter graph. */
export function adapterRowsInput(name: string): string {
  return `adapter_rows.${name}`;
}

/** fusion and naive-inra: the two branches' checkpoints and the first layer each runs. */
export function branchCheckpoints(
  spec: GraphSpec,
): [{ name: 'aligned'; ckpt: Checkpoint; first: number }, { name: 'reference'; ckpt: Checkpoint; first: number }] {
  if (spec.mode === 'fusion') {
    const a = need(spec.aligned, 'aligned');
    const r = need(spec.reference, 'reference');
    if (a.config.vocabSize !== r.config.vocabSize) {
      throw new Error(
        `fusion needs one vocabulary: ${a.dir} has ${a.config.vocabSize} tokens, ${r.dir} has ${r.config.vocabSize}`,
      );
    }
    return [
      { name: 'aligned', ckpt: a, first: 0 },
      { name: 'reference', ckpt: r, first: 0 },
    ];
  }
  const m = need(spec.model, 'model');
  if (m.config.adapterLayers === 0) throw new Error(`${m.dir}: naive-inra needs a checkpoint with adapter layers`);
  if (m.config.adapters.length > 1)
    throw new Error(`${m.dir}: naive-inra runs one adapter; this checkpoint has ${m.config.adapters.length} (use inra)`);
  return [
    { name: 'aligned', ckpt: m, first: 0 },
    { name: 'reference', ckpt: m, first: m.config.adapterLayers },
  ];
}

/** The vocabulary size of a spec's output. */
export function specVocab(spec: GraphSpec): number {
  return (spec.model ?? spec.reference ?? spec.aligned)!.config.vocabSize;
}

function need<T>(v: T | undefined, what: string): T {
  if (!v) throw new Error(`graph spec is missing its ${what} checkpoint`);
  return v;
}
