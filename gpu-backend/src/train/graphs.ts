/**
 * Training graphs: the plain-op forward, a loss, its gradients (autodiff) and, for a step graph, the AdamW update.
 * Three kinds share one builder:
 *   forward    logits and loss (evaluation, tests)
 *   gradients  loss and grad_in + ∂loss/∂p per trainable p (one micro-batch of an accumulated step)
 *   step       loss, gradient norm and the updated parameters and moments (the last micro-batch of a step)
 *
 * Dimension legend: B rows, T tokens per row, V vocab.
 */
import type { Checkpoint } from '../checkpoint/checkpoint.ts';
import { Graph } from '../graph/ir.ts';
import { writeOnnxModel } from '../graph/onnx-writer.ts';
import { addGradients } from './autodiff/grad.ts';
import type { TrainFloat } from './autodiff/context.ts';
import { emitTrainForward } from './model/forward.ts';
import { emitLoss, type LossKind } from './model/losses.ts';
import { emitAdamW, type AdamWOptions } from './model/optimizer.ts';
import { TrainWeights } from './model/weights.ts';
import { forwardLayers, loraPairs, trainableParams, type ParamInfo, type TrainableSpec } from './params.ts';

/** What to build. */
export interface TrainGraphSpec {
  ckpt: Checkpoint;
  trainable: TrainableSpec;
  loss: LossKind;
  floatType: TrainFloat;
  /** the longest row (prompt + response) the graph accepts */
  maxPositions: number;
  optimizer: AdamWOptions;
  /** step graph: add gradients accumulated by `gradients` runs before the update */
  accumulated: boolean;
  /** run layers firstLayer.. (default 0) */
  firstLayer?: number;
}

/** Which graph of a spec. */
export type TrainGraphKind = 'forward' | 'gradients' | 'step';

/** Fixed input and output names of training graphs. */
export const TRAIN_IO = {
  ids: 'input_ids',
  targets: 'targets',
  weights: 'loss_weights',
  teacher: 'teacher_logprobs',
  loss: 'loss',
  logits: 'logits',
  gradNorm: 'grad_norm',
} as const;

/** Names of a parameter's accumulated-gradient input and gradient output. */
export const gradNames = (p: string) => ({ input: `grad_in/${p}`, output: `grad/${p}` });

/** A built training graph and the parameters it takes. */
export interface TrainGraph {
  graph: Graph;
  params: ParamInfo[];
}

/** Builds one training graph of `spec`. */
export function buildTrainGraph(spec: TrainGraphSpec, kind: TrainGraphKind): TrainGraph {
  const cfg = spec.ckpt.config;
  const ft = spec.floatType;
  const g = new Graph(`realign_train_${kind}`);
  const params = trainableParams(cfg, spec.trainable);
  for (const p of params) g.input(p.name, ft, p.shape, 'trainable');
  const ids = g.input(TRAIN_IO.ids, 'int64', ['B', 'T'], 'prompt and response tokens, right-padded');
  const weights = g.input(TRAIN_IO.weights, ft, ['B', 'T'], 'loss weight of each position (0 at prompt and pad positions)');
  const targets =
    spec.loss === 'sft' ? g.input(TRAIN_IO.targets, 'int64', ['B', 'T'], 'the next token at each position') : undefined;
  const teacherLogprobs =
    spec.loss === 'sft' ? undefined : g.input(TRAIN_IO.teacher, ft, ['B', 'T', cfg.vocabSize], "the teacher's log-probabilities");
  const w = new TrainWeights(
    g,
    spec.ckpt,
    ft,
    new Set(params.filter((p) => !p.name.includes('.lora_')).map((p) => p.name)),
    loraPairs(cfg, spec.trainable),
  );
  const logits = emitTrainForward(w, cfg, {
    ids,
    maxPositions: spec.maxPositions,
    firstLayer: spec.firstLayer,
    layers: forwardLayers(cfg, spec.trainable),
  });
  const loss = emitLoss(g, spec.loss, logits, { weights, targets, teacherLogprobs });
  g.output(loss, TRAIN_IO.loss, ft, []);
  if (kind === 'forward') {
    g.output(logits, TRAIN_IO.logits, ft, ['B', 'T', cfg.vocabSize]);
    return { graph: g, params };
  }
  const raw = addGradients(
    g,
    loss,
    params.map((p) => p.name),
    { floatType: ft },
  );
  const grads = new Map<string, string>();
  for (const p of params) {
    let d = raw.get(p.name)!;
    if (kind === 'gradients' || spec.accumulated) {
      const acc = g.input(gradNames(p.name).input, ft, p.shape, 'gradient accumulated over earlier micro-batches of this step');
      d = g.op1('Add', [acc, d], {}, `/accumulate/${p.name}`);
    }
    grads.set(p.name, d);
  }
  if (kind === 'gradients') {
    for (const p of params) g.output(grads.get(p.name)!, gradNames(p.name).output, ft, p.shape);
    return { graph: g, params };
  }
  const norm = emitAdamW(g, ft, params, grads, spec.optimizer);
  g.output(norm, TRAIN_IO.gradNorm, ft, []);
  return { graph: g, params };
}

/** Builds and writes a training graph as `<dir>/<kind>.onnx` (frozen weights as external data); returns its path. */
export function writeTrainGraph(
  spec: TrainGraphSpec,
  kind: TrainGraphKind,
  dir: string,
): { modelPath: string; params: ParamInfo[] } {
  const { graph, params } = buildTrainGraph(spec, kind);
  return { modelPath: writeOnnxModel(graph, dir, kind).modelPath, params };
}
