import { existsSync, readdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../../gpu-backend/src/checkpoint/checkpoint.ts';
import { CheckpointError } from '../../../gpu-backend/src/checkpoint/errors.ts';
import { expandCheckpoint } from '../../../gpu-backend/src/make/expand.ts';
import { TensorStore } from '../../../gpu-backend/src/checkpoint/safetensors.ts';
import { writeFolderAtomically, writeWeights } from '../../../gpu-backend/src/checkpoint/writer.ts';
import { cleanupTempDirs, tempDir, testSeed, tinyCheckpoint } from '../helpers/models.ts';

afterAll(cleanupTempDirs);

/** Rewrites a checkpoint's weights through `edit` (drop or reshape tensors). */
function rewriteWeights(dir: string, edit: (name: string, shape: number[]) => number[] | null): void {
  const store = TensorStore.open(dir);
  const kept = [...store.entries.values()].flatMap((e) => {
    const shape = edit(e.name, e.shape);
    if (!shape) return [];
    const bytes = store.readBytes(e.name).bytes;
    const n = shape.reduce((a, b) => a * b, 1) * 4;
    return [{ name: e.name, dtype: e.dtype, shape, bytes: () => (n <= bytes.length ? bytes.slice(0, n) : new Uint8Array(n)) }];
  });
  writeWeights(dir, kept);
}

function editConfig(dir: string, edit: (c: Record<string, unknown>) => void): void {
  const c = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  edit(c);
  writeFileSync(join(dir, 'config.json'), JSON.stringify(c));
}

const seed = testSeed();
const broken: { name: string; make: (dir: string) => void; file: RegExp; key: RegExp }[] = [
  {
    name: 'a missing tensor',
    make: (d) => rewriteWeights(d, (n, s) => (n === 'model.layers.1.mlp.up_proj.weight' ? null : s)),
    file: /model\.safetensors/,
    key: /model\.layers\.1\.mlp\.up_proj\.weight/,
  },
  {
    name: 'a tensor of the wrong shape',
    make: (d) => rewriteWeights(d, (n, s) => (n === 'model.layers.0.self_attn.k_proj.weight' ? [s[0] - 8, s[1]] : s)),
    file: /model\.safetensors/,
    key: /model\.layers\.0\.self_attn\.k_proj\.weight/,
  },
  {
    name: 'a truncated safetensors file',
    make: (d) => truncateSync(join(d, 'model.safetensors'), Math.floor(readFileSync(join(d, 'model.safetensors')).length * 0.6)),
    file: /model\.safetensors/,
    key: /truncated/,
  },
  {
    name: 'an unknown architecture',
    make: (d) => editConfig(d, (c) => (c.architectures = ['MistralForCausalLM'])),
    file: /config\.json/,
    key: /MistralForCausalLM/,
  },
  {
    name: 'a missing config key',
    make: (d) => editConfig(d, (c) => delete c.intermediate_size),
    file: /config\.json/,
    key: /intermediate_size/,
  },
];

describe(`broken checkpoints (seed ${seed})`, () => {
  it.each(broken)(
    '$name: the error names the file and the tensor or key, and expand leaves no output behind',
    ({ make, file, key }) => {
      const dir = tinyCheckpoint({ arch: 'qwen2', seed });
      make(dir);
      let err: unknown;
      try {
        openCheckpoint(dir);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(CheckpointError);
      expect((err as Error).message).toMatch(file);
      expect((err as Error).message).toMatch(key);

      const out = join(tempDir(), 'expanded');
      expect(() => expandCheckpoint(dir, out, 1)).toThrow(CheckpointError);
      expect(existsSync(out)).toBe(false);
      expect(readdirSync(dirname(out))).toEqual([]);
    },
  );

  it('a shard listed in the index but missing is named', () => {
    const dir = tinyCheckpoint({ arch: 'llama', seed });
    writeFileSync(
      join(dir, 'model.safetensors.index.json'),
      JSON.stringify({ weight_map: { 'model.norm.weight': 'model-00002-of-00002.safetensors' } }),
    );
    expect(() => openCheckpoint(dir)).toThrow(/model-00002-of-00002\.safetensors/);
  });

  it('a write that fails half way (a tensor that cannot be read) leaves neither the folder nor a partial one', () => {
    const dir = tinyCheckpoint({ arch: 'qwen2', seed });
    const store = TensorStore.open(dir);
    const parent = tempDir();
    const out = join(parent, 'copy');
    const tensors = [...store.entries.values()].map((e, i) => ({
      name: e.name,
      dtype: e.dtype,
      shape: e.shape,
      bytes: () => {
        if (i === 5) throw new CheckpointError(`${e.file}: simulated read failure of "${e.name}"`, e.file, e.name);
        return store.readBytes(e.name).bytes;
      },
    }));
    expect(() => writeFolderAtomically(out, (tmp) => writeWeights(tmp, tensors))).toThrow(/simulated read failure/);
    expect(readdirSync(parent)).toEqual([]);
  });
});
