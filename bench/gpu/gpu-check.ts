/**
 * The node side of the one-shot GPU check (bench/gpu/gpu-check.sh runs each subcommand as its own stage):
 *
 *   models  --dir D [--preset r1-distill-qwen-1.5b] [--dtype F16]   D/base (init-model, seeded) and D/inra (expanded,
 *                                                                   adapter perturbed as the benchmarks do)
 *   ref-logits --dir D --out F                                      realign's float64 reference forward in the format
 *                                                                   hf_check.py writes (dry runs without transformers)
 *   logits  --dir D --out F [--device cuda]                         the engine's graph (float16 on CUDA): the same
 *                                                                   ids' last logits per λ
 *   compare --ours OURS.json --ref REF.json --out F                  relative error and argmax per λ
 *   engine  --dir D --out F [--device cuda] [--batches 1,32,64]     throughput through the engine (worker thread),
 *                                                                   mixed greedy and sampled rows, λ = 0.5
 *   report  --results R                                             R/results.md and R/summary.json from the stages
 *
 * Every subcommand writes its JSON as soon as it has something, so a stage cut short by its time budget still leaves
 * what it measured.
 */
import { copyFileSync, existsSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { parseModelConfig } from '../../gpu-backend/src/checkpoint/config.ts';
import { float32ToBytes } from '../../gpu-backend/src/checkpoint/dtype.ts';
import { expectedTensors } from '../../gpu-backend/src/checkpoint/names.ts';
import { PRESETS } from '../../gpu-backend/src/checkpoint/presets.ts';
import { randomNormal } from '../../gpu-backend/src/checkpoint/random.ts';
import { hfConfig } from '../../gpu-backend/src/checkpoint/synthetic.ts';
import { writeFolderAtomically, writeWeights } from '../../gpu-backend/src/checkpoint/writer.ts';
import { copyBundledTokenizer, writeTinyTokenizer } from '../../gpu-backend/src/text/tiny-tokenizer.ts';
import { TextTokenizer } from '../../gpu-backend/src/text/tokenizer.ts';
import { openCheckpoint } from '../../gpu-backend/src/checkpoint/checkpoint.ts';
import { syntheticInra } from '../../gpu-backend/src/checkpoint/synthetic.ts';
import type { DType } from '../../gpu-backend/src/checkpoint/dtype.ts';
import { Engine } from '../../gpu-backend/src/engine/engine.ts';
import { loadModel } from '../../gpu-backend/src/engine/model-loader.ts';
import type { EngineStats } from '../../gpu-backend/src/engine/protocol.ts';
import { RowAllocator } from '../../gpu-backend/src/engine/rows.ts';
import { ReferenceModel, blend } from '../../gpu-backend/src/reference/forward.ts';
import { samplingParams } from '../../gpu-backend/src/sampling/params.ts';

/** What both sides compute logits for: fixed ids (below every vocabulary the check uses) and the λ rows. */
export const CHECK_LAMBDAS = [0, 0.5, 1];
const checkIds = (vocab: number) => Array.from({ length: 32 }, (_, i) => (i * 7919 + 17) % Math.min(vocab, 150000));

/** The targets of issue 14, printed beside each number. */
export const TARGETS = {
  batch1StepMs: 2.5,
  batch32TokensPerSecond: 8000,
  prefillBatch32TokensPerSecond: 30000,
  relErr: 5e-3,
  /** at batch 32, no request asking for logprobs */
  hostDeviceBytesPerStep: 64 * 1024,
};

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    dir: { type: 'string' },
    out: { type: 'string' },
    ref: { type: 'string' },
    ours: { type: 'string' },
    'decode-loop-steps': { type: 'string' },
    results: { type: 'string' },
    preset: { type: 'string', default: 'r1-distill-qwen-1.5b' },
    dtype: { type: 'string', default: 'F16' },
    device: { type: 'string', default: 'cuda' },
    batches: { type: 'string', default: '1,32,64' },
    prompt: { type: 'string', default: '128' },
    tokens: { type: 'string', default: '64' },
    'max-context': { type: 'string', default: '1024' },
    cache: { type: 'string' },
  },
});
const device = values.device as 'cpu' | 'cuda';
const maxContext = Number(values['max-context']);
const log = (msg: string) => process.stderr.write(`[gpu-check ${((performance.now() / 1000) | 0).toString().padStart(4)}s] ${msg}\n`);
const save = (file: string, obj: unknown) => writeFileSync(file, `${JSON.stringify(obj, null, 2)}\n`);
const need = (name: string, v: string | undefined): string => {
  if (v === undefined) throw new Error(`--${name} is required`);
  return v;
};
const graphCache = () => values.cache ?? join(need('dir', values.dir), 'graphs');

/** One tensor of writeRandomCheckpoint's rule, drawn in a worker thread. */
interface DrawJob {
  name: string;
  count: number;
  mean: number;
  std: number;
}

/**
 * `realign init-model DIR --preset P --seed S --dtype T`, with the tensors drawn in parallel worker threads:
 * the same rule (writeRandomCheckpoint: norm weights 1 ± 0.1, the rest N(0, σ²), σ = min(0.08, 1/√hidden)), the same
 * per-tensor streams (randomNormal(seed, name)), the same tokenizer and config files, so the folder is byte for byte
 * what init-model writes (the dry-run test checks that); one thread would take minutes at 1.5B parameters.
 */
async function initModelParallel(out: string, preset: string, seed: number, dtype: DType): Promise<void> {
  const p = PRESETS[preset];
  if (!p) throw new Error(`unknown preset ${preset}`);
  const arch = p.architecture ?? 'qwen2';
  const tmp = join(out, '..', `.tokenizer-${process.pid}`);
  if (p.tokenizer === 'tiny') writeTinyTokenizer(tmp, { vocabSize: p.vocabSize });
  else copyBundledTokenizer(p.tokenizer, tmp);
  const files = { json: join(tmp, 'tokenizer.json'), config: join(tmp, 'tokenizer_config.json') };
  const tok = TextTokenizer.load(files.json, files.config);
  const config = hfConfig(arch, p, dtype, { bos: tok.bosTokenId, eos: [...tok.eosTokenIds] });
  const cfg = parseModelConfig(config, 'config.json');
  const std = Math.min(0.08, 1 / Math.sqrt(cfg.hiddenSize));
  const tensors = expectedTensors(cfg);
  const jobs: DrawJob[] = tensors.map((t) => {
    const isNorm = t.name.endsWith('norm.weight');
    return { name: t.name, count: t.shape.reduce((a, b) => a * b, 1), mean: isNorm ? 1 : 0, std: isNorm ? 0.1 : std };
  });
  // largest first onto the least loaded thread
  const threads = Math.max(1, Math.min(availableParallelism(), 16, jobs.length));
  const queues: DrawJob[][] = Array.from({ length: threads }, () => []);
  const load = new Array<number>(threads).fill(0);
  for (const j of [...jobs].sort((a, b) => b.count - a.count)) {
    const k = load.indexOf(Math.min(...load));
    queues[k].push(j);
    load[k] += j.count;
  }
  const drawn = new Map<string, Uint8Array>();
  const entry = import.meta.url.endsWith('.ts') ? new URL('./gpu-check-bootstrap.mjs', import.meta.url) : new URL(import.meta.url);
  const t0 = performance.now();
  await Promise.all(
    queues.map(
      (queue) =>
        new Promise<void>((resolve, reject) => {
          const w = new Worker(entry, { workerData: { draw: queue, seed, dtype } });
          w.on('message', (m: { name: string; bytes: Uint8Array }) => drawn.set(m.name, m.bytes));
          w.once('error', reject);
          w.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`draw thread exited with ${code}`))));
        }),
    ),
  );
  log(`drew ${jobs.length} tensors on ${threads} threads in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  writeFolderAtomically(out, (dir) => {
    copyFileSync(files.json, join(dir, 'tokenizer.json'));
    copyFileSync(files.config, join(dir, 'tokenizer_config.json'));
    writeFileSync(join(dir, 'generation_config.json'), JSON.stringify({ bos_token_id: config.bos_token_id, eos_token_id: config.eos_token_id }, null, 2));
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2));
    writeWeights(
      dir,
      tensors.map((t) => ({ name: t.name, dtype, shape: t.shape, bytes: () => drawn.get(t.name)! })),
    );
  });
  rmSync(tmp, { recursive: true, force: true });
}

if (!isMainThread && (workerData as { draw?: DrawJob[] }).draw) {
  const { draw, seed, dtype } = workerData as { draw: DrawJob[]; seed: number; dtype: DType };
  for (const j of draw) {
    const bytes = float32ToBytes(randomNormal(seed, j.name, j.count, j.mean, j.std), dtype);
    parentPort!.postMessage({ name: j.name, bytes }, [bytes.buffer as ArrayBuffer]);
  }
}

async function models(): Promise<void> {
  const dir = need('dir', values.dir);
  const out = need('out', values.out);
  const res: Record<string, unknown> = { preset: values.preset, dtype: values.dtype };
  const base = join(dir, 'base');
  const inra = join(dir, 'inra');
  let t = performance.now();
  if (!existsSync(join(base, 'config.json'))) {
    await initModelParallel(base, values.preset!, 1, values.dtype as DType);
    res.baseMs = performance.now() - t;
  } else res.baseReused = true;
  log(`base ready in ${dir}`);
  t = performance.now();
  // identity expansion, then the adapter perturbed by N(0, 0.02²) as bench/lib/models.ts does: the blend is non-trivial
  if (!existsSync(join(inra, 'config.json'))) {
    syntheticInra(base, inra, 7, 0.02);
    res.inraMs = performance.now() - t;
  } else res.inraReused = true;
  const bytes = (d: string) => readdirSync(d).filter((f) => f.endsWith('.safetensors')).reduce((s, f) => s + statSync(join(d, f)).size, 0);
  const cfg = JSON.parse(readFileSync(join(inra, 'config.json'), 'utf8')) as Record<string, unknown>;
  Object.assign(res, { base, inra, baseBytes: bytes(base), inraBytes: bytes(inra), inraLayers: cfg.num_hidden_layers, vocabSize: cfg.vocab_size });
  save(out, res);
  log(`models: ${JSON.stringify(res)}`);
}

/** The float64 reference forward standing in for transformers when a dry run has no torch. */
function refLogits(): void {
  const dir = need('dir', values.dir);
  const inra = openCheckpoint(join(dir, 'inra'));
  const ids = checkIds(inra.config.vocabSize);
  const last = (z: Float64Array) => z.subarray(z.length - inra.config.vocabSize);
  const za = last(new ReferenceModel(inra).forward(ids).logits);
  const zr = last(new ReferenceModel(openCheckpoint(join(dir, 'base'))).forward(ids).logits);
  const rows = CHECK_LAMBDAS.map((l) => Array.from(blend(za, zr, l)));
  save(need('out', values.out), { source: 'realign float64 reference forward (dry run: no transformers here)', input_ids: ids, lambdas: CHECK_LAMBDAS, last_logits: rows });
}

/** The engine's own graph (loadModel: same spec and cache as the engine stage): the check ids' last logits per λ. */
async function logits(): Promise<void> {
  const dir = need('dir', values.dir);
  const out = need('out', values.out);
  const inra = openCheckpoint(join(dir, 'inra'));
  const ids = checkIds(inra.config.vocabSize);
  const res: Record<string, unknown> = { device, input_ids: ids, lambdas: CHECK_LAMBDAS };
  const t0 = performance.now();
  const model = await loadModel({ mode: 'inra', model: join(dir, 'inra') }, { device, maxContext, graphCache: graphCache() });
  Object.assign(res, { loadMs: performance.now() - t0, graphBuildMs: model.buildMs, sessionDevice: model.device });
  const V = model.vocabSize;
  const rows = new RowAllocator(model.runner);
  const h = rows.add({ aligned: true, reference: true });
  const step = await model.runner.step(rows.prefillPlan([{ handle: h, tokens: ids, lambdas: CHECK_LAMBDAS }]));
  res.last_logits = CHECK_LAMBDAS.map((_, k) => Array.from(step.logits.subarray(k * V, (k + 1) * V)));
  rows.remove(h);
  await model.runner.release();
  save(out, res);
  log(`logits of ${ids.length} ids at λ ${CHECK_LAMBDAS.join(', ')} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

/** Ours against the reference: max |ours − theirs| / max |theirs| and the argmax, per λ. */
function compare(): void {
  type Logits = { source?: string; device?: string; input_ids: number[]; lambdas: number[]; last_logits: number[][] };
  const ours = JSON.parse(readFileSync(need('ours', values.ours), 'utf8')) as Logits;
  const ref = JSON.parse(readFileSync(need('ref', values.ref), 'utf8')) as Logits;
  if (JSON.stringify(ours.input_ids) !== JSON.stringify(ref.input_ids) || JSON.stringify(ours.lambdas) !== JSON.stringify(ref.lambdas)) {
    throw new Error('the two sides computed logits for different ids or λ');
  }
  const argmax = (a: number[]) => a.reduce((best, v, i) => (v > a[best] ? i : best), 0);
  const rows = ref.lambdas.map((lambda, k) => {
    const a = ours.last_logits[k];
    const b = ref.last_logits[k];
    if (a.length !== b.length) throw new Error(`vocabulary sizes differ: ${a.length} against ${b.length}`);
    let num = 0;
    let den = 0;
    for (let i = 0; i < b.length; i++) {
      num = Math.max(num, Math.abs(a[i] - b[i]));
      den = Math.max(den, Math.abs(b[i]));
    }
    const relErr = num / den;
    const argmaxEqual = argmax(a) === argmax(b);
    return { lambda, relErr, argmaxEqual, ours: argmax(a), theirs: argmax(b), pass: relErr <= TARGETS.relErr && argmaxEqual };
  });
  const res = { reference: ref.source ?? 'transformers float32', device: ours.device, rows };
  save(need('out', values.out), res);
  log(`compare: ${JSON.stringify(rows)}`);
}

const bytesOf = (s: EngineStats) => s.hostDeviceBytes.toDevice + s.hostDeviceBytes.fromDevice;

/** Throughput through the engine: B concurrent sequences, even rows greedy and odd rows sampled, λ = 0.5. */
async function engine(): Promise<void> {
  const dir = need('dir', values.dir);
  const out = need('out', values.out);
  const P = Number(values.prompt);
  const T = Number(values.tokens);
  const batches = values.batches!.split(',').map(Number);
  const vocab = openCheckpoint(join(dir, 'inra')).config.vocabSize;
  const res: Record<string, unknown> = { device, promptTokens: P, newTokens: T, lambda: 0.5, rows: 'even rows greedy, odd rows temperature 0.8 top_p 0.95 seeded' };
  const t0 = performance.now();
  const eng = await Engine.start({
    source: { mode: 'inra', model: join(dir, 'inra') },
    device,
    maxContext,
    graphCache: graphCache(),
    limits: {
      maxBatch: Math.max(...batches),
      maxKvTokens: 1 << 24,
      maxQueue: 1024,
      maxPrefillTokens: Math.max(...batches) * P,
      // unset: the engine's default (decode-loop runs on CUDA when every row is greedy)
      ...(values['decode-loop-steps'] === undefined ? {} : { decodeLoopSteps: Number(values['decode-loop-steps']) }),
    },
  });
  res.startMs = performance.now() - t0;
  res.decodeLoopSteps = values['decode-loop-steps'] ?? 'engine default';
  const table: Record<string, unknown>[] = [];
  res.table = table;
  save(out, res);
  // B generations at once; returns when each got its first token and when all ended, plus the stats around them
  const run = async (B: number, maxTokens: number, salt: number) => {
    const before = await eng.refreshStats();
    const start = performance.now();
    const firsts: number[] = [];
    const counts = await Promise.all(
      Array.from({ length: B }, async (_, i) => {
        const gen = eng.generate({
          promptIds: Array.from({ length: P }, (_, j) => (j * 37 + i * 11 + salt * 101) % Math.min(vocab, 1000)),
          lambda: 0.5,
          params: samplingParams(i % 2 === 0 ? { temperature: 0 } : { temperature: 0.8, top_p: 0.95, seed: 1000 + i }),
          maxTokens,
          stop: [],
          stopTokenIds: [],
          ignoreEos: true,
          skipSpecialTokens: true,
          stream: 0,
        });
        let k = 0;
        for await (const ev of gen.events) {
          if (ev.error) throw new Error(`row ${i}: ${ev.error.code}: ${ev.error.message}`);
          if (k === 0 && ev.tokens.length > 0) firsts.push(performance.now());
          k += ev.tokens.length;
        }
        if (k !== maxTokens) throw new Error(`row ${i}: ${k} tokens, asked for ${maxTokens}`);
        return k;
      }),
    );
    const end = performance.now();
    const after = await eng.refreshStats();
    return { start, allFirst: Math.max(...firsts), end, tokens: counts.reduce((a, b) => a + b, 0), before, after };
  };
  await run(2, 4, 0); // warm-up
  for (const B of batches) {
    log(`batch ${B}`);
    try {
      // prefill alone: one new token each (the first token comes from the prefill's logits)
      const p = await run(B, 1, 1);
      const prefillMs = p.end - p.start;
      const prefillBytes = bytesOf(p.after) - bytesOf(p.before);
      const prefillRuns = p.after.hostDeviceBytes.steps - p.before.hostDeviceBytes.steps;
      const d = await run(B, T, 2);
      const decodeMs = d.end - d.allFirst;
      const steps = d.after.decodeSteps - d.before.decodeSteps;
      const decodeRuns = d.after.hostDeviceBytes.steps - d.before.hostDeviceBytes.steps - prefillRuns;
      const decodeBytes = bytesOf(d.after) - bytesOf(d.before) - prefillBytes;
      const row = {
        batch: B,
        prefillMs,
        prefillTokensPerSecond: (B * P * 1000) / prefillMs,
        decodeMs,
        decodeSteps: steps,
        // every row is in every step once all are prefilled: T − 1 steps after the first token
        msPerStep: decodeMs / (T - 1),
        newTokensPerSecond: (B * (T - 1) * 1000) / decodeMs,
        endToEndTokensPerSecond: (d.tokens * 1000) / (d.end - d.start),
        tokens: d.tokens,
        // a decode-loop run holds several steps: bytes per step over the engine's step count, per run beside it
        hostDeviceBytesPerStep: steps > 0 ? decodeBytes / steps : null,
        hostDeviceBytesPerRun: decodeRuns > 0 ? decodeBytes / decodeRuns : null,
        hostDeviceRuns: decodeRuns,
        lastBatchSize: d.after.lastBatchSize,
      };
      table.push(row);
      log(JSON.stringify(row));
    } catch (err) {
      table.push({ batch: B, error: String((err as Error).stack ?? err) });
    }
    save(out, res);
  }
  await eng.shutdown();
  res.finishedMs = performance.now() - t0;
  save(out, res);
}

const read = (file: string): Record<string, unknown> | undefined => {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
};
const fmt = (v: unknown, digits = 1) => (typeof v === 'number' ? v.toFixed(digits) : 'n/a');
const verdict = (ok: boolean | undefined) => (ok === undefined ? 'not measured' : ok ? 'meets' : 'misses');

/** results.md and summary.json from the stage files. */
function report(): void {
  const R = need('results', values.results);
  const stages = existsSync(join(R, 'stages.jsonl'))
    ? readFileSync(join(R, 'stages.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>)
    : [];
  const env = read(join(R, 'env.json'));
  const mdl = read(join(R, 'models.json'));
  const cor = read(join(R, 'correctness.json'));
  const thr = read(join(R, 'throughput.json'));
  const table = (thr?.table as Record<string, number>[] | undefined) ?? [];
  const at = (B: number) => table.find((r) => r.batch === B && r.error === undefined);
  const meets = (v: number | undefined, ok: (v: number) => boolean) => (typeof v === 'number' && Number.isFinite(v) ? ok(v) : undefined);
  const b1 = at(1);
  const b32 = at(32);
  const corRows = (cor?.rows as { lambda: number; relErr: number; argmaxEqual: boolean; pass: boolean }[] | undefined) ?? [];
  const checks = {
    batch1StepMs: { value: b1?.msPerStep, target: `<= ${TARGETS.batch1StepMs}`, pass: meets(b1?.msPerStep, (v) => v <= TARGETS.batch1StepMs) },
    batch32TokensPerSecond: { value: b32?.newTokensPerSecond, target: `>= ${TARGETS.batch32TokensPerSecond}`, pass: meets(b32?.newTokensPerSecond, (v) => v >= TARGETS.batch32TokensPerSecond) },
    prefillBatch32TokensPerSecond: { value: b32?.prefillTokensPerSecond, target: `>= ${TARGETS.prefillBatch32TokensPerSecond}`, pass: meets(b32?.prefillTokensPerSecond, (v) => v >= TARGETS.prefillBatch32TokensPerSecond) },
    hostDeviceBytesPerStepBatch32: { value: b32?.hostDeviceBytesPerStep ?? undefined, target: `<= ${TARGETS.hostDeviceBytesPerStep}`, pass: meets(b32?.hostDeviceBytesPerStep ?? undefined, (v) => v <= TARGETS.hostDeviceBytesPerStep) },
    logits: { value: corRows.length ? Math.max(...corRows.map((r) => r.relErr)) : undefined, target: `<= ${TARGETS.relErr}, same argmax`, pass: corRows.length ? corRows.every((r) => r.pass) : undefined },
  };
  const md: string[] = [];
  md.push(`# realign one-shot GPU check${env?.dryRun ? ' (DRY RUN on the CPU: tiny shape, numbers mean nothing)' : ''}`, '');
  md.push(`Card: ${String(env?.gpu ?? 'n/a')}. Preset ${String(mdl?.preset ?? 'n/a')} (${String(mdl?.dtype ?? '')} weights, InRa ${String(mdl?.inraLayers ?? '?')} layers), device ${String(thr?.device ?? cor?.device ?? 'n/a')}, λ = 0.5, ${String(thr?.promptTokens ?? '?')}-token prompts, ${String(thr?.newTokens ?? '?')} new tokens, ${String(thr?.rows ?? '')}. Started ${String(env?.started ?? '?')}.`, '', `Command: \`${String(env?.command ?? 'bench/gpu/gpu-check.sh')}\``, '');
  md.push('| stage | status | seconds | budget s | note |', '| --- | --- | --- | --- | --- |');
  for (const s of stages) md.push(`| ${String(s.name)} | ${String(s.status)} | ${fmt(s.seconds)} | ${String(s.budget)} | ${String(s.note ?? '')} |`);
  md.push('', '| measure | value | target | verdict |', '| --- | --- | --- | --- |');
  md.push(`| batch 1 ms per decode step | ${fmt(checks.batch1StepMs.value, 2)} | ${checks.batch1StepMs.target} | ${verdict(checks.batch1StepMs.pass)} |`);
  md.push(`| batch 32 new tokens/s | ${fmt(checks.batch32TokensPerSecond.value, 0)} | ${checks.batch32TokensPerSecond.target} | ${verdict(checks.batch32TokensPerSecond.pass)} |`);
  md.push(`| prefill at batch 32 tokens/s | ${fmt(checks.prefillBatch32TokensPerSecond.value, 0)} | ${checks.prefillBatch32TokensPerSecond.target} | ${verdict(checks.prefillBatch32TokensPerSecond.pass)} |`);
  md.push(`| host↔device bytes per decode step at batch 32 | ${fmt(checks.hostDeviceBytesPerStepBatch32.value, 0)} | ${checks.hostDeviceBytesPerStepBatch32.target} | ${verdict(checks.hostDeviceBytesPerStepBatch32.pass)} |`);
  md.push(`| logits vs ${String(cor?.reference ?? 'transformers float32')}: max relative error | ${checks.logits.value === undefined ? 'n/a' : checks.logits.value.toExponential(2)} | ${checks.logits.target} | ${verdict(checks.logits.pass)} |`);
  md.push('', '| batch | ms/step | new tokens/s | prefill tokens/s | end-to-end tokens/s | host↔device bytes/step | decode steps |', '| --- | --- | --- | --- | --- | --- | --- |');
  for (const r of table) {
    if (r.error !== undefined) md.push(`| ${r.batch} | error: ${String(r.error).split('\n')[0]} | | | | | |`);
    else md.push(`| ${r.batch} | ${fmt(r.msPerStep, 2)} | ${fmt(r.newTokensPerSecond, 0)} | ${fmt(r.prefillTokensPerSecond, 0)} | ${fmt(r.endToEndTokensPerSecond, 0)} | ${r.hostDeviceBytesPerStep === null ? 'n/a' : fmt(r.hostDeviceBytesPerStep, 0)} | ${r.decodeSteps} |`);
  }
  if (corRows.length) {
    md.push('', '| λ | relative error | same argmax | ours / theirs |', '| --- | --- | --- | --- |');
    for (const r of corRows as (typeof corRows[number] & { ours: number; theirs: number })[]) md.push(`| ${r.lambda} | ${r.relErr.toExponential(2)} | ${r.argmaxEqual} | ${r.ours} / ${r.theirs} |`);
  }
  md.push('');
  writeFileSync(join(R, 'results.md'), md.join('\n'));
  save(join(R, 'summary.json'), { env, stages, models: mdl, correctness: cor, throughput: thr, checks });
  process.stdout.write(md.join('\n'));
}

const commands: Record<string, () => void | Promise<void>> = { models, 'ref-logits': refLogits, logits, compare, engine, report };
if (isMainThread) {
  const cmd = commands[positionals[0] ?? ''];
  if (!cmd) {
    process.stderr.write(`usage: gpu-check <${Object.keys(commands).join('|')}> [options]\n`);
    process.exit(2);
  }
  await cmd();
  process.exit(0);
}
