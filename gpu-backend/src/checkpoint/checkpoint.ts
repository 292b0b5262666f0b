import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultAdapters, readModelConfig, tokenIdList, type ModelConfig } from './config.ts';
import { CheckpointError } from './errors.ts';
import { expectedTensors } from './names.ts';
import { TensorStore } from './safetensors.ts';

/** A Hugging Face model folder, opened: config, weight index, and the paths of its text files. */
export interface Checkpoint {
  dir: string;
  config: ModelConfig;
  store: TensorStore;
  /** `generation_config.json`, or {} when absent */
  generationConfig: Record<string, unknown>;
  tokenizerFile: string | null;
  tokenizerConfigFile: string | null;
}

/** Options for opening a checkpoint. */
export interface OpenOptions {
  /** Treat layers 0..k-1 as InRa adapters even without realign's marker (checkpoints of the original release). */
  inraAdapterLayers?: number;
}

/** Opens a checkpoint folder and checks that every tensor its config implies is present with the right shape. */
export function openCheckpoint(dir: string, opts: OpenOptions = {}): Checkpoint {
  if (!existsSync(dir)) throw new CheckpointError(`${dir}: checkpoint folder does not exist`, dir);
  const config = readModelConfig(dir);
  if (opts.inraAdapterLayers !== undefined && config.adapterLayers === 0) {
    config.adapterLayers = opts.inraAdapterLayers;
    config.adapters = defaultAdapters(opts.inraAdapterLayers);
  }
  if (config.adapterLayers >= config.numLayers) {
    throw new CheckpointError(
      `${join(dir, 'config.json')}: ${config.adapterLayers} adapter layer(s) leave no original layer`,
      join(dir, 'config.json'),
    );
  }
  const store = TensorStore.open(dir);
  for (const t of expectedTensors(config)) store.entry(t.name, t.shape);
  const genFile = join(dir, 'generation_config.json');
  let generationConfig: Record<string, unknown> = {};
  if (existsSync(genFile)) {
    try {
      generationConfig = JSON.parse(readFileSync(genFile, 'utf8'));
    } catch (err) {
      throw new CheckpointError(`${genFile}: not valid JSON (${(err as Error).message})`, genFile);
    }
  }
  return { dir, config, store, generationConfig, ...tokenizerFiles(dir) };
}

/**
 * The tokenizer files of a checkpoint folder (null where absent), without opening its weights: for a thread that
 * needs only the tokenizer while the engine's thread opens and checks the checkpoint itself.
 */
export function tokenizerFiles(dir: string): Pick<Checkpoint, 'tokenizerFile' | 'tokenizerConfigFile'> {
  if (!existsSync(dir)) throw new CheckpointError(`${dir}: checkpoint folder does not exist`, dir);
  const file = (n: string) => (existsSync(join(dir, n)) ? join(dir, n) : null);
  return { tokenizerFile: file('tokenizer.json'), tokenizerConfigFile: file('tokenizer_config.json') };
}

/** EOS ids from generation_config.json, else from config.json. */
export function eosTokenIds(ckpt: Checkpoint): number[] {
  return tokenIdList(ckpt.generationConfig.eos_token_id) ?? ckpt.config.eosTokenIds;
}
