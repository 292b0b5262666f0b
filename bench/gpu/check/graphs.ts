/**
 * gpu-check graphs: CUDA graphs on against off (issue 14 item 4). Two runners of the same InRa model with the sampling
 * block, one with captured decode steps (engine/captured-steps.ts) and one without, take the same decode steps in
 * turn (B sequences, λ = 0.5, even rows greedy, odd rows temperature 0.8 top_p 0.95, the same u on both sides, the
 * tokens of the runner without graphs fed to both): ms per decode step on each side, the share of rows where the
 * captured side chose the same token, the relative error of row 0's logits between the sides, and the capture's
 * counters (captured runs, steps that fell back, graph ids, the error that turned capture off, if any).
 */
import { join } from 'node:path';
import type { DeviceSampled, SamplingFeed } from '../../../gpu-backend/src/engine/graph-runner.ts';
import { loadModel } from '../../../gpu-backend/src/engine/model-loader.ts';
import { RowAllocator, branchesFor, type RowHandle } from '../../../gpu-backend/src/engine/rows.ts';
import { values, device, maxContext, log, save, need, graphCache } from './context.ts';

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[s.length >> 1] : NaN;
};

function relErr(a: Float32Array, b: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-30));
}

/** The sampling inputs of step k for B rows. */
function feed(B: number, k: number): SamplingFeed {
  return {
    uniform: Float64Array.from({ length: B }, (_, b) => (((b * 7919 + k * 104729) % 9973) + 0.5) / 9973),
    temperature: Float64Array.from({ length: B }, (_, b) => (b % 2 ? 0.8 : 0)),
    topP: Float64Array.from({ length: B }, (_, b) => (b % 2 ? 0.95 : 1)),
    minP: new Float64Array(B),
    topK: new BigInt64Array(B),
    top: false,
  };
}

export async function graphs(): Promise<void> {
  const dir = need('dir', values.dir);
  const out = need('out', values.out);
  const P = Number(values.prompt);
  const steps = Number(values.tokens);
  const batches = values.batches!.split(',').map(Number);
  const maxB = Math.max(...batches);
  const table: Record<string, unknown>[] = [];
  const res: Record<string, unknown> = {
    device,
    promptTokens: P,
    steps,
    lambda: 0.5,
    rows: 'even rows greedy, odd rows temperature 0.8 top_p 0.95, the same u on both sides',
    table,
  };
  save(out, res);
  const t0 = performance.now();
  const load = (cudaGraphs: 'on' | 'off') =>
    loadModel(
      { mode: 'inra', model: join(dir, 'inra') },
      {
        device,
        maxContext,
        graphCache: graphCache(),
        kvRows: 2 * maxB,
        deviceSampling: true,
        cudaGraphs,
        log: (m, f) => log(`cuda graphs ${cudaGraphs}: ${m} ${JSON.stringify(f ?? {})}`),
      },
    );
  const off = await load('off');
  const on = await load('on');
  res.loadMs = performance.now() - t0;
  res.captureAttached = on.runner.capture !== null;
  save(out, res);
  const vocab = off.vocabSize;
  for (const B of batches) {
    log(`cuda graphs on/off: batch ${B}`);
    const sides = [off, on].map((m) => ({ runner: m.runner, rows: new RowAllocator(m.runner), handles: [] as RowHandle[] }));
    try {
      for (const s of sides) {
        s.handles = Array.from({ length: B }, () => s.rows.add(branchesFor('inra', [0.5])));
        const plan = s.rows.prefillPlan(
          s.handles.map((handle, i) => ({
            handle,
            tokens: Array.from({ length: P }, (_, j) => (j * 37 + i * 11) % Math.min(vocab, 1000)),
            lambdas: [0.5],
          })),
        );
        await s.runner.step(plan);
        s.rows.commit(plan);
      }
      const before = on.runner.capture ? { ...on.runner.capture.stats } : null;
      const ms: number[][] = [[], []];
      let same = 0;
      let rows = 0;
      let logitsErr = 0;
      let tokens = Array.from({ length: B }, (_, b) => 1 + b);
      for (let k = 0; k < steps; k++) {
        const got: DeviceSampled[] = [];
        for (const [i, s] of sides.entries()) {
          const plan = s.rows.decodePlan(new Map(s.handles.map((h, b) => [h.id, { token: tokens[b], lambdas: [0.5] }])));
          const start = performance.now();
          const r = await s.runner.stepSampled(plan, feed(B, k));
          ms[i].push(performance.now() - start);
          s.rows.commit(plan);
          got.push(r);
        }
        for (let b = 0; b < B; b++) {
          rows++;
          if (got[1].token[b] === got[0].token[b]) same++;
        }
        if (k === 0 || k === steps - 1) logitsErr = Math.max(logitsErr, relErr(got[1].logitsRow(0), got[0].logitsRow(0)));
        tokens = Array.from(got[0].token, (t) => (t >= 0n ? Number(t) : 0));
      }
      // ORT runs a graph id a few times before it captures: the first steps are left out of the medians
      const skip = Math.min(3, Math.max(0, steps - 2));
      const offMs = median(ms[0].slice(skip));
      const onMs = median(ms[1].slice(skip));
      const stats = on.runner.capture?.stats;
      table.push({
        batch: B,
        offMsPerStep: offMs,
        onMsPerStep: onMs,
        speedup: offMs / onMs,
        tokenAgreement: same / rows,
        logitsRelErrRow0: logitsErr,
        capturedRuns: stats && before ? stats.runs - before.runs : 0,
        fallbacks: stats && before ? stats.fallbacks - before.fallbacks : 0,
        graphIds: stats?.graphIds ?? 0,
        captureError: on.runner.captureError?.message ?? null,
      });
      log(JSON.stringify(table.at(-1)));
    } catch (err) {
      table.push({ batch: B, error: String((err as Error).stack ?? err) });
    } finally {
      for (const s of sides) for (const h of s.handles) s.rows.remove(h);
    }
    save(out, res);
  }
  await off.runner.release();
  await on.runner.release();
  res.finishedMs = performance.now() - t0;
  save(out, res);
}
