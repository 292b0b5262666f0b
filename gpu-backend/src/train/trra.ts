/**
 * Training-time realignment (`realign train-trra`): the student starts from the reference model and learns, at the
 * response positions of the data, the teacher softmax(λ·z_aligned + (1 − λ)·z_reference) by KL divergence over the
 * vocabulary. Small models are fine-tuned in full; larger ones through LoRA factors merged into the output. With
 * several iterations (TrRa-iter) the last student becomes the aligned model of the next iteration's teacher, and
 * every iteration's student starts again from the reference.
 */
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { openCheckpoint, type Checkpoint } from '../checkpoint/checkpoint.ts';
import { assertNewFolder } from '../checkpoint/writer.ts';
import { loadDataset } from './data.ts';
import { tokenizerOf } from './inra.ts';
import { recordedSettings, type TrainReport, type TrainSettings } from './options.ts';
import { writeTrainedCheckpoint } from './output.ts';
import { loraPairs, mergeLora, type TrainableSpec } from './params.ts';
import type { TrainProgress } from './progress.ts';
import { FusionTeacher } from './teacher.ts';
import { train } from './trainer.ts';

/** Inputs of `trainTrra`. */
export interface TrainTrraOptions extends TrainSettings {
  reference: string;
  aligned: string;
  lambda: number;
  data: string;
  out: string;
  /** train LoRA factors of this rank (null: every tensor) */
  lora: { rank: number; alpha: number } | null;
  /** forward: KL(teacher ‖ student); reverse: KL(student ‖ teacher), the paper's objective */
  kl: 'forward' | 'reverse';
  iterations: number;
  /** where the fusion teacher graph is built (default inside the work folder) */
  graphCache?: string;
  progress?: TrainProgress;
}

/** Runs TrRa (and TrRa-iter) and writes the final student to `out`. */
export async function trainTrra(o: TrainTrraOptions): Promise<TrainReport> {
  assertNewFolder(o.out);
  if (!Number.isInteger(o.iterations) || o.iterations < 1)
    throw new RangeError(`--iterations must be a positive integer, got ${o.iterations}`);
  const reference = openCheckpoint(o.reference);
  const { tok, eos, pad } = tokenizerOf(reference.tokenizerFile, reference.tokenizerConfigFile, o.reference);
  const examples = loadDataset(o.data, tok, { eos, maxLength: o.maxLength });
  const workDir = o.workDir ?? `${o.out}.train`;
  const trainable: TrainableSpec = o.lora ? { kind: 'lora', rank: o.lora.rank, alpha: o.lora.alpha } : { kind: 'full' };
  let alignedDir = o.aligned;
  const losses: number[] = [];
  let tokens = 0;
  let seconds = 0;
  let resumedFrom = 0;
  for (let it = 1; it <= o.iterations; it++) {
    const last = it === o.iterations;
    const studentDir = last ? o.out : join(workDir, `student-${it}`);
    if (!last && existsSync(studentDir)) {
      o.progress?.note(`iteration ${it}: student already trained (${studentDir})`);
      alignedDir = studentDir;
      continue;
    }
    const aligned = openCheckpoint(alignedDir);
    const rest = 1 - o.lambda;
    o.progress?.note(
      `iteration ${it}/${o.iterations}: teacher = softmax(${o.lambda}·z(${alignedDir}) ${rest < 0 ? '−' : '+'} ${Math.abs(rest)}·z(${o.reference}))`,
    );
    const teacher = await FusionTeacher.open(reference, aligned, o.lambda, {
      device: o.device,
      threads: o.threads,
      maxContext: o.maxLength,
      graphCache: o.graphCache ?? join(workDir, 'teacher-graphs'),
    });
    let result;
    try {
      result = await train({
        ...o,
        ckpt: reference,
        trainable,
        loss: o.kl === 'forward' ? 'kl-forward' : 'kl-reverse',
        examples,
        padId: pad,
        teacher,
        workDir: join(workDir, `iter-${it}`),
        fingerprintExtra: { lambda: o.lambda, kl: o.kl, iteration: it, aligned: alignedDir },
      });
    } finally {
      await teacher.close();
    }
    losses.push(...result.losses);
    tokens += result.tokens;
    seconds += result.seconds;
    resumedFrom = Math.max(resumedFrom, result.resumedFrom);
    const report = trraReport(o, losses, tokens, seconds, resumedFrom, it);
    writeTrainedCheckpoint(reference, studentDir, studentTensors(reference, trainable, result.params), {
      extraFiles: { 'realign_train.json': JSON.stringify(report, null, 2) },
    });
    alignedDir = studentDir;
  }
  if (!o.keepWorkDir) rmSync(workDir, { recursive: true, force: true });
  return trraReport(o, losses, tokens, seconds, resumedFrom, o.iterations);
}

function trraReport(
  o: TrainTrraOptions,
  losses: number[],
  tokens: number,
  seconds: number,
  resumedFrom: number,
  iterations: number,
): TrainReport {
  return {
    kind: 'trra',
    out: o.out,
    steps: losses.length,
    losses,
    tokens,
    seconds,
    resumedFrom,
    settings: recordedSettings(o),
    trra: { lambda: o.lambda, kl: o.kl, iterations, lora: o.lora },
  };
}

/** The student's tensors in checkpoint form: trained tensors as they are, LoRA factors merged into their weights. */
function studentTensors(
  reference: Checkpoint,
  trainable: TrainableSpec,
  params: Map<string, Float32Array>,
): Map<string, Float32Array> {
  if (trainable.kind !== 'lora') return params;
  const out = new Map<string, Float32Array>();
  for (const pair of loraPairs(reference.config, trainable)) {
    const [rows, cols] = reference.store.entry(pair.weight).shape;
    out.set(
      pair.weight,
      mergeLora(reference.store.readFloat32(pair.weight), params.get(pair.a)!, params.get(pair.b)!, pair, rows, cols),
    );
  }
  return out;
}
