/**
 * Checks emitted gradients against central finite differences: the graph is differentiated, then run once for the
 * analytic gradients and twice per checked element (x ± ε) for the numeric ones. Meant for float64 graphs with
 * tiny inputs, where the two agree to ~1e-9 relative; float32 graphs need a much larger ε and tolerance.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Graph } from '../../graph/ir.ts';
import { encodeOnnxModel } from '../../graph/onnx-writer.ts';
import { ModelSession, type HostTensor } from '../../ort/session.ts';
import { addGradients } from './grad.ts';

/** The result for one differentiated input. */
export interface GradCheckResult {
  name: string;
  analytic: Float64Array;
  numeric: Float64Array;
  /** max |analytic − numeric| / max |numeric| (max |numeric| floored at 1e-12) over the checked elements */
  relErr: number;
  /** max |analytic − numeric| over the checked elements */
  absErr: number;
  /**
   * the rounding floor of the central differences themselves: each loss is computed to within a few ulp of |L|, so
   * (up − down) / 2ε carries an error of about ulp·|L| / ε whatever the gradient's size. Taken as
   * 16 · 2^-52 · max(|L|, 1) / ε. A tensor whose checked gradients are small (|g| ~ 1e-3) can show a relErr of
   * 1e-6 from this floor alone.
   */
  noise: number;
}

/** Options of `gradCheck`. */
export interface GradCheckOptions {
  /** finite-difference step (default 1e-6) */
  eps?: number;
  /** check at most this many elements per input, evenly spread (default: all) */
  maxElements?: number;
}

/**
 * Differentiates the float64 scalar `loss` of `g` with respect to the float64 inputs named in `wrt` and compares
 * the result with central differences at the point `feeds`. `g` is modified (gradient ops and outputs are added).
 */
export async function gradCheck(
  g: Graph,
  loss: string,
  feeds: Record<string, HostTensor>,
  wrt: string[],
  opts: GradCheckOptions = {},
): Promise<GradCheckResult[]> {
  const eps = opts.eps ?? 1e-6;
  const grads = addGradients(g, loss, wrt, { floatType: 'float64' });
  g.output(loss, '/check/loss', 'float64', []);
  for (const w of wrt) g.output(grads.get(w)!, `/check/grad/${w}`, 'float64', g.inputs.find((i) => i.name === w)!.dims);
  const dir = mkdtempSync(join(tmpdir(), 'realign-gradcheck-'));
  try {
    const path = join(dir, 'check.onnx');
    writeFileSync(path, encodeOnnxModel(g));
    const session = await ModelSession.open(path, { device: 'cpu', threads: 1 });
    try {
      const out = await session.run(
        feeds,
        wrt.map((w) => `/check/grad/${w}`),
      );
      const lossAt = async (f: Record<string, HostTensor>) =>
        ((await session.run(f, ['/check/loss']))['/check/loss'].data as Float64Array)[0];
      const noise = (16 * 2 ** -52 * Math.max(Math.abs(await lossAt(feeds)), 1)) / eps;
      const results: GradCheckResult[] = [];
      for (const w of wrt) {
        const base = feeds[w].data as Float64Array;
        const analyticAll = out[`/check/grad/${w}`].data as Float64Array;
        const n = base.length;
        const take = Math.min(n, opts.maxElements ?? n);
        const idx = Array.from({ length: take }, (_, k) => Math.floor((k * n) / take));
        const analytic = Float64Array.from(idx, (i) => analyticAll[i]);
        const numeric = new Float64Array(take);
        for (const [k, i] of idx.entries()) {
          const x = Float64Array.from(base);
          x[i] = base[i] + eps;
          const up = await lossAt({ ...feeds, [w]: { ...feeds[w], data: x } });
          x[i] = base[i] - eps;
          const down = await lossAt({ ...feeds, [w]: { ...feeds[w], data: x } });
          numeric[k] = (up - down) / (2 * eps);
        }
        let num = 0;
        let den = 1e-12;
        for (let k = 0; k < take; k++) {
          num = Math.max(num, Math.abs(analytic[k] - numeric[k]));
          den = Math.max(den, Math.abs(numeric[k]));
        }
        results.push({ name: w, analytic, numeric, relErr: num / den, absErr: num, noise });
      }
      return results;
    } finally {
      await session.release();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
