/** gpu-check ref-logits, logits and compare: the check ids' last logits per λ (reference, engine graph) compared. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { openCheckpoint } from '../../../gpu-backend/src/checkpoint/checkpoint.ts';
import { loadModel } from '../../../gpu-backend/src/engine/model-loader.ts';
import { RowAllocator } from '../../../gpu-backend/src/engine/rows.ts';
import { ReferenceModel, blend } from '../../../gpu-backend/src/reference/forward.ts';
import { values, device, maxContext, log, save, need, graphCache } from './context.ts';
import { TARGETS } from './report.ts';

/** What both sides compute logits for: fixed ids (below every vocabulary the check uses) and the λ rows. */
export const CHECK_LAMBDAS = [0, 0.5, 1];
const checkIds = (vocab: number) => Array.from({ length: 32 }, (_, i) => (i * 7919 + 17) % Math.min(vocab, 150000));

/** The float64 reference forward standing in for transformers when a dry run has no torch. */
export function refLogits(): void {
  const dir = need('dir', values.dir);
  const inra = openCheckpoint(join(dir, 'inra'));
  const ids = checkIds(inra.config.vocabSize);
  const last = (z: Float64Array) => z.subarray(z.length - inra.config.vocabSize);
  const za = last(new ReferenceModel(inra).forward(ids).logits);
  const zr = last(new ReferenceModel(openCheckpoint(join(dir, 'base'))).forward(ids).logits);
  const rows = CHECK_LAMBDAS.map((l) => Array.from(blend(za, zr, l)));
  save(need('out', values.out), {
    source: 'realign float64 reference forward (dry run: no transformers here)',
    input_ids: ids,
    lambdas: CHECK_LAMBDAS,
    last_logits: rows,
  });
}

/** The engine's own graph (loadModel: same spec and cache as the engine stage): the check ids' last logits per λ. */
export async function logits(): Promise<void> {
  const dir = need('dir', values.dir);
  const out = need('out', values.out);
  const inra = openCheckpoint(join(dir, 'inra'));
  const ids = checkIds(inra.config.vocabSize);
  const res: Record<string, unknown> = { device, input_ids: ids, lambdas: CHECK_LAMBDAS };
  const t0 = performance.now();
  const model = await loadModel({ mode: 'inra', model: join(dir, 'inra') }, { device, maxContext, graphCache: graphCache() });
  Object.assign(res, { loadMs: performance.now() - t0, graphBuildMs: model.buildMs, sessionDevice: model.device });
  const V = model.vocabSize;
  const rows = new RowAllocator(model.runner);
  const h = rows.add({ aligned: true, reference: true });
  const step = await model.runner.step(rows.prefillPlan([{ handle: h, tokens: ids, lambdas: CHECK_LAMBDAS }]));
  res.last_logits = CHECK_LAMBDAS.map((_, k) => Array.from(step.logits.subarray(k * V, (k + 1) * V)));
  rows.remove(h);
  await model.runner.release();
  save(out, res);
  log(`logits of ${ids.length} ids at λ ${CHECK_LAMBDAS.join(', ')} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

/** Ours against the reference: max |ours − theirs| / max |theirs| and the argmax, per λ. */
export function compare(): void {
  type Logits = { source?: string; device?: string; input_ids: number[]; lambdas: number[]; last_logits: number[][] };
  const ours = JSON.parse(readFileSync(need('ours', values.ours), 'utf8')) as Logits;
  const ref = JSON.parse(readFileSync(need('ref', values.ref), 'utf8')) as Logits;
  if (
    JSON.stringify(ours.input_ids) !== JSON.stringify(ref.input_ids) ||
    JSON.stringify(ours.lambdas) !== JSON.stringify(ref.lambdas)
  ) {
    throw new Error('the two sides computed logits for different ids or λ');
  }
  const argmax = (a: number[]) => a.reduce((best, v, i) => (v > a[best] ? i : best), 0);
  const rows = ref.lambdas.map((lambda, k) => {
    const a = ours.last_logits[k];
    const b = ref.last_logits[k];
    if (a.length !== b.length) throw new Error(`vocabulary sizes differ: ${a.length} against ${b.length}`);
    let num = 0;
    let den = 0;
    for (let i = 0; i < b.length; i++) {
      num = Math.max(num, Math.abs(a[i] - b[i]));
      den = Math.max(den, Math.abs(b[i]));
    }
    const relErr = num / den;
    const argmaxEqual = argmax(a) === argmax(b);
    return { lambda, relErr, argmaxEqual, ours: argmax(a), theirs: argmax(b), pass: relErr <= TARGETS.relErr && argmaxEqual };
  });
  const res = { reference: ref.source ?? 'transformers float32', device: ours.device, rows };
  save(need('out', values.out), res);
  log(`compare: ${JSON.stringify(rows)}`);
}
