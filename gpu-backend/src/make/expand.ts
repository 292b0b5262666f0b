import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ADAPTER_MARKER } from '../checkpoint/config.ts';
import { openCheckpoint } from '../checkpoint/checkpoint.ts';
import { CheckpointError } from '../checkpoint/errors.ts';
import { layerTensorNames } from '../checkpoint/names.ts';
import type { TensorToWrite } from '../checkpoint/safetensors.ts';
import { writeFolderAtomically, writeWeights } from '../checkpoint/writer.ts';

/** Files copied unchanged from the base checkpoint. */
const TEXT_FILES = [
  'tokenizer.json',
  'tokenizer_config.json',
  'generation_config.json',
  'special_tokens_map.json',
  'vocab.json',
  'merges.txt',
];

/**
 * InRa identity expansion (the original release's layout): k copies of the bottom layer, with the attention output
 * projection and the MLP down projection zeroed (weights and biases), become layers 0..k-1; the original layers
 * move up by k. The result computes exactly the base model's function until the adapters are trained.
 */
export function expandCheckpoint(
  base: string,
  out: string,
  adapterLayers = 1,
  onProgress?: (done: number, total: number) => void,
): void {
  if (!Number.isInteger(adapterLayers) || adapterLayers < 1)
    throw new CheckpointError(`--adapter-layers must be a positive integer, got ${adapterLayers}`);
  const ckpt = openCheckpoint(base);
  if (ckpt.config.adapterLayers > 0) {
    throw new CheckpointError(
      `${base} is already an InRa checkpoint (${ckpt.config.adapterLayers} adapter layers); expand its base model instead`,
      join(base, 'config.json'),
    );
  }
  const k = adapterLayers;
  const n = ckpt.config.numLayers;
  const raw = JSON.parse(readFileSync(join(base, 'config.json'), 'utf8')) as Record<string, unknown>;
  writeFolderAtomically(out, (dir) => {
    const zeroed = new Set<string>();
    const bottom = layerTensorNames(0);
    for (const key of ['o', 'oBias', 'down', 'downBias'] as const) zeroed.add(bottom[key]);
    const tensors: TensorToWrite[] = [];
    const copy = (from: string, to: string, zero: boolean) => {
      const e = ckpt.store.entry(from);
      tensors.push({
        name: to,
        dtype: e.dtype,
        shape: e.shape,
        bytes: () => (zero ? new Uint8Array(e.byteLength) : ckpt.store.readBytes(from).bytes),
      });
    };
    for (const e of ckpt.store.entries.values()) {
      const m = /^model\.layers\.(\d+)\.(.*)$/.exec(e.name);
      if (!m) {
        copy(e.name, e.name, false);
        continue;
      }
      const i = Number(m[1]);
      copy(e.name, `model.layers.${i + k}.${m[2]}`, false);
      if (i === 0) for (let a = 0; a < k; a++) copy(e.name, `model.layers.${a}.${m[2]}`, zeroed.has(e.name));
    }
    writeWeights(dir, tensors, undefined, onProgress);
    const config: Record<string, unknown> = {
      ...raw,
      num_hidden_layers: n + k,
      [ADAPTER_MARKER]: { adapter_layers: k, base_layers: n },
    };
    if (Array.isArray(raw.layer_types)) config.layer_types = [...Array(k).fill(raw.layer_types[0]), ...raw.layer_types];
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2));
    for (const f of TEXT_FILES) if (existsSync(join(base, f))) copyFileSync(join(base, f), join(dir, f));
  });
}
