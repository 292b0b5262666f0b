import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../../gpu-backend/src/checkpoint/checkpoint.ts';
import { TensorStore } from '../../../gpu-backend/src/checkpoint/safetensors.ts';
import { ReferenceModel, blend } from '../../../gpu-backend/src/reference/forward.ts';
import { openGraph, prefill } from '../helpers/graphs.ts';
import { cleanupTempDirs, relErr } from '../helpers/models.ts';

// The oracle here is Hugging Face transformers itself (see test/fixtures/hf/README.md): logits it computed
// for tiny checkpoints. Tolerance: relative error 1e-4 (max-abs error over the largest reference logit).
const TOL = 1e-4;
const ROOT = join(import.meta.dirname, '../../fixtures/hf');
const fixtures = ['qwen2-tiny', 'qwen2-tiny-tied', 'llama-tiny-rope3'];

afterAll(cleanupTempDirs);

describe.each(fixtures)('Hugging Face fixture %s', (name) => {
  const dir = join(ROOT, name);
  const meta = JSON.parse(readFileSync(join(dir, 'reference.json'), 'utf8')) as { lambdas: number[] };
  const ref = TensorStore.openFile(join(dir, 'reference.safetensors'));
  const ids = ref.readInt64('input_ids');
  const T = ids.length;
  const blendTensor = (lambda: number) => {
    const key = [...ref.entries.keys()].find((k) => k.startsWith('blend_') && Number(k.slice(6)) === lambda);
    if (!key) throw new Error(`${name}: no blend tensor for λ=${lambda}`);
    return ref.readFloat32(key);
  };
  const configs = ['base', 'base-v4-config'].filter((c) => existsSync(join(dir, c)));

  it.each(configs)('the single graph and the TypeScript reference reproduce base_logits (%s config)', async (cfgDir) => {
    const expected = ref.readFloat32('base_logits');
    const g = await openGraph('single', { model: join(dir, cfgDir) });
    const { logits } = await prefill(g, [{ tokens: ids, lambdas: [1] }], true);
    expect(relErr(logits[0][0], expected)).toBeLessThan(TOL);
    const tsRef = new ReferenceModel(openCheckpoint(join(dir, cfgDir)));
    expect(relErr(tsRef.forward(ids).logits, expected)).toBeLessThan(TOL);
  });

  it('the TypeScript reference reproduces the aligned branch and every stored blend', () => {
    const m = new ReferenceModel(openCheckpoint(join(dir, 'inra-trained'), { inraAdapterLayers: 1 }));
    const aligned = m.forward(ids).logits;
    const reference = m.forward(ids, 1).logits;
    expect(relErr(aligned, ref.readFloat32('aligned_logits'))).toBeLessThan(TOL);
    expect(relErr(reference, ref.readFloat32('base_logits'))).toBeLessThan(TOL);
    for (const l of meta.lambdas) expect(relErr(blend(aligned, reference, l), blendTensor(l))).toBeLessThan(TOL);
  });

  it('the inra graph gives base, aligned and every blend from one forward pass', async () => {
    const g = await openGraph('inra', { model: join(dir, 'inra-trained'), inra: 1 });
    const lambdas = [0, 1, ...meta.lambdas];
    const { logits } = await prefill(g, [{ tokens: ids, lambdas }], true);
    expect(g.runner.forwardPasses).toBe(1);
    expect(relErr(logits[0][0], ref.readFloat32('base_logits'))).toBeLessThan(TOL);
    expect(relErr(logits[0][1], ref.readFloat32('aligned_logits'))).toBeLessThan(TOL);
    meta.lambdas.forEach((l, k) => expect(relErr(logits[0][2 + k], blendTensor(l))).toBeLessThan(TOL));
  });

  it('the identity expansion from the original release gives base_logits at every λ', async () => {
    const g = await openGraph('inra', { model: join(dir, 'inra-identity'), inra: 1 });
    const lambdas = [-1, 0, 0.5, 1, 2];
    const { logits } = await prefill(g, [{ tokens: ids, lambdas }], true);
    const expected = ref.readFloat32('base_logits');
    lambdas.forEach((_, k) => expect(relErr(logits[0][k], expected)).toBeLessThan(TOL));
    expect(T).toBeGreaterThanOrEqual(16);
  });
});
