import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Architecture } from '../checkpoint/config.ts';
import type { DType } from '../checkpoint/dtype.ts';
import { CheckpointError } from '../checkpoint/errors.ts';
import { PRESETS, type ModelPreset } from './presets.ts';
import { hfConfig, writeRandomCheckpoint, type ScaledInit } from './synthetic.ts';
import { writeFolderAtomically } from '../checkpoint/writer.ts';
import { copyBundledTokenizer, writeTinyTokenizer } from './tiny-tokenizer.ts';
import { TextTokenizer } from '../text/tokenizer.ts';

/** What `realign init-model` makes. */
export interface InitModelOptions {
  arch: Architecture;
  preset: string;
  seed: number;
  dtype: DType;
  /** overrides of the preset's shape */
  overrides?: Partial<ModelPreset>;
  onProgress?: (done: number, total: number) => void;
  /** opt-in GPT-2-style weights (synthetic.ts ScaledInit); the default draws are unchanged without it */
  init?: ScaledInit;
}

/** Writes a Hugging Face checkpoint (config, tokenizer, seeded random weights); returns its config.json contents. */
export function initModel(out: string, opts: InitModelOptions): Record<string, unknown> {
  const base = PRESETS[opts.preset];
  if (!base) throw new CheckpointError(`unknown preset "${opts.preset}"; choose one of: ${Object.keys(PRESETS).join(', ')}`);
  const p: ModelPreset = { ...base, ...opts.overrides };
  const arch = p.architecture ?? opts.arch;
  return writeFolderAtomically(out, (dir) => {
    const tok = writeTokenizer(dir, p);
    const config = hfConfig(arch, p, opts.dtype, tok);
    writeFileSync(
      join(dir, 'generation_config.json'),
      JSON.stringify({ bos_token_id: config.bos_token_id, eos_token_id: config.eos_token_id }, null, 2),
    );
    writeRandomCheckpoint(dir, config, opts.seed, opts.dtype, opts.onProgress, opts.init);
    return config;
  });
}

function writeTokenizer(dir: string, p: ModelPreset): { bos: number | null; eos: number[] } {
  if (p.tokenizer === 'tiny') writeTinyTokenizer(dir, { vocabSize: p.vocabSize });
  else copyBundledTokenizer(p.tokenizer, dir);
  const tok = TextTokenizer.load(join(dir, 'tokenizer.json'), join(dir, 'tokenizer_config.json'));
  if (tok.vocabSize > p.vocabSize) {
    throw new CheckpointError(
      `tokenizer has ${tok.vocabSize} tokens but the model's vocabulary is ${p.vocabSize}`,
      join(dir, 'tokenizer.json'),
    );
  }
  return { bos: tok.bosTokenId, eos: [...tok.eosTokenIds] };
}
