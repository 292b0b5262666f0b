import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { tensorByteLength } from './dtype.ts';
import { CheckpointError } from './errors.ts';
import { writeSafetensors, type TensorToWrite } from './safetensors.ts';

/** Largest shard written before starting a new `model-0000k-of-0000n.safetensors` file. */
export const DEFAULT_SHARD_BYTES = 4 * 1024 ** 3;

/**
 * Writes `tensors` as `model.safetensors`, or as shards with `model.safetensors.index.json` when they exceed
 * `shardBytes`. Tensors are produced one at a time (see TensorToWrite).
 */
export function writeWeights(
  dir: string,
  tensors: TensorToWrite[],
  shardBytes = DEFAULT_SHARD_BYTES,
  onTensor?: (done: number, total: number) => void,
): void {
  const size = (t: TensorToWrite) => tensorByteLength(t.dtype, t.shape);
  const shards: TensorToWrite[][] = [[]];
  let current = 0;
  for (const t of tensors) {
    if (current > 0 && current + size(t) > shardBytes) {
      shards.push([]);
      current = 0;
    }
    shards[shards.length - 1].push(t);
    current += size(t);
  }
  const total = tensors.length;
  let done = 0;
  const report = () => onTensor?.(++done, total);
  if (shards.length === 1) {
    writeSafetensors(join(dir, 'model.safetensors'), shards[0], {}, report);
    return;
  }
  const weightMap: Record<string, string> = {};
  const n = shards.length;
  shards.forEach((shard, i) => {
    const file = `model-${String(i + 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`;
    writeSafetensors(join(dir, file), shard, {}, report);
    for (const t of shard) weightMap[t.name] = file;
  });
  const totalSize = tensors.reduce((s, t) => s + size(t), 0);
  writeFileSync(
    join(dir, 'model.safetensors.index.json'),
    JSON.stringify({ metadata: { total_size: totalSize }, weight_map: weightMap }, null, 2),
  );
}

/** Throws when `out` exists: a checkpoint is never written over an existing folder. */
export function assertNewFolder(out: string): void {
  if (existsSync(out)) throw new CheckpointError(`${out}: output folder already exists; choose another path or remove it`, out);
}

/**
 * Runs `fill(tmpDir)` in a temporary folder beside `out` and renames it to `out` only when it succeeds, so a failed
 * or interrupted write never leaves a partial checkpoint behind.
 */
export function writeFolderAtomically<T>(out: string, fill: (tmpDir: string) => T): T {
  assertNewFolder(out);
  mkdirSync(dirname(out), { recursive: true });
  const tmp = join(dirname(out), `.${basename(out)}.partial-${process.pid}-${Date.now()}`);
  mkdirSync(tmp);
  const cleanup = () => rmSync(tmp, { recursive: true, force: true });
  process.once('exit', cleanup);
  try {
    const result = fill(tmp);
    renameSync(tmp, out);
    return result;
  } catch (err) {
    cleanup();
    throw err;
  } finally {
    process.removeListener('exit', cleanup);
  }
}
