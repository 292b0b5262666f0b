/**
 * Comparison f: the dual-branch InRa model of the r1-distill-qwen-1.5b shape on a CUDA GPU (float16 graphs), or on
 * the CPU for a dry run. Measures per-step decode time at batch 1, 8 and 32 for the fused step graph, the naive
 * layout and the decode-loop graph (M steps per run), prefill tokens/s, and the share of a step that is
 * host↔device copying of the KV cache (the same bytes through an identity graph). Checks the graph's logits
 * against Hugging Face transformers' when the Python side left them in --hf-logits.
 *
 *   node gpu-bench.mjs --inra <dir> --out <dir> [--device cuda|cpu] [--hf-logits <file.json>] [--batches 1,8,32]
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { openCheckpoint } from '../../gpu-backend/src/checkpoint/checkpoint.ts';
import { ensureGraph, type GraphVariant } from '../../gpu-backend/src/graph/build.ts';
import { Graph } from '../../gpu-backend/src/graph/ir.ts';
import type { GraphMode, GraphSpec } from '../../gpu-backend/src/graph/model-graph.ts';
import { encodeOnnxModel } from '../../gpu-backend/src/graph/onnx-writer.ts';
import { GraphRunner } from '../../gpu-backend/src/engine/graph-runner.ts';
import { RowAllocator, branchesFor, type RowHandle } from '../../gpu-backend/src/engine/rows.ts';
import { ModelSession, type Device, type HostTensor } from '../../gpu-backend/src/ort/session.ts';
import { median } from '../lib/stats.ts';

const { values } = parseArgs({
  options: {
    inra: { type: 'string' },
    out: { type: 'string' },
    device: { type: 'string', default: 'cuda' },
    'hf-logits': { type: 'string' },
    batches: { type: 'string', default: '1,8,32' },
    prompt: { type: 'string', default: '128' },
    steps: { type: 'string', default: '16' },
    'max-context': { type: 'string', default: '1024' },
  },
});
const device = values.device as Device;
const out = values.out!;
mkdirSync(out, { recursive: true });
const results: Record<string, unknown> = { device, started: new Date().toISOString() };
const save = () => writeFileSync(join(out, 'gpu-results.json'), JSON.stringify(results, null, 2));
const log = (msg: string) => {
  process.stderr.write(`[gpu-bench ${((performance.now() / 1000) | 0).toString().padStart(4)}s] ${msg}\n`);
};
const ckpt = openCheckpoint(values.inra!);
const floatType = device === 'cuda' ? 'float16' : 'float32';
const maxContext = Number(values['max-context']);
const cache = join(out, 'graphs');

async function open(mode: GraphMode, variant: GraphVariant = 'step') {
  const spec: GraphSpec = { mode, floatType, maxContext, model: ckpt };
  const t0 = performance.now();
  const files = ensureGraph(spec, cache, undefined, variant);
  const buildMs = performance.now() - t0;
  const t1 = performance.now();
  const session = await ModelSession.open(files.modelPath, { device });
  const loadMs = performance.now() - t1;
  log(`${mode}/${variant}: built in ${(buildMs / 1000).toFixed(1)} s, session in ${(loadMs / 1000).toFixed(1)} s`);
  return { session, manifest: files.manifest, buildMs, loadMs };
}

const sync = async <T>(f: () => Promise<T>): Promise<[T, number]> => {
  const t0 = performance.now();
  const r = await f();
  return [r, performance.now() - t0];
};

const fused = await open('inra');
const loop = await open('inra', 'decode-loop');
const naive = await open('naive-inra');
results.build = {
  fusedMs: fused.buildMs,
  loopMs: loop.buildMs,
  naiveMs: naive.buildMs,
  sessionMs: { fused: fused.loadMs, loop: loop.loadMs, naive: naive.loadMs },
};
save();

const V = fused.manifest.vocabSize;
const randomIds = (n: number, salt: number) =>
  Array.from({ length: n }, (_, i) => (i * 7919 + salt * 104729 + 17) % Math.min(V, 150000));

// ---- correctness against transformers (the Python side saved its logits for fixed ids)
if (values['hf-logits'] && existsSync(values['hf-logits'])) {
  const hf = JSON.parse(readFileSync(values['hf-logits'], 'utf8')) as {
    input_ids: number[];
    lambdas: number[];
    last_logits: number[][];
  };
  const runner = new GraphRunner(fused.session, fused.manifest);
  const rows = new RowAllocator(runner);
  const h = rows.add({ aligned: true, reference: true });
  const plan = rows.prefillPlan([{ handle: h, tokens: hf.input_ids, lambdas: hf.lambdas }]);
  const res = await runner.step(plan);
  const errs = hf.lambdas.map((lambda, k) => {
    const ours = res.logits.subarray(k * V, (k + 1) * V);
    const theirs = hf.last_logits[k];
    let num = 0;
    let den = 0;
    let agree = 0;
    for (let i = 0; i < V; i++) {
      num = Math.max(num, Math.abs(ours[i] - theirs[i]));
      den = Math.max(den, Math.abs(theirs[i]));
    }
    const top = (a: ArrayLike<number>) => [...Array(V).keys()].sort((x, y) => a[y] - a[x]).slice(0, 10);
    const ta = top(ours);
    const tb = new Set(top(theirs));
    for (const t of ta) if (tb.has(t)) agree++;
    return { lambda, relErr: num / den, top10Overlap: agree, argmaxEqual: ta[0] === top(theirs)[0] };
  });
  results.correctness = errs;
  log(`correctness vs transformers: ${JSON.stringify(errs)}`);
  rows.remove(h);
  save();
}

// ---- identity graph: what moving a KV cache of given shape to the device and back costs per run
async function copyCost(tensors: Record<string, HostTensor>): Promise<number> {
  const g = new Graph('kv-copy');
  for (const [name, t] of Object.entries(tensors)) {
    g.input(name, t.type === 'float16' ? 'float16' : 'float32', t.dims);
    g.output(g.op1('Identity', [name], {}, `/copy/${name}`), `${name}.out`, t.type === 'float16' ? 'float16' : 'float32', t.dims);
  }
  const path = join(out, 'kv-copy.onnx');
  writeFileSync(path, encodeOnnxModel(g));
  const s = await ModelSession.open(path, { device });
  const fetch = Object.keys(tensors).map((n) => `${n}.out`);
  const inPlace = Object.fromEntries(Object.entries(tensors).map(([n, t]) => [`${n}.out`, t]));
  const times: number[] = [];
  for (let i = 0; i < 7; i++) times.push((await sync(() => s.run(tensors, [], inPlace)))[1]);
  await s.release();
  void fetch;
  return median(times.slice(2));
}

const P = Number(values.prompt);
const M = Number(values.steps);
const decode: Record<string, unknown>[] = [];
results.decode = decode;
for (const B of values.batches!.split(',').map(Number)) {
  log(`batch ${B}`);
  const runFor = (g: typeof fused) => {
    const runner = new GraphRunner(g.session, g.manifest);
    return { runner, rows: new RowAllocator(runner) };
  };
  const f = runFor(fused);
  f.runner.attachLoop(loop.session, loop.manifest);
  const n = runFor(naive);
  const prefill = async (x: { runner: GraphRunner; rows: RowAllocator }) => {
    const handles = Array.from({ length: B }, () => x.rows.add(branchesFor('inra', [0.5])));
    const plan = x.rows.prefillPlan(handles.map((handle, i) => ({ handle, tokens: randomIds(P, i), lambdas: [0.5] })));
    const [, ms] = await sync(() => x.runner.step(plan));
    x.rows.commit(plan);
    return { handles, ms };
  };
  const fp = await prefill(f);
  const np = await prefill(n);
  const stepOnce = (x: { runner: GraphRunner; rows: RowAllocator }, handles: RowHandle[]) => async () => {
    const next = new Map(handles.map((h, i) => [h.id, { token: (i * 31 + h.length) % 1000, lambdas: [0.5] }]));
    const plan = x.rows.decodePlan(next);
    await x.runner.step(plan);
    x.rows.commit(plan);
  };
  const fusedSteps: number[] = [];
  const naiveSteps: number[] = [];
  for (let i = 0; i < 12; i++) {
    fusedSteps.push((await sync(stepOnce(f, fp.handles)))[1]);
    naiveSteps.push((await sync(stepOnce(n, np.handles)))[1]);
  }
  const loopPerStep: number[] = [];
  for (let i = 0; i < 3; i++) {
    const next = new Map(fp.handles.map((h, k) => [h.id, { token: (k * 31 + h.length) % 1000, lambdas: [0.5] }]));
    const plan = f.rows.decodePlan(next);
    const [, ms] = await sync(() => f.runner.loop(plan, M));
    plan.handles.forEach((h) => (h.length += M));
    loopPerStep.push(ms / M);
  }
  // what one step of the old path (onnxruntime-node's JS API) moved each way: every group's KV for the live rows
  // at the capacity; the binding keeps them on the device, and counts what a step does move (stepTransferBytes)
  const kvFeeds: Record<string, HostTensor> = {};
  f.runner.caches.forEach((c) => {
    const dims = [c.size, c.info.numKvHeads, c.capacity, c.info.headDim];
    const n = dims.reduce((a, b) => a * b, 1);
    for (const name of [...c.info.pastKey, ...c.info.pastValue])
      kvFeeds[name] = c.float16
        ? { type: 'float16', data: new Uint16Array(n), dims }
        : { type: 'float32', data: new Float32Array(n), dims };
  });
  const beforeStep = { ...f.runner.transferBytes };
  await stepOnce(f, fp.handles)();
  const stepTransferBytes =
    f.runner.transferBytes.toDevice + f.runner.transferBytes.fromDevice - beforeStep.toDevice - beforeStep.fromDevice;
  const kvBytes = Object.values(kvFeeds).reduce((s, t) => s + t.data.byteLength, 0);
  const copyMs = await copyCost(kvFeeds);
  const row = {
    batch: B,
    promptTokens: P,
    prefillMs: fp.ms,
    prefillTokensPerSecond: (B * P * 1000) / fp.ms,
    fusedStepMs: median(fusedSteps.slice(2)),
    naiveStepMs: median(naiveSteps.slice(2)),
    loopStepMs: median(loopPerStep),
    loopSteps: M,
    kvBytes,
    stepTransferBytes,
    kvCopyMs: copyMs,
    kvCopyShareOfStep: copyMs / median(fusedSteps.slice(2)),
  };
  decode.push(row);
  log(JSON.stringify(row));
  save();
  for (const h of fp.handles) f.rows.remove(h);
  for (const h of np.handles) n.rows.remove(h);
}

// ---- long prefill: tokens/s for one 1024-token prompt
{
  const runner = new GraphRunner(fused.session, fused.manifest);
  const rows = new RowAllocator(runner);
  const h = rows.add({ aligned: true, reference: true });
  const plan = rows.prefillPlan([{ handle: h, tokens: randomIds(Math.min(1000, maxContext - 8), 99), lambdas: [0.5] }]);
  await runner.step(plan); // warm
  rows.remove(h);
  const h2 = rows.add({ aligned: true, reference: true });
  const plan2 = rows.prefillPlan([{ handle: h2, tokens: randomIds(Math.min(1000, maxContext - 8), 98), lambdas: [0.5] }]);
  const [, ms] = await sync(() => runner.step(plan2));
  results.longPrefill = { tokens: plan2.tokens[0].length, ms, tokensPerSecond: (plan2.tokens[0].length * 1000) / ms };
  log(`long prefill: ${JSON.stringify(results.longPrefill)}`);
}
results.weightsBytes = ckpt.store.entries.size > 0 ? [...ckpt.store.entries.values()].reduce((s, e) => s + e.byteLength, 0) : 0;
results.finished = new Date().toISOString();
save();
log('done');
process.exit(0);
