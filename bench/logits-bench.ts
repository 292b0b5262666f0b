/** Comparison d: /v1/logits with 8 λ values against 1, through the real backend, requests in turn. */
import { interleaved, pairedRatio, summarize, type Timing } from './lib/stats.ts';

/** Result of d. */
export interface LogitsBenchResult {
  preset: string;
  one: Timing;
  eight: Timing;
  /** paired median of t(8 λ) / t(1 λ) */
  ratio: number;
}

/** Runs d against a backend serving `model` (an InRa model). */
export async function logitsBench(
  url: string,
  token: string,
  model: string,
  preset: string,
  rounds: number,
): Promise<LogitsBenchResult> {
  const prompt = Array.from({ length: 48 }, (_, i) => `word${i % 17}`).join(' ');
  const call = (lambdas: number[]) => async () => {
    const r = await fetch(`${url}/v1/logits`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model, prompt, lambdas, top_logprobs: 5 }),
    });
    if (r.status !== 200) throw new Error(`logits: ${r.status} ${await r.text()}`);
    await r.arrayBuffer();
  };
  const s = await interleaved({ one: call([0.5]), eight: call([-1, -0.5, 0, 0.25, 0.5, 0.75, 1, 1.5]) }, rounds, 3);
  return { preset, one: summarize(s.one), eight: summarize(s.eight), ratio: pairedRatio(s.eight, s.one) };
}
