/**
 * Writes a trained model as an ordinary Hugging Face checkpoint: the base folder's config, tokenizer and other
 * files, and its weights with the trained tensors replaced. Untouched tensors are copied byte for byte; trained
 * ones are stored in the base tensor's dtype. The folder appears only when complete.
 */
import { copyFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Checkpoint } from '../checkpoint/checkpoint.ts';
import { float32ToBytes } from '../checkpoint/dtype.ts';
import type { TensorToWrite } from '../checkpoint/safetensors.ts';
import { writeFolderAtomically, writeWeights } from '../checkpoint/writer.ts';

const WEIGHT_FILE = /^model(-\d+-of-\d+)?\.safetensors(\.index\.json)?$/;

/** Options of `writeTrainedCheckpoint`. */
export interface TrainedCheckpointOptions {
  /** extra files written into the folder (name → contents), e.g. a training log */
  extraFiles?: Record<string, string>;
  onProgress?: (done: number, total: number) => void;
}

/** Copies `base` to `out` with `trained` (Hugging Face name → float32 values) replacing those tensors. */
export function writeTrainedCheckpoint(
  base: Checkpoint,
  out: string,
  trained: ReadonlyMap<string, Float32Array>,
  opts: TrainedCheckpointOptions = {},
): void {
  for (const name of trained.keys()) base.store.entry(name);
  writeFolderAtomically(out, (dir) => {
    const tensors: TensorToWrite[] = [...base.store.entries.values()].map((e) => {
      const values = trained.get(e.name);
      if (!values) return { name: e.name, dtype: e.dtype, shape: e.shape, bytes: () => base.store.readBytes(e.name).bytes };
      if (e.dtype === 'I64') throw new Error(`${e.file}: tensor "${e.name}" is I64 and cannot be trained`);
      return {
        name: e.name,
        dtype: e.dtype,
        shape: e.shape,
        bytes: () => float32ToBytes(values, e.dtype as 'F32' | 'F16' | 'BF16'),
      };
    });
    writeWeights(dir, tensors, undefined, opts.onProgress);
    for (const f of readdirSync(base.dir)) {
      if (WEIGHT_FILE.test(f) || !statSync(join(base.dir, f)).isFile()) continue;
      copyFileSync(join(base.dir, f), join(dir, f));
    }
    for (const [name, text] of Object.entries(opts.extraFiles ?? {})) writeFileSync(join(dir, name), text);
  });
}
