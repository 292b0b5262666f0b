/**
 * The toy reproduction (`npm run toy`): realign trains a tiny reference model that always thinks long, an InRa
 * adapter on short answers, and TrRa students past λ = 1, then measures answer length and accuracy through the
 * serving runtime. Stages whose output exists in the work folder are reused (REALIGN_TOY_FRESH=1 starts over).
 *
 * Two variants of the task (`--variant`, or REALIGN_TOY_VARIANT):
 * - `floor` (the default, the original run): reference on 2–6 checks, adapter on 0–1; writes results.json, the InRa
 *   plots and tables, and copies the InRa checkpoint to models/toy-inra/.
 * - `room`: reference on 3–8 checks, adapter on 1–4, so the aligned model is shorter than the reference but not at
 *   the task's floor and λ > 1 has room to move; runs the TrRa grid and TrRa-iter and writes results-room.json,
 *   trra-grid*.svg and the README's room tables.
 */
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openCheckpoint } from '../../gpu-backend/src/checkpoint/checkpoint.ts';
import { expandCheckpoint } from '../../gpu-backend/src/make/expand.ts';
import { TextTokenizer } from '../../gpu-backend/src/text/tokenizer.ts';
import { parseRecord, tokenizeExample } from '../../gpu-backend/src/train/data.ts';
import { trainInra } from '../../gpu-backend/src/train/inra.ts';
import { DEFAULT_SETTINGS, type TrainSettings } from '../../gpu-backend/src/train/options.ts';
import { writeTrainedCheckpoint } from '../../gpu-backend/src/train/output.ts';
import { TrainProgress } from '../../gpu-backend/src/train/progress.ts';
import { train } from '../../gpu-backend/src/train/trainer.ts';
import { trainTrra } from '../../gpu-backend/src/train/trra.ts';
import { completions, evaluate, EVAL_SAMPLING, type EvalPoint } from './evaluate.ts';
import { writeToyInit } from './model.ts';
import { MIN_REFERENCE_ACCURACY, renderReport, renderRoomReport } from './report.ts';
import { problems, promptOf, records } from './task.ts';

const HERE = import.meta.dirname;
const SEED = 20250615;

/** One variant of the task: the check counts each stage trains on, and what is swept. */
interface Variant {
  name: 'floor' | 'room';
  /** checks per answer (inclusive range) of the reference's, the adapter's and the TrRa data */
  referenceChecks: [number, number];
  adapterChecks: [number, number];
  trraChecks: [number, number];
  /** λ of the InRa sweep through the engine */
  lambdas: number[];
  /** λ of the TrRa students */
  trraLambdas: number[];
  /** TrRa-iter: extra iterations on top of the student at this λ (0: none) */
  iterLambda: number | null;
  iterRounds: number;
}

const VARIANTS: Record<Variant['name'], Variant> = {
  floor: {
    name: 'floor',
    referenceChecks: [2, 6],
    adapterChecks: [0, 1],
    trraChecks: [0, 6],
    lambdas: [-0.5, -0.25, 0, 0.25, 0.5, 0.75, 1, 1.25],
    trraLambdas: [1.5, 2],
    iterLambda: null,
    iterRounds: 0,
  },
  room: {
    name: 'room',
    referenceChecks: [3, 8],
    adapterChecks: [1, 4],
    trraChecks: [0, 8],
    lambdas: [0, 1, 2],
    trraLambdas: [0.5, 1.5, 2, 5, 10],
    iterLambda: 2,
    iterRounds: 2,
  },
};

function variantOf(argv: readonly string[]): Variant {
  const i = argv.indexOf('--variant');
  const name =
    i >= 0
      ? argv[i + 1]
      : (argv.find((a) => a.startsWith('--variant='))?.slice('--variant='.length) ?? process.env.REALIGN_TOY_VARIANT ?? 'floor');
  if (name !== 'floor' && name !== 'room') throw new Error(`--variant must be floor or room, got ${name}`);
  return VARIANTS[name];
}

const VARIANT = variantOf(process.argv.slice(2));
const WORK = process.env.REALIGN_TOY_WORK ?? (VARIANT.name === 'floor' ? '/tmp/realign-toy' : '/tmp/realign-toy-room');

/** Training recipe of each stage. */
const RECIPES = {
  floor: {
    reference: { steps: 800, batchSize: 32, lr: 2e-3, warmupSteps: 50, examples: 30_000 },
    adapter: { steps: 300, batchSize: 32, lr: 1e-3, warmupSteps: 20, examples: 8_000 },
    trra: { steps: 150, batchSize: 16, lr: 3e-4, warmupSteps: 10, examples: 2_400 },
    testProblems: 200,
  },
  // floor's recipe: an earlier room run on a smaller one (reference 300 steps × 24 on 7,200 examples, adapter 120 × 16,
  // TrRa 40 × 8) made a reference that never learned to add (0% on the held-out problems), so no accuracy drop
  // could be read; its answers (3–8 checks, at most 173 tokens with the prompt) fit maxLength 192
  room: {
    reference: { steps: 800, batchSize: 32, lr: 2e-3, warmupSteps: 50, examples: 30_000 },
    adapter: { steps: 300, batchSize: 32, lr: 1e-3, warmupSteps: 20, examples: 8_000 },
    trra: { steps: 150, batchSize: 16, lr: 3e-4, warmupSteps: 10, examples: 2_400 },
    testProblems: 200,
  },
};
const RECIPE = RECIPES[VARIANT.name];

/** Seconds per stage, kept in the work folder so that a run reusing finished stages still reports them. */
const timingsFile = join(WORK, 'timings.json');
let timings: Record<string, number> = {};
async function stage<T>(name: string, f: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  process.stderr.write(`toy: ${name}\n`);
  const out = await f();
  timings[name] = Math.round((performance.now() - t0) / 100) / 10;
  writeFileSync(timingsFile, JSON.stringify(timings));
  return out;
}

function settings(r: { steps: number; batchSize: number; lr: number; warmupSteps: number }): TrainSettings {
  return {
    ...DEFAULT_SETTINGS,
    steps: r.steps,
    batchSize: r.batchSize,
    lr: r.lr,
    warmupSteps: r.warmupSteps,
    minLrRatio: 0.05,
    optimizer: { beta1: 0.9, beta2: 0.98, eps: 1e-8, weightDecay: 0.01, maxGradNorm: 1 },
    seed: SEED,
    maxLength: 192,
    device: 'cpu',
    // onnxruntime's intra-op threads: at 2, two runs of the same steps drift apart at float rounding; at 1, a
    // six-step test repeated bit for bit (bench/toy/README.md, room variant, reproducibility)
    threads: 2,
    saveEvery: 0,
  };
}

function writeJsonl(file: string, rows: { prompt: string; response: string }[]): string {
  writeFileSync(file, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return file;
}

async function main(): Promise<void> {
  if (process.env.REALIGN_TOY_FRESH === '1') rmSync(WORK, { recursive: true, force: true });
  mkdirSync(WORK, { recursive: true });
  if (existsSync(timingsFile)) timings = JSON.parse(readFileSync(timingsFile, 'utf8')) as Record<string, number>;
  const dir = (name: string) => join(WORK, name);
  const test = problems(SEED + 1, RECIPE.testProblems);
  const heldOut = new Set(test.map(promptOf));
  const graphs = dir('graphs');
  const V = VARIANT;

  // 1. the reference model: SFT of every weight on long answers (2–6 checks; room: 3–8)
  if (!existsSync(dir('reference'))) {
    await stage('reference', async () => {
      if (!existsSync(dir('init'))) writeToyInit(dir('init'), SEED);
      const init = openCheckpoint(dir('init'));
      const tok = TextTokenizer.load(init.tokenizerFile!, init.tokenizerConfigFile);
      const eos = tok.eosTokenIds[0];
      const rows = records(problems(SEED + 2, RECIPE.reference.examples, heldOut), SEED + 2, ...V.referenceChecks);
      const examples = rows.map((r, i) => tokenizeExample(tok, parseRecord(r, `reference#${i}`), eos, 192, `reference#${i}`));
      const s = settings(RECIPE.reference);
      const result = await train({
        ...s,
        ckpt: init,
        trainable: { kind: 'full' },
        loss: 'sft',
        examples,
        padId: eos,
        workDir: dir('reference.train'),
        resume: false,
        progress: new TrainProgress('reference', undefined, false, 50),
      });
      writeTrainedCheckpoint(init, dir('reference'), result.params, {
        extraFiles: {
          'realign_train.json': JSON.stringify({ kind: 'sft', steps: result.steps, losses: result.losses }, null, 2),
        },
      });
    });
  }

  // 2. InRa: expand, then train the adapter on short answers (0–1 checks; room: 1–4) with the train-inra code path
  if (!existsSync(dir('inra'))) {
    await stage('inra', async () => {
      rmSync(dir('expanded'), { recursive: true, force: true });
      expandCheckpoint(dir('reference'), dir('expanded'), 1);
      const data = writeJsonl(
        dir('short.jsonl'),
        records(problems(SEED + 3, RECIPE.adapter.examples, heldOut), SEED + 3, ...V.adapterChecks),
      );
      await trainInra({
        ...settings(RECIPE.adapter),
        model: dir('expanded'),
        data,
        out: dir('inra'),
        progress: new TrainProgress('train-inra', undefined, false, 25),
      });
    });
  }

  // 3. the λ sweep of the InRa model, through the Engine
  const inraSweep: EvalPoint[] = await stage('inra sweep', () =>
    evaluate({ mode: 'inra', model: dir('inra') }, dir('inra'), test, V.lambdas, SEED, graphs),
  );

  // 4. TrRa past λ = 1: reference → student, teacher = fusion(aligned = the InRa model, reference)
  const trraData = writeJsonl(
    dir('mixed.jsonl'),
    records(problems(SEED + 4, RECIPE.trra.examples, heldOut), SEED + 4, ...V.trraChecks),
  );
  const trraRows = [];
  const ref = inraSweep.find((p) => p.lambda === 0)!;
  const aligned = inraSweep.find((p) => p.lambda === 1)!;
  trraRows.push({ model: 'reference', lambda: 0, mean_tokens: ref.mean_tokens, accuracy: ref.accuracy });
  trraRows.push({ model: 'aligned (InRa adapter)', lambda: 1, mean_tokens: aligned.mean_tokens, accuracy: aligned.accuracy });
  for (const lambda of V.trraLambdas) {
    const out = dir(`trra-${lambda}`);
    if (!existsSync(out)) {
      await stage(`trra λ=${lambda}`, () =>
        trainTrra({
          ...settings(RECIPE.trra),
          reference: dir('reference'),
          aligned: dir('inra'),
          lambda,
          data: trraData,
          out,
          lora: null,
          kl: 'reverse',
          iterations: 1,
          graphCache: graphs,
          progress: new TrainProgress(`train-trra λ=${lambda}`, undefined, false, 25),
        }),
      );
    }
    const [p] = await stage(`trra λ=${lambda} eval`, () =>
      evaluate({ mode: 'single', model: out }, out, test, [1], SEED, graphs),
    );
    trraRows.push({ model: `TrRa student (λ = ${lambda})`, lambda, mean_tokens: p.mean_tokens, accuracy: p.accuracy });
  }

  // 4b. TrRa-iter (room): the λ student becomes the aligned side of the next teacher, softmax(λ·z_student +
  // (1 − λ)·z_reference), and the next student starts again from the reference (trainTrra's --iterations). The
  // earlier students are copied into the work folder, where trainTrra reuses them instead of training them again.
  const iterRows = [];
  if (V.iterLambda !== null) {
    const lambda = V.iterLambda;
    const students = [dir(`trra-${lambda}`)];
    for (let round = 1; round <= V.iterRounds; round++) {
      const out = dir(`trra-${lambda}-iter${round}`);
      if (!existsSync(out)) {
        const workDir = `${out}.train`;
        rmSync(workDir, { recursive: true, force: true });
        students.forEach((s, k) => cpSync(s, join(workDir, `student-${k + 1}`), { recursive: true }));
        await stage(`trra λ=${lambda} iter ${round}`, () =>
          trainTrra({
            ...settings(RECIPE.trra),
            reference: dir('reference'),
            aligned: dir('inra'),
            lambda,
            data: trraData,
            out,
            workDir,
            lora: null,
            kl: 'reverse',
            iterations: round + 1,
            graphCache: graphs,
            progress: new TrainProgress(`train-trra λ=${lambda} iter ${round}`, undefined, false, 25),
          }),
        );
      }
      students.push(out);
      const [p] = await stage(`trra λ=${lambda} iter ${round} eval`, () =>
        evaluate({ mode: 'single', model: out }, out, test, [1], SEED, graphs),
      );
      iterRows.push({
        model: `TrRa-iter ${round} (λ = ${lambda})`,
        lambda,
        iteration: round,
        mean_tokens: p.mean_tokens,
        accuracy: p.accuracy,
      });
    }
  }

  if (V.name === 'room') {
    const rows = [...trraRows, ...iterRows].map((r) => ({
      ...r,
      reduction: 1 - r.mean_tokens / ref.mean_tokens,
      accuracy_change_points: 100 * (r.accuracy - ref.accuracy),
    }));
    const grid = rows.filter((r) => r.model.startsWith('TrRa student'));
    const firstDrop = ref.accuracy >= MIN_REFERENCE_ACCURACY ? (grid.find((r) => r.accuracy_change_points < -2) ?? null) : null;
    const results = {
      variant: V,
      inra_sweep: inraSweep,
      trra: rows,
      // null: no drop on the grid, or (reference_accuracy below the threshold) not readable from this run
      accuracy_first_drops_past_2_points_at_lambda: firstDrop ? firstDrop.lambda : null,
      reference_accuracy: ref.accuracy,
      min_reference_accuracy_for_a_drop: MIN_REFERENCE_ACCURACY,
      setup: {
        task: '3-digit addition with a digit-by-digit trace and redundant checks (bench/toy/task.ts); reference 3–8 checks, adapter 1–4',
        model: modelFacts(dir('reference')),
        recipe: RECIPE,
        trra_iter:
          'the λ = 2 student is the aligned side of the next teacher softmax(2·z_student − z_reference); each student starts from the reference',
        evaluation: {
          problems: RECIPE.testProblems,
          held_out: true,
          temperature: EVAL_SAMPLING.temperature,
          max_tokens: EVAL_SAMPLING.maxTokens,
          runtime: 'Engine (worker thread, continuous batching, per-request λ), CPU',
        },
        seed: SEED,
        seconds: timings,
      },
    };
    writeFileSync(join(HERE, 'results-room.json'), JSON.stringify(results, null, 2) + '\n');
    renderRoomReport(HERE, results);
    process.stderr.write(
      `toy: done in ${Object.values(timings)
        .reduce((a, b) => a + b, 0)
        .toFixed(0)} s of stages\n`,
    );
    return;
  }

  // 5. results, plots, README tables, and the embedded default model
  const examplePrompt = promptOf(test[0]);
  const examples = {
    prompt: examplePrompt,
    completions: await stage('examples', () =>
      completions({ mode: 'inra', model: dir('inra') }, dir('inra'), examplePrompt, [-0.5, 0, 0.5, 1, 1.25], graphs),
    ),
  };
  const results = {
    inra_sweep: inraSweep,
    trra: trraRows,
    examples,
    setup: {
      task: '3-digit addition with a digit-by-digit trace and redundant checks (bench/toy/task.ts)',
      model: modelFacts(dir('reference')),
      recipe: RECIPE,
      evaluation: {
        problems: RECIPE.testProblems,
        held_out: true,
        temperature: EVAL_SAMPLING.temperature,
        max_tokens: EVAL_SAMPLING.maxTokens,
        runtime: 'Engine (worker thread, continuous batching, per-request λ), CPU',
      },
      seed: SEED,
      seconds: timings,
    },
  };
  writeFileSync(join(HERE, 'results.json'), JSON.stringify(results, null, 2) + '\n');
  renderReport(HERE, results);
  const target = join(HERE, '../../models/toy-inra');
  rmSync(target, { recursive: true, force: true });
  cpSync(dir('inra'), target, { recursive: true });
  process.stderr.write(
    `toy: done in ${Object.values(timings)
      .reduce((a, b) => a + b, 0)
      .toFixed(0)} s of stages\n`,
  );
}

/** The reference model's shape as recorded in results.json. */
function modelFacts(model: string): Record<string, number | boolean | string> {
  const ckpt = openCheckpoint(model);
  const c = ckpt.config;
  let parameters = 0;
  for (const e of ckpt.store.entries.values()) parameters += e.shape.reduce((a, b) => a * b, 1);
  return {
    architecture: c.architecture,
    hidden_size: c.hiddenSize,
    layers: c.numLayers,
    heads: c.numHeads,
    kv_heads: c.numKvHeads,
    head_dim: c.headDim,
    intermediate_size: c.intermediateSize,
    vocab_size: c.vocabSize,
    tied_embeddings: c.tieWordEmbeddings,
    parameters,
  };
}

await main();
