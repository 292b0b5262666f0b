/** Fixtures of the training tests: tiny checkpoints with tokenizers, and JSONL data sets. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { initModel } from '../../../gpu-backend/src/make/init-model.ts';
import { NormalStream } from '../../../gpu-backend/src/random/normal.ts';
import type { TrainSettings } from '../../../gpu-backend/src/train/options.ts';
import { tempDir } from '../helpers/models.ts';

/** A tiny checkpoint (preset `tiny`, tiny tokenizer with a ChatML template) in a temporary folder. */
export function tinyModelWithTokenizer(arch: 'qwen2' | 'llama', seed: number): string {
  const dir = join(tempDir(), 'model');
  initModel(dir, { arch, preset: 'tiny', seed, dtype: 'F32' });
  return dir;
}

const WORDS = ['red', 'green', 'blue', 'fox', 'dog', 'sun', 'moon', 'tea', 'code', 'time', 'one', 'two', 'three'];

/** A JSONL file of `n` prompt/response pairs where the response is a simple function of the prompt. */
export function writeDataset(n: number, seed: number): string {
  const rng = new NormalStream(seed);
  const pick = () => WORDS[Math.floor(rng.uniform() * WORDS.length)];
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const words = Array.from({ length: 2 + Math.floor(rng.uniform() * 3) }, pick);
    lines.push(JSON.stringify({ prompt: `repeat: ${words.join(' ')}`, response: `${words.join(' ')} ${words.join(' ')}` }));
  }
  const file = join(tempDir(), 'data.jsonl');
  writeFileSync(file, lines.join('\n') + '\n');
  return file;
}

/** Small, fast settings for tests (single-threaded, so runs are bit-reproducible). */
export function testSettings(over: Partial<TrainSettings> = {}): TrainSettings {
  return {
    batchSize: 4,
    gradAccum: 1,
    epochs: 1,
    lr: 1e-2,
    warmupSteps: 0,
    minLrRatio: 1,
    optimizer: { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, maxGradNorm: 0 },
    seed: 1,
    maxLength: 64,
    device: 'cpu',
    threads: 1,
    saveEvery: 0,
    resume: false,
    ...over,
  };
}
