/**
 * The two graph variants realign builds for every mode (see io.ts for the I/O contract):
 *
 * - the step graph: one forward pass (a prefill or one decode step), blended logits out, KV caches updated;
 * - the decode-loop graph: M greedy decode steps inside one run (one host round trip per M tokens; with the KV caches
 *   bound on the device through realign's binding, the per-run cost left to divide is the launch and sync overhead).
 *
 *      step graph                           decode-loop graph
 *   ids ─► forward ─► logits             ids ─► Loop(M) ┌──────────────────────────────────┐ ─► tokens [M, B]
 *   KV  ─┘        └─► KV'                KV  ─┘         │ forward ─► ArgMax ─► next ids    │ ─► KV'
 *                                                       └──────────────────────────────────┘
 */
import type { KvNames } from './decoder.ts';
import { addDeviceSampling } from './device-sampling.ts';
import { SAMPLING_IO } from './device-sampling-io.ts';
import { emitForward, type ForwardIo } from './forward.ts';
import { Graph, type ElemType } from './ir.ts';
import {
  adapterRowsInput,
  IO,
  kvGroupsFor,
  multiAdapter,
  specVocab,
  type GraphManifest,
  type GraphSpec,
  type IoEntry,
} from './io.ts';

export type { GraphManifest, GraphMode, GraphSpec, KvGroupInfo, RowLayout } from './io.ts';
export { IO } from './io.ts';

/** A graph and the manifest describing how to drive it. */
export interface BuiltGraph {
  graph: Graph;
  manifest: GraphManifest;
}

/**
 * Declares the inputs of the IO table (a multi-adapter graph: its mix in place of λ and the two row maps, and one rows
 * input per adapter in place of adapter_rows) and the KV caches; returns their names and the manifest's input list.
 */
function declareInputs(g: Graph, spec: GraphSpec, keys: (keyof typeof IO)[]) {
  const inputs: IoEntry[] = [];
  const names: Record<string, string> = {};
  const multi = multiAdapter(spec);
  if (multi) {
    const blend = keys.indexOf('lambda');
    keys = keys.filter((k) => !['lambda', 'aligned_row', 'reference_row', 'adapter_rows'].includes(k));
    keys.splice(blend, 0, 'mix_rows', 'mix_weights');
  }
  for (const key of keys) {
    const io = IO[key];
    inputs.push({ name: key, type: io.type, dims: [...io.dims], doc: io.doc });
    names[key] = g.input(key, io.type, [...io.dims], io.doc);
  }
  const adapterRowsBy: string[] = [];
  if (multi) {
    for (const a of spec.model!.config.adapters) {
      const name = adapterRowsInput(a.name);
      const doc = `the branch rows that pass adapter "${a.name}", in its cache order`;
      const dims = [`A.${a.name}`];
      inputs.push({ name, type: 'int64', dims, doc });
      adapterRowsBy.push(g.input(name, 'int64', dims, doc));
    }
  }
  const groups = kvGroupsFor(spec);
  for (const { info, rowDim } of groups) {
    const dims = [rowDim, info.numKvHeads, 'T', info.headDim];
    for (let l = 0; l < info.layers; l++) {
      for (const name of [info.pastKey[l], info.pastValue[l]]) {
        const doc = `KV cache of ${info.name} layer ${l} (${name.includes('key') ? 'keys' : 'values'})`;
        g.input(name, spec.floatType, dims, doc);
        inputs.push({ name, type: spec.floatType, dims, doc });
      }
    }
  }
  return { inputs, names, groups, adapterRowsBy: multi ? adapterRowsBy : undefined };
}

/** Declares each group's present outputs; returns their manifest entries. */
function declarePresents(
  g: Graph,
  spec: GraphSpec,
  groups: ReturnType<typeof kvGroupsFor>,
  from: (group: number, l: number, kind: 'key' | 'value') => string,
): IoEntry[] {
  const outputs: IoEntry[] = [];
  groups.forEach(({ info, rowDim }, gi) => {
    const dims = [rowDim, info.numKvHeads, 'T', info.headDim];
    for (let l = 0; l < info.layers; l++) {
      for (const [name, kind] of [
        [info.presentKey[l], 'key'],
        [info.presentValue[l], 'value'],
      ] as const) {
        const doc = `updated ${kind}s of ${info.name} layer ${l}`;
        g.output(from(gi, l, kind), name, spec.floatType, dims, doc);
        outputs.push({ name, type: spec.floatType, dims, doc });
      }
    }
  });
  return outputs;
}

const STEP_INPUTS: (keyof typeof IO)[] = [
  'input_ids',
  'seqlens_k',
  'total_sequence_length',
  'positions',
  'lambda',
  'aligned_row',
  'reference_row',
];

/**
 * Builds the step graph for a spec. `unconditionalAdapters`: the `capture` variant, with InRa's adapter block
 * without its If (whose condition, the adapter row count, is read on the host), for CUDA graph capture of decode
 * steps that always list an adapter row (engine/captured-steps.ts); otherwise the same graph.
 */
export function buildModelGraph(spec: GraphSpec, { unconditionalAdapters = false } = {}): BuiltGraph {
  const g = new Graph(`realign-${spec.mode}`);
  const keys = spec.mode === 'inra' ? [...STEP_INPUTS, 'adapter_rows' as const] : STEP_INPUTS;
  const { inputs, names, groups, adapterRowsBy } = declareInputs(g, spec, keys);
  let adapterSlot: string | undefined;
  if (unconditionalAdapters && spec.mode === 'inra' && !adapterRowsBy) {
    const doc = CAPTURE_ADAPTER_SLOT_DOC;
    inputs.push({ name: CAPTURE_ADAPTER_SLOT, type: 'int64', dims: ['R'], doc });
    adapterSlot = g.input(CAPTURE_ADAPTER_SLOT, 'int64', ['R'], doc);
  }
  const kv: KvNames[][] = groups.map(({ info }) =>
    info.pastKey.map((pastKey, l) => ({
      pastKey,
      pastValue: info.pastValue[l],
      presentKey: info.presentKey[l],
      presentValue: info.presentValue[l],
    })),
  );
  const io: ForwardIo = {
    ids: names.input_ids,
    seqlensK: names.seqlens_k,
    totalLength: names.total_sequence_length,
    positions: names.positions,
    lambda: names.lambda,
    alignedRow: names.aligned_row,
    referenceRow: names.reference_row,
    adapterRows: names.adapter_rows,
    adapterRowsBy,
    mixRows: names.mix_rows,
    mixWeights: names.mix_weights,
    kv,
    unconditionalAdapters,
    adapterSlot,
  };
  let logits = emitForward(g, g, spec, io);
  if (spec.floatType === 'float16') logits = g.op1('Cast', [logits], { to: { i: 1 } }, '/logits/Cast');
  g.output(logits, 'logits', 'float32', [...IO.logits.dims], IO.logits.doc);
  const outputs: IoEntry[] = [{ name: 'logits', type: 'float32', dims: [...IO.logits.dims], doc: IO.logits.doc }];
  // GroupQueryAttention wrote the presents under their final names already
  outputs.push(
    ...declarePresents(g, spec, groups, (gi, l, kind) => (kind === 'key' ? kv[gi][l].presentKey : kv[gi][l].presentValue)),
  );
  if (!spec.deviceSampling) return { graph: g, manifest: manifest(spec, groups, inputs, outputs) };
  const sampling = appendSampling(g, spec, logits, inputs, outputs);
  return { graph: g, manifest: { ...manifest(spec, groups, inputs, outputs), deviceSampling: sampling } };
}

/** The capture variant's input that says which adapter slot's output each branch row takes (forward.ts adapterLayers). */
export const CAPTURE_ADAPTER_SLOT = 'adapter_slot';
const CAPTURE_ADAPTER_SLOT_DOC =
  'capture graphs (inra): per branch row, the index into adapter_rows of its adapter slot, −1 for rows without one (padded adapter slots are read by no row)';

/** Ranked candidates of the step graph's sampling block (device-sampling.ts; capped at the vocabulary). */
export const SAMPLING_CANDIDATES = 1024;
/** Top logprobs the block returns per row: the API's largest top_logprobs. */
export const SAMPLING_TOP_LOGPROBS = 20;

/**
 * The sampling block after the blended logits [B, P, V], over each output row's last projected position (a decode
 * step and a generation's prefill project just that one); its inputs and outputs are added to the manifest lists.
 * logit_bias and penalties stay on the host (the engine samples rows that have them from the logits).
 */
function appendSampling(
  g: Graph,
  spec: GraphSpec,
  logits: string,
  inputs: IoEntry[],
  outputs: IoEntry[],
): { candidates: number; topLogprobs: number } {
  const V = specVocab(spec);
  const candidates = Math.min(SAMPLING_CANDIDATES, V);
  const topLogprobs = Math.min(SAMPLING_TOP_LOGPROBS, candidates);
  const last = g.op1('Gather', [logits, g.constant('int64', [-1], [])], { axis: { i: 1 } }, '/sample/last/Gather'); // [B, V]
  const before = { inputs: g.inputs.length, outputs: g.outputs.length };
  addDeviceSampling(g, last, { vocab: V, logitsType: 'float32', candidates, topLogprobs });
  const entry = (v: { name: string; type: ElemType; dims: (string | number)[] }): IoEntry => ({
    name: v.name,
    type: v.type,
    dims: [...v.dims],
    doc: SAMPLING_IO[v.name as keyof typeof SAMPLING_IO].doc,
  });
  inputs.push(...g.inputs.slice(before.inputs).map(entry));
  outputs.push(...g.outputs.slice(before.outputs).map(entry));
  return { candidates, topLogprobs };
}

/**
 * Builds the decode-loop graph: M greedy decode steps per run. Inputs are those of a decode step (S = 1, P = 1)
 * plus `steps` and `row_output`; outputs are the greedy tokens of every output row at every step and the KV
 * caches after the last step. Each output row's argmax becomes the next token of the branch rows that feed it.
 */
export function buildDecodeLoopGraph(spec: GraphSpec): BuiltGraph {
  const g = new Graph(`realign-${spec.mode}-decode-loop`);
  const keys: (keyof typeof IO)[] = [
    'input_ids',
    'seqlens_k',
    'total_sequence_length',
    'lambda',
    'aligned_row',
    'reference_row',
    'steps',
    'row_output',
  ];
  if (spec.mode === 'inra') keys.push('adapter_rows');
  const { inputs, names, groups, adapterRowsBy } = declareInputs(g, spec, keys);
  const body = new Graph('decode_step');
  body.input('/loop/iteration', 'int64', []);
  body.input('/loop/cond', 'bool', []);
  const carried: { outer: string; inner: string; type: ElemType; dims: (string | number)[] }[] = [
    { outer: names.input_ids, inner: '/loop/input_ids', type: 'int64', dims: ['R', 1] },
    { outer: names.seqlens_k, inner: '/loop/seqlens_k', type: 'int32', dims: ['R'] },
    { outer: names.total_sequence_length, inner: '/loop/total_sequence_length', type: 'int32', dims: [] },
  ];
  const kv: KvNames[][] = groups.map(({ info, rowDim }) =>
    info.pastKey.map((pastKey, l) => {
      const names = {
        pastKey: `/loop/${pastKey}`,
        pastValue: `/loop/${info.pastValue[l]}`,
        presentKey: `/loop/${info.presentKey[l]}`,
        presentValue: `/loop/${info.presentValue[l]}`,
      };
      const dims = [rowDim, info.numKvHeads, 'T', info.headDim];
      carried.push(
        { outer: pastKey, inner: names.pastKey, type: spec.floatType, dims },
        { outer: info.pastValue[l], inner: names.pastValue, type: spec.floatType, dims },
      );
      return names;
    }),
  );
  for (const c of carried) body.input(c.inner, c.type, c.dims);
  const ids = '/loop/input_ids';
  const positions = body.op1(
    'ConstantOfShape',
    [body.op1('Shape', [ids], {}, '/loop/positions/Shape')],
    { value: { t: { name: 'value', type: 'int64', dims: [1], data: new Uint8Array(8), external: false } } },
    '/loop/positions/zeros',
  );
  const io: ForwardIo = {
    ids,
    seqlensK: '/loop/seqlens_k',
    totalLength: '/loop/total_sequence_length',
    positions,
    lambda: names.lambda,
    alignedRow: names.aligned_row,
    referenceRow: names.reference_row,
    adapterRows: names.adapter_rows,
    adapterRowsBy,
    mixRows: names.mix_rows,
    mixWeights: names.mix_weights,
    kv,
  };
  let logits = emitForward(body, g, spec, io); // [B, 1, V]
  if (spec.floatType === 'float16') logits = body.op1('Cast', [logits], { to: { i: 1 } }, '/loop/logits/Cast');
  const best = finiteArgMax(body, logits); // [B, 1]
  const nextIds = body.op1('Gather', [best, names.row_output], { axis: { i: 0 } }, '/loop/next_ids/Gather'); // [R, 1]
  const one32 = body.constant('int32', [1], []);
  body.output(body.op1('Identity', ['/loop/cond'], {}, '/loop/cond/Identity'), '/loop/cond_out', 'bool', []);
  body.output(nextIds, '/loop/input_ids_out', 'int64', ['R', 1]);
  body.output(body.op1('Add', ['/loop/seqlens_k', one32], {}, '/loop/seqlens_k/Add'), '/loop/seqlens_k_out', 'int32', ['R']);
  body.output(
    body.op1('Add', ['/loop/total_sequence_length', one32], {}, '/loop/total/Add'),
    '/loop/total_sequence_length_out',
    'int32',
    [],
  );
  kv.forEach((layers, gi) =>
    layers.forEach((k) => {
      const dims = [groups[gi].rowDim, groups[gi].info.numKvHeads, 'T', groups[gi].info.headDim];
      body.output(k.presentKey, `${k.presentKey}_out`, spec.floatType, dims);
      body.output(k.presentValue, `${k.presentValue}_out`, spec.floatType, dims);
    }),
  );
  body.output(body.op1('Squeeze', [best, body.constant('int64', [1])], {}, '/loop/tokens/Squeeze'), '/loop/tokens', 'int64', [
    'B',
  ]);
  const loopOuts = [
    '/decode-loop/input_ids',
    '/decode-loop/seqlens_k',
    '/decode-loop/total',
    ...kv.flatMap((layers, gi) =>
      layers.flatMap((_, l) => [
        `/decode-loop/${groups[gi].info.presentKey[l]}`,
        `/decode-loop/${groups[gi].info.presentValue[l]}`,
      ]),
    ),
    '/decode-loop/tokens',
  ];
  g.op(
    'Loop',
    [names.steps, '', ...carried.map((c) => c.outer)],
    { body: { g: body } },
    { name: '/decode-loop/Loop', outputs: loopOuts },
  );
  g.output('/decode-loop/tokens', 'tokens', 'int64', [...IO.tokens.dims], IO.tokens.doc);
  const outputs: IoEntry[] = [{ name: 'tokens', type: 'int64', dims: [...IO.tokens.dims], doc: IO.tokens.doc }];
  outputs.push(
    ...declarePresents(
      g,
      spec,
      groups,
      (gi, l, kind) => `/decode-loop/${kind === 'key' ? groups[gi].info.presentKey[l] : groups[gi].info.presentValue[l]}`,
    ),
  );
  return { graph: g, manifest: { ...manifest(spec, groups, inputs, outputs), decodeLoop: true } };
}

/**
 * Greedy choice over float32 logits [B, 1, V] that, like the host's sampler, never picks a NaN or ±∞ logit; a row
 * with no finite logit gets token −1, which the scheduler reports as a non_finite_logits error. The chosen logit is
 * read back and tested rather than a row maximum taken (CUDA's ReduceMax of an all −∞ row did not come out −∞).
 *
 *   logits ─► IsNaN ─┐
 *         ─► IsInf ─┴► Or ─► Where(·, −∞, logits) ─► ArgMax ─► GatherElements ─► IsInf ─► Where(·, −1, argmax) ─► [B, 1]
 */
function finiteArgMax(body: Graph, logits: string): string {
  const bad = body.op1(
    'Or',
    [body.op1('IsNaN', [logits], {}, '/loop/finite/IsNaN'), body.op1('IsInf', [logits], {}, '/loop/finite/IsInf')],
    {},
    '/loop/finite/Or',
  ); // [B, 1, V]
  const masked = body.op1('Where', [bad, body.constant('float32', [-Infinity], []), logits], {}, '/loop/finite/Where'); // [B, 1, V]
  const arg = body.op1('ArgMax', [masked], { axis: { i: -1 }, keepdims: { i: 1 } }, '/loop/ArgMax'); // [B, 1, 1]
  const chosen = body.op1('GatherElements', [masked, arg], { axis: { i: -1 } }, '/loop/finite/GatherElements'); // [B, 1, 1]
  const none = body.op1('IsInf', [chosen], {}, '/loop/finite/none'); // [B, 1, 1]
  const best = body.op1('Where', [none, body.constant('int64', [-1], []), arg], {}, '/loop/finite/best'); // [B, 1, 1]
  return body.op1('Squeeze', [best, body.constant('int64', [-1])], {}, '/loop/finite/Squeeze'); // [B, 1]
}

function manifest(spec: GraphSpec, groups: ReturnType<typeof kvGroupsFor>, inputs: IoEntry[], outputs: IoEntry[]): GraphManifest {
  const adapters = multiAdapter(spec)
    ? {
        adapters: spec.model!.config.adapters.map((a) => ({
          name: a.name,
          layers: a.layers,
          rowsInput: adapterRowsInput(a.name),
        })),
      }
    : {};
  return {
    ...adapters,
    mode: spec.mode,
    floatType: spec.floatType,
    maxContext: spec.maxContext,
    vocabSize: specVocab(spec),
    rowLayout: spec.mode === 'single' || spec.mode === 'inra' ? 'rows' : 'split',
    kvGroups: groups.map((x) => x.info),
    inputs,
    outputs,
  };
}
