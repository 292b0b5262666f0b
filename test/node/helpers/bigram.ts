/**
 * A checkpoint that deterministically writes a chosen text: every layer contributes nothing (all projections
 * zero), so the logits depend only on the current token's embedding, and embedding and lm_head are set so that
 * token t_k's most likely successor is t_{k+1} (cycling), and every other token's is t_0. Greedy decoding after any
 * prompt then spells the text out from its start —
 * byte-level tokens of multi-byte characters included — which lets tests check streaming and stop strings
 * against known text with a real model through the real engine.
 */
import { join } from 'node:path';
import { PRESETS } from '../../../gpu-backend/src/make/presets.ts';
import { hfConfig } from '../../../gpu-backend/src/make/synthetic.ts';
import { expectedTensors } from '../../../gpu-backend/src/checkpoint/names.ts';
import { parseModelConfig } from '../../../gpu-backend/src/checkpoint/config.ts';
import { writeWeights } from '../../../gpu-backend/src/checkpoint/writer.ts';
import { writeTinyTokenizer } from '../../../gpu-backend/src/make/tiny-tokenizer.ts';
import { TextTokenizer } from '../../../gpu-backend/src/text/tokenizer.ts';
import { writeFileSync } from 'node:fs';
import { tempDir } from './models.ts';

/** Writes the checkpoint; returns its folder and the token cycle (text must tokenize to distinct ids, ≤ 64). */
export function bigramModel(text: string): { dir: string; cycle: number[]; tokenizer: TextTokenizer } {
  const dir = join(tempDir(), 'bigram');
  const p = { ...PRESETS.tiny, tieWordEmbeddings: false };
  writeTinyTokenizer(dir, { vocabSize: p.vocabSize });
  const tokenizer = TextTokenizer.load(join(dir, 'tokenizer.json'), join(dir, 'tokenizer_config.json'));
  const cycle = tokenizer.encode(text, { addSpecialTokens: false });
  const D = p.hiddenSize;
  if (new Set(cycle).size !== cycle.length || cycle.length >= D)
    throw new Error(`"${text}" must tokenize to < ${D} distinct tokens`);
  const inCycle = new Set(cycle);
  const config = hfConfig('llama', p, 'F32', { bos: null, eos: [...tokenizer.eosTokenIds] });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  const cfg = parseModelConfig(config);
  const V = cfg.vocabSize;
  const tensors = expectedTensors(cfg).map((t) => ({
    name: t.name,
    dtype: 'F32' as const,
    shape: t.shape,
    bytes: () => {
      const v = new Float32Array(t.shape.reduce((a, b) => a * b, 1));
      if (t.name.endsWith('norm.weight')) v.fill(1);
      if (t.name === 'model.embed_tokens.weight') {
        cycle.forEach((tok, k) => (v[tok * D + k] = 1));
        // every token outside the cycle shares the last dimension, which leads back to the cycle's start
        for (let tok = 0; tok < V; tok++) if (!inCycle.has(tok)) v[tok * D + D - 1] = 1;
      }
      if (t.name === 'lm_head.weight') {
        cycle.forEach((_, k) => (v[cycle[(k + 1) % cycle.length] * D + k] = 10));
        v[cycle[0] * D + D - 1] = 10;
      }
      return new Uint8Array(v.buffer);
    },
  }));
  writeWeights(dir, tensors);
  if (V < tokenizer.vocabSize) throw new Error('vocabulary too small');
  return { dir, cycle, tokenizer };
}
