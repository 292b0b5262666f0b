/**
 * Issue 17's memory check: a random r1-distill-qwen-7b-shape BF16 checkpoint (config, Qwen tokenizer, 339 tensors,
 * 15 GB) written tensor by tensor. The values come from a fast xorshift uniform generator with synthetic.ts' std
 * (init-model's Gaussian generator would take hours for 7.6 B values on two shared cores); serving's memory and
 * speed do not depend on them. Used by bench/quantized-7b-serve.sh.
 *
 *   node --import tsx bench/quantized-7b-checkpoint.ts /tmp/r7b/ckpt
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseModelConfig } from '../gpu-backend/src/checkpoint/config.ts';
import { expectedTensors } from '../gpu-backend/src/checkpoint/names.ts';
import { writeWeights } from '../gpu-backend/src/checkpoint/writer.ts';
import { PRESETS } from '../gpu-backend/src/make/presets.ts';
import { hfConfig } from '../gpu-backend/src/make/synthetic.ts';
import { copyBundledTokenizer } from '../gpu-backend/src/make/tiny-tokenizer.ts';
import { TextTokenizer } from '../gpu-backend/src/text/tokenizer.ts';
const dir = process.argv[2];
mkdirSync(dir, { recursive: true });
const p = PRESETS['r1-distill-qwen-7b'];
copyBundledTokenizer('qwen', dir);
const tok = TextTokenizer.load(join(dir, 'tokenizer.json'), join(dir, 'tokenizer_config.json'));
const config = hfConfig('qwen2', p, 'BF16', { bos: tok.bosTokenId, eos: [...tok.eosTokenIds] });
writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2));
writeFileSync(
  join(dir, 'generation_config.json'),
  JSON.stringify({ bos_token_id: config.bos_token_id, eos_token_id: config.eos_token_id }),
);
const cfg = parseModelConfig(config, join(dir, 'config.json'));
const std = Math.min(0.08, 1 / Math.sqrt(cfg.hiddenSize));
let s = 0x9e3779b9;
const f = new Float32Array(1);
const u = new Uint32Array(f.buffer);
const t0 = Date.now();
writeWeights(
  dir,
  expectedTensors(cfg).map((t) => ({
    name: t.name,
    dtype: 'BF16' as const,
    shape: t.shape,
    bytes: () => {
      const n = t.shape.reduce((a, b) => a * b, 1);
      const out = new Uint16Array(n);
      const norm = t.name.endsWith('norm.weight');
      const a = norm ? 0.2 * Math.sqrt(3) : 2 * Math.sqrt(3) * std;
      const c = norm ? 1 : 0;
      for (let i = 0; i < n; i++) {
        s ^= s << 13;
        s ^= s >>> 17;
        s ^= s << 5;
        f[0] = c + a * ((s >>> 0) / 4294967296 - 0.5);
        out[i] = u[0] >>> 16;
      }
      return new Uint8Array(out.buffer);
    },
  })),
  undefined,
  (d, n) => {
    if (d % 20 === 0 || d === n) process.stderr.write(`${d}/${n} tensors ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
  },
);
console.log('done', (Date.now() - t0) / 1000);
