/**
 * The training loop shared by `train-inra` and `train-trra`: builds the step (and, with accumulation, gradients)
 * graphs, feeds batches, keeps parameters and AdamW moments on the host between steps, saves states for resume,
 * and reports progress. The loss of a step is the mean over the response tokens of all its micro-batches.
 */
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Checkpoint } from '../checkpoint/checkpoint.ts';
import { ModelSession, type HostTensor } from '../ort/session.ts';
import { BatchOrder, makeBatch, type Batch } from './batches.ts';
import type { TrainExample } from './data.ts';
import { gradNames, TRAIN_IO, writeTrainGraph, type TrainGraphSpec } from './graphs.ts';
import type { LossKind } from './model/losses.ts';
import { OPTIMIZER_INPUTS, stateNames } from './model/optimizer.ts';
import { initialParams, type ParamInfo, type TrainableSpec } from './params.ts';
import type { TrainSettings } from './options.ts';
import type { TrainProgress } from './progress.ts';
import { learningRate } from './schedule.ts';
import { loadLatestState, saveState, type TrainState } from './state.ts';

/** Gives the teacher's log-probabilities [B, W, V] for a batch (KL losses). */
export interface Teacher {
  logprobs(batch: Batch): Promise<Float32Array>;
}

/** Everything a run needs: the run settings (epochs optional here) with the model, the loss and the data. */
export interface TrainOptions extends Omit<TrainSettings, 'epochs' | 'workDir' | 'keepWorkDir'> {
  ckpt: Checkpoint;
  trainable: TrainableSpec;
  loss: LossKind;
  examples: readonly TrainExample[];
  padId: number;
  /** passes over the data when `steps` is absent */
  epochs?: number;
  /** graphs and training states go here */
  workDir: string;
  teacher?: Teacher;
  progress?: TrainProgress;
  /** more options that must match for a resume (e.g. the teacher's λ) */
  fingerprintExtra?: unknown;
}

/** What a run produced. */
export interface TrainResult {
  params: Map<string, Float32Array>;
  steps: number;
  /** loss of every step, from the first (resumed runs include the earlier steps) */
  losses: number[];
  tokens: number;
  seconds: number;
  /** the step the run resumed from (0 for a fresh run) */
  resumedFrom: number;
}

/** Number of optimizer steps of a run. */
export function totalSteps(opts: Pick<TrainOptions, 'steps' | 'epochs' | 'examples' | 'batchSize' | 'gradAccum'>): number {
  if (opts.steps !== undefined) return opts.steps;
  const perEpoch = Math.ceil(opts.examples.length / opts.batchSize);
  return Math.ceil(((opts.epochs ?? 1) * perEpoch) / opts.gradAccum);
}

/** Runs the training loop and returns the trained parameters. */
export async function train(opts: TrainOptions): Promise<TrainResult> {
  if (opts.loss !== 'sft' && !opts.teacher) throw new Error(`loss ${opts.loss} needs a teacher`);
  const total = totalSteps(opts);
  const stateDir = join(opts.workDir, 'state');
  const graphDir = join(opts.workDir, 'graphs');
  mkdirSync(stateDir, { recursive: true });
  mkdirSync(graphDir, { recursive: true });
  const fingerprint = fingerprintOf(opts, total);
  let state: TrainState | null = opts.resume ? loadLatestState(stateDir) : null;
  if (state && state.fingerprint !== fingerprint) {
    throw new Error(
      `${stateDir} holds a state of a run with other options or data; resume with the same options, or remove the folder to start over`,
    );
  }
  const spec: TrainGraphSpec = {
    ckpt: opts.ckpt,
    trainable: opts.trainable,
    loss: opts.loss,
    floatType: 'float32',
    maxPositions: opts.maxLength,
    optimizer: opts.optimizer,
    accumulated: opts.gradAccum > 1,
  };
  const start = performance.now();
  const stepGraph = writeTrainGraph(spec, 'step', graphDir);
  const params: ParamInfo[] = stepGraph.params;
  const sessionOpts = { device: opts.device, threads: opts.threads };
  const stepSession = await ModelSession.open(stepGraph.modelPath, sessionOpts);
  const gradSession =
    opts.gradAccum > 1 ? await ModelSession.open(writeTrainGraph(spec, 'gradients', graphDir).modelPath, sessionOpts) : null;
  if (!state) {
    const init = initialParams(opts.ckpt, opts.trainable, opts.seed);
    const zeros = () => new Map(params.map((p) => [p.name, new Float32Array(init.get(p.name)!.length)]));
    state = { step: 0, params: init, m: zeros(), v: zeros(), tokens: 0, losses: [], fingerprint };
  } else {
    opts.progress?.note(`resuming from step ${state.step} (${stateDir})`);
  }
  const resumedFrom = state.step;
  const order = new BatchOrder(
    opts.examples.map((e) => e.ids.length),
    opts.batchSize,
    opts.seed,
  );
  const schedule = { peak: opts.lr, warmupSteps: opts.warmupSteps, totalSteps: total, minRatio: opts.minLrRatio };
  const shapes = new Map(params.map((p) => [p.name, p.shape]));
  const tensor = (p: ParamInfo, data: Float32Array): HostTensor => ({ type: 'float32', data, dims: p.shape });
  let tokensThisRun = 0;
  try {
    for (let step = state.step; step < total; step++) {
      const batches = Array.from({ length: opts.gradAccum }, (_, j) =>
        makeBatch(
          order.at(step * opts.gradAccum + j).map((i) => opts.examples[i]),
          opts.padId,
        ),
      );
      const stepTokens = batches.reduce((s, b) => s + b.responseTokens, 0);
      const lr = learningRate(schedule, step);
      // each response position weighs 1/N over the whole step, so accumulated micro-batches sum to a token mean
      const scale = stepTokens > 0 ? 1 / stepTokens : 0;
      let grads: Map<string, Float32Array> | null = gradSession
        ? new Map(params.map((p) => [p.name, new Float32Array(state!.params.get(p.name)!.length)]))
        : null;
      let loss = 0;
      let gradNorm = 0;
      for (const [j, batch] of batches.entries()) {
        const feeds = await batchFeeds(
          batch,
          batch.mask.map((m) => m * scale),
          opts,
        );
        for (const p of params) feeds[p.name] = tensor(p, state.params.get(p.name)!);
        if (grads) for (const p of params) feeds[gradNames(p.name).input] = tensor(p, grads.get(p.name)!);
        if (j < batches.length - 1) {
          const out = await gradSession!.run(feeds, [TRAIN_IO.loss, ...params.map((p) => gradNames(p.name).output)]);
          loss += scalar(out[TRAIN_IO.loss]);
          grads = new Map(params.map((p) => [p.name, out[gradNames(p.name).output].data as Float32Array]));
          continue;
        }
        const t = step + 1;
        feeds[OPTIMIZER_INPUTS.lr] = scalarTensor(lr);
        feeds[OPTIMIZER_INPUTS.bias1] = scalarTensor(1 / (1 - opts.optimizer.beta1 ** t));
        feeds[OPTIMIZER_INPUTS.bias2] = scalarTensor(1 / (1 - opts.optimizer.beta2 ** t));
        for (const p of params) {
          feeds[stateNames(p.name).m] = tensor(p, state.m.get(p.name)!);
          feeds[stateNames(p.name).v] = tensor(p, state.v.get(p.name)!);
        }
        const fetch = [
          TRAIN_IO.loss,
          TRAIN_IO.gradNorm,
          ...params.flatMap((p) => [stateNames(p.name).newParam, stateNames(p.name).newM, stateNames(p.name).newV]),
        ];
        const out = await stepSession.run(feeds, fetch);
        loss += scalar(out[TRAIN_IO.loss]);
        gradNorm = scalar(out[TRAIN_IO.gradNorm]);
        for (const p of params) {
          const s = stateNames(p.name);
          state.params.set(p.name, out[s.newParam].data as Float32Array);
          state.m.set(p.name, out[s.newM].data as Float32Array);
          state.v.set(p.name, out[s.newV].data as Float32Array);
        }
      }
      if (!Number.isFinite(loss))
        throw new Error(`training diverged at step ${step + 1}: the loss is ${loss}; lower --lr or raise --warmup`);
      state.step = step + 1;
      state.tokens += stepTokens;
      state.losses.push(loss);
      tokensThisRun += stepTokens;
      const secs = (performance.now() - start) / 1000;
      opts.progress?.update({ step: state.step, total, loss, lr, gradNorm, tokensPerSecond: tokensThisRun / secs });
      if (opts.saveEvery > 0 && state.step % opts.saveEvery === 0 && state.step < total) saveState(stateDir, state, shapes);
    }
  } finally {
    await stepSession.release();
    await gradSession?.release();
  }
  if (opts.saveEvery > 0 && total > resumedFrom) saveState(stateDir, state, shapes);
  return {
    params: state.params,
    steps: state.step,
    losses: state.losses,
    tokens: state.tokens,
    seconds: (performance.now() - start) / 1000,
    resumedFrom,
  };
}

/** The data feeds of a batch: ids, the loss weight of each position, and the targets (sft) or the teacher's log-probabilities. */
export async function batchFeeds(
  batch: Batch,
  weights: Float32Array,
  opts: Pick<TrainOptions, 'loss' | 'teacher' | 'ckpt'>,
): Promise<Record<string, HostTensor>> {
  const dims = [batch.rows, batch.width];
  const feeds: Record<string, HostTensor> = {
    [TRAIN_IO.ids]: { type: 'int64', data: batch.ids, dims },
    [TRAIN_IO.weights]: { type: 'float32', data: weights, dims },
  };
  if (opts.loss === 'sft') feeds[TRAIN_IO.targets] = { type: 'int64', data: batch.targets, dims };
  else
    feeds[TRAIN_IO.teacher] = {
      type: 'float32',
      data: await opts.teacher!.logprobs(batch),
      dims: [...dims, opts.ckpt.config.vocabSize],
    };
  return feeds;
}

function scalar(t: HostTensor): number {
  return Number(t.data[0]);
}

function scalarTensor(v: number): HostTensor {
  return { type: 'float32', data: Float32Array.of(v), dims: [] };
}

function fingerprintOf(opts: TrainOptions, total: number): string {
  const h = createHash('sha256');
  h.update(
    JSON.stringify({
      config: opts.ckpt.config,
      trainable: opts.trainable,
      loss: opts.loss,
      batchSize: opts.batchSize,
      gradAccum: opts.gradAccum,
      total,
      lr: opts.lr,
      warmup: opts.warmupSteps,
      minLr: opts.minLrRatio,
      optimizer: opts.optimizer,
      seed: opts.seed,
      extra: opts.fingerprintExtra ?? null,
    }),
  );
  for (const e of opts.examples) h.update(`${e.promptLength}:${e.ids.join(',')};`);
  return h.digest('hex').slice(0, 24);
}
