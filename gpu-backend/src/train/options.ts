/** Hyper-parameters and run settings shared by `train-inra` and `train-trra`. */
import type { Device } from '../ort/session.ts';
import { DEFAULT_ADAMW, type AdamWOptions } from './model/optimizer.ts';

/** How to train (everything but the models and the loss). */
export interface TrainSettings {
  /** sequences per micro-batch */
  batchSize: number;
  /** micro-batches per optimizer step */
  gradAccum: number;
  /** optimizer steps (overrides epochs) */
  steps?: number;
  epochs: number;
  lr: number;
  warmupSteps: number;
  minLrRatio: number;
  optimizer: AdamWOptions;
  seed: number;
  /** longest example in tokens (longer responses are cut) */
  maxLength: number;
  device: Device;
  threads?: number;
  /** save a resumable state every this many steps (0: never) */
  saveEvery: number;
  resume: boolean;
  /** graphs and states; default `<out>.train` */
  workDir?: string;
  /** keep the work folder after success (default: removed) */
  keepWorkDir?: boolean;
}

/** Defaults for small fine-tuning runs. */
export const DEFAULT_SETTINGS: TrainSettings = {
  batchSize: 8,
  gradAccum: 1,
  epochs: 1,
  lr: 1e-4,
  warmupSteps: 10,
  minLrRatio: 0.1,
  optimizer: { ...DEFAULT_ADAMW },
  seed: 0,
  maxLength: 1024,
  device: 'cpu',
  saveEvery: 100,
  resume: false,
};

/** What a finished run reports (also written as `realign_train.json` into the output). */
export interface TrainReport {
  kind: 'inra' | 'trra';
  out: string;
  steps: number;
  /** loss of every optimizer step */
  losses: number[];
  /** response tokens trained on */
  tokens: number;
  seconds: number;
  resumedFrom: number;
  settings: Omit<TrainSettings, 'device' | 'threads' | 'resume' | 'workDir' | 'keepWorkDir'>;
  /** train-trra: λ, KL direction, iterations, LoRA */
  trra?: { lambda: number; kl: 'forward' | 'reverse'; iterations: number; lora: { rank: number; alpha: number } | null };
}

/** The settings recorded in a report. */
export function recordedSettings(s: TrainSettings): TrainReport['settings'] {
  const { device: _d, threads: _t, resume: _r, workDir: _w, keepWorkDir: _k, ...rest } = s;
  return rest;
}
