import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../../gpu-backend/src/checkpoint/checkpoint.ts';
import { parseModelConfig } from '../../../gpu-backend/src/checkpoint/config.ts';
import { PRESETS } from '../../../gpu-backend/src/make/presets.ts';
import { hfConfig } from '../../../gpu-backend/src/make/synthetic.ts';
import { ReferenceModel, blend } from '../../../gpu-backend/src/reference/forward.ts';
import { TextTokenizer } from '../../../gpu-backend/src/text/tokenizer.ts';
import { realign } from '../helpers/cli.ts';
import { cleanupTempDirs, tempDir, testSeed } from '../helpers/models.ts';

afterAll(cleanupTempDirs);

describe('realign CLI', () => {
  const seed = testSeed();

  it(`init-model, expand and logits work together; logits prints the top-k of the λ-blend (seed ${seed})`, async () => {
    const work = tempDir();
    const a = join(work, 'aligned');
    const r = join(work, 'reference');
    await realign(['init-model', a, '--arch', 'qwen2', '--preset', 'tiny', '--seed', String(seed)], work);
    await realign(['init-model', r, '--arch', 'qwen2', '--preset', 'tiny', '--seed', String(seed + 1)], work);
    for (const f of ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'])
      expect(existsSync(join(a, f))).toBe(true);
    const e = join(work, 'expanded');
    await realign(['expand', r, e, '--adapter-layers', '2'], work);
    const ecfg = JSON.parse(readFileSync(join(e, 'config.json'), 'utf8'));
    expect(ecfg.num_hidden_layers).toBe(PRESETS.tiny.numLayers + 2);
    expect(ecfg.realign_inra).toEqual({ adapter_layers: 2, base_layers: PRESETS.tiny.numLayers });

    const prompt = 'The λ knob: 世界 🙂';
    const { stdout } = await realign(
      ['logits', '--reference', r, '--aligned', a, '--prompt', prompt, '--lambda', '0,0.5,1.5', '--top', '4', '--device', 'cpu'],
      work,
    );
    const out = JSON.parse(stdout) as { results: { lambda: number; top: { id: number; token: string; logprob: number }[] }[] };
    const tok = TextTokenizer.load(join(r, 'tokenizer.json'), join(r, 'tokenizer_config.json'));
    const ids = tok.encode(prompt);
    const V = PRESETS.tiny.vocabSize;
    const za = new ReferenceModel(openCheckpoint(a)).forward(ids).logits.subarray((ids.length - 1) * V);
    const zr = new ReferenceModel(openCheckpoint(r)).forward(ids).logits.subarray((ids.length - 1) * V);
    expect(out.results.map((x) => x.lambda)).toEqual([0, 0.5, 1.5]);
    for (const res of out.results) {
      const z = blend(za, zr, res.lambda);
      let max = -Infinity;
      for (const v of z) max = Math.max(max, v);
      let sum = 0;
      for (const v of z) sum += Math.exp(v - max);
      const lse = max + Math.log(sum);
      const best = [...z.keys()].sort((i, j) => z[j] - z[i]).slice(0, 4);
      expect(res.top.map((t) => t.id)).toEqual(best);
      res.top.forEach((t) => expect(Math.abs(t.logprob - (z[t.id] - lse))).toBeLessThan(1e-4));
      expect(res.top[0].token).toBe(tok.tokenString(res.top[0].id));
    }
  }, 120_000);

  it('usage errors exit with status 2 and say what to change', async () => {
    const work = tempDir();
    await expect(realign(['init-model', join(work, 'x'), '--preset', 'huge', '--seed', '1'], work)).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/--preset.*Allowed choices/),
    });
    await expect(realign(['logits', '--model', work, '--lambda', 'NaN'], work)).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/--lambda.*finite number/),
    });
    await expect(realign(['logits', '--model', work, '--lambda', '1'], work)).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/--prompt <text>' not specified/),
    });
    await expect(realign(['frobnicate'], work)).rejects.toMatchObject({ code: 2 });
    expect(existsSync(join(work, 'x'))).toBe(false);
  }, 60_000);
});

describe('presets', () => {
  it.each(Object.keys(PRESETS))('%s has a valid config and a tokenizer that fits its vocabulary', (name) => {
    const p = PRESETS[name];
    const cfg = parseModelConfig(hfConfig(p.architecture ?? 'qwen2', p, 'F16', { bos: null, eos: [0] }));
    expect(cfg.numHeads % cfg.numKvHeads).toBe(0);
    expect(cfg.headDim % 16).toBe(0); // GroupQueryAttention with rotary needs a multiple of 16
    if (name === 'tiny') {
      expect(cfg.numLayers).toBeLessThanOrEqual(4);
      expect(cfg.numKvHeads).toBeLessThan(cfg.numHeads);
    }
  });

  it('the real shapes use the real tokenizers, which fit their vocabularies', async () => {
    const { copyBundledTokenizer } = await import('../../../gpu-backend/src/make/tiny-tokenizer.ts');
    for (const [name, kind] of [
      ['r1-distill-qwen-1.5b', 'qwen'],
      ['llama-3.2-1b', 'llama3'],
    ] as const) {
      const dir = tempDir();
      copyBundledTokenizer(kind, dir);
      const tok = TextTokenizer.load(join(dir, 'tokenizer.json'), join(dir, 'tokenizer_config.json'));
      expect(tok.vocabSize).toBeGreaterThan(100_000);
      expect(tok.vocabSize).toBeLessThanOrEqual(PRESETS[name].vocabSize);
    }
  });
});
