/** gpu-check models: the seeded base checkpoint (drawn in parallel worker threads) and its InRa expansion. */
import { copyFileSync, existsSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { parseModelConfig } from '../../../gpu-backend/src/checkpoint/config.ts';
import { float32ToBytes } from '../../../gpu-backend/src/checkpoint/dtype.ts';
import { expectedTensors } from '../../../gpu-backend/src/checkpoint/names.ts';
import { PRESETS } from '../../../gpu-backend/src/make/presets.ts';
import { randomNormal } from '../../../gpu-backend/src/random/normal.ts';
import { hfConfig } from '../../../gpu-backend/src/make/synthetic.ts';
import { writeFolderAtomically, writeWeights } from '../../../gpu-backend/src/checkpoint/writer.ts';
import { copyBundledTokenizer, writeTinyTokenizer } from '../../../gpu-backend/src/make/tiny-tokenizer.ts';
import { TextTokenizer } from '../../../gpu-backend/src/text/tokenizer.ts';
import { syntheticInra } from '../../../gpu-backend/src/make/synthetic.ts';
import type { DType } from '../../../gpu-backend/src/checkpoint/dtype.ts';
import { values, log, save, need } from './context.ts';

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
  const entry = import.meta.url.endsWith('.ts')
    ? new URL('../gpu-check-bootstrap.mjs', import.meta.url)
    : new URL(import.meta.url);
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
    writeFileSync(
      join(dir, 'generation_config.json'),
      JSON.stringify({ bos_token_id: config.bos_token_id, eos_token_id: config.eos_token_id }, null, 2),
    );
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

export async function models(): Promise<void> {
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
  const bytes = (d: string) =>
    readdirSync(d)
      .filter((f) => f.endsWith('.safetensors'))
      .reduce((s, f) => s + statSync(join(d, f)).size, 0);
  const cfg = JSON.parse(readFileSync(join(inra, 'config.json'), 'utf8')) as Record<string, unknown>;
  Object.assign(res, {
    base,
    inra,
    baseBytes: bytes(base),
    inraBytes: bytes(inra),
    inraLayers: cfg.num_hidden_layers,
    vocabSize: cfg.vocab_size,
  });
  save(out, res);
  log(`models: ${JSON.stringify(res)}`);
}
