/** The toy model's shape and its random starting checkpoint (config, toy tokenizer, seeded weights). */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PRESETS, type ModelPreset } from '../../gpu-backend/src/make/presets.ts';
import { hfConfig, writeRandomCheckpoint } from '../../gpu-backend/src/make/synthetic.ts';
import { writeFolderAtomically } from '../../gpu-backend/src/checkpoint/writer.ts';
import { TextTokenizer } from '../../gpu-backend/src/text/tokenizer.ts';
import { writeToyTokenizer } from './tokenizer.ts';

/** A Qwen2-style decoder small enough to train on two CPU cores in minutes. */
export const TOY_SHAPE: Omit<ModelPreset, 'vocabSize' | 'tokenizer'> = {
  ...PRESETS.tiny,
  hiddenSize: 128,
  numLayers: 4,
  numHeads: 4,
  numKvHeads: 2,
  headDim: 32,
  intermediateSize: 384,
  maxPositions: 256,
  tieWordEmbeddings: true,
};

/** Writes the untrained toy checkpoint into `out`. */
export function writeToyInit(out: string, seed: number): void {
  writeFolderAtomically(out, (dir) => {
    const vocab = writeToyTokenizer(dir);
    const tok = TextTokenizer.load(join(dir, 'tokenizer.json'), join(dir, 'tokenizer_config.json'));
    const eos = [...tok.eosTokenIds];
    // hfConfig takes a whole preset; it does not read the tokenizer field, the vocabulary is the toy tokenizer's
    const config = hfConfig('qwen2', { ...TOY_SHAPE, tokenizer: 'tiny', vocabSize: vocab }, 'F32', { bos: null, eos });
    writeFileSync(join(dir, 'generation_config.json'), JSON.stringify({ eos_token_id: eos[0] }, null, 2));
    writeRandomCheckpoint(dir, config, seed, 'F32');
  });
}
