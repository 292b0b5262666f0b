/**
 * Which files of a hub repo make a model realign can load: its config, its safetensors weights (the single file or
 * the shards its index lists) and its tokenizer and chat template. Everything else in a repo (other weight formats,
 * ONNX exports, READMEs, images) is left on the hub.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ModelSourceError } from './model-id.ts';

/** Small files fetched when the repo has them. */
export const TEXT_FILES = [
  'config.json',
  'generation_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'chat_template.jinja',
  'chat_template.json',
];

export const SINGLE_WEIGHTS = 'model.safetensors';
export const WEIGHT_INDEX = 'model.safetensors.index.json';

/** The shard files a `model.safetensors.index.json` lists. */
export function indexShards(indexText: string, where: string): string[] {
  let weightMap: unknown;
  try {
    weightMap = (JSON.parse(indexText) as { weight_map?: unknown }).weight_map;
  } catch (err) {
    throw new ModelSourceError(`${where}: the weight index is not JSON (${(err as Error).message})`);
  }
  if (typeof weightMap !== 'object' || weightMap === null)
    throw new ModelSourceError(`${where}: the weight index has no weight_map`);
  const shards = [...new Set(Object.values(weightMap))];
  for (const s of shards) {
    // a shard name becomes a path in the cache: only plain top-level safetensors names
    if (typeof s !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]*\.safetensors$/.test(s))
      throw new ModelSourceError(`${where}: weight_map names a shard "${String(s)}" that is not a .safetensors file name`);
  }
  return shards as string[];
}

/**
 * What a model folder still lacks before it can be loaded: config.json and every weight file. Empty means complete.
 * A dangling symlink (a blob removed from the cache) counts as missing.
 */
export function missingModelFiles(dir: string): string[] {
  const missing = ['config.json'].filter((f) => !existsSync(join(dir, f)));
  const index = join(dir, WEIGHT_INDEX);
  if (existsSync(index)) {
    let shards: string[];
    try {
      shards = indexShards(readFileSync(index, 'utf8'), index);
    } catch {
      return [...missing, WEIGHT_INDEX];
    }
    missing.push(...shards.filter((s) => !existsSync(join(dir, s))));
  } else if (!existsSync(join(dir, SINGLE_WEIGHTS))) {
    missing.push(SINGLE_WEIGHTS);
  }
  return missing;
}
