import { afterAll, describe, expect, it } from 'vitest';
import { drawBounded, UNDECIDED, type DrawJob } from './draw-bounded.ts';
import { DrawPool } from './draw-pool.ts';
import { samplingParams, type SamplingParams } from './params.ts';
import { Rng } from './rng.ts';
import { NonFiniteLogitsError, SequenceSampler } from './sampler.ts';

const V = 4000;

/** A row of logits like a random model's (Gaussian, scale `s`), a few −∞ and one NaN, from `rng`. */
function row(rng: Rng, s: number): Float32Array {
  const z = new Float32Array(V);
  for (let i = 0; i < V; i++) z[i] = s * Math.sqrt(-2 * Math.log(1 - rng.nextFloat())) * Math.cos(2 * Math.PI * rng.nextFloat());
  z[7] = -Infinity;
  z[11] = NaN;
  z[13] = Infinity; // masked to −∞ by the sampler: weighs nothing
  return z;
}

/** Busy-waits `ms`: a prepare slow enough that the draw thread claims published rows before the engine thread does. */
function spin(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

const threads: DrawPool[] = [];

/** Until the pool's draw threads are up (tsx in a worker takes a moment). */
async function online(t: DrawPool, n: number): Promise<void> {
  while (t.online < n) await new Promise((r) => setTimeout(r, 20));
}
afterAll(() => threads.forEach((t) => t.close()));

/** A pool of `threads` draw threads, once they are up (closed after the file). */
async function pool(threads_: number, slowRowMs = 0): Promise<DrawPool> {
  const t = new DrawPool({ threads: threads_, slowRowMs });
  threads.push(t);
  await online(t, threads_);
  return t;
}

/**
 * One round of `n` rows whose jobs `job(j, into)` makes (after writing row j into `into`); expects each row's token to
 * be drawBounded's on this thread and returns the tokens.
 */
function checkedRound(
  t: DrawPool,
  n: number,
  job: (j: number, into: Float32Array) => DrawJob,
  meanwhile?: () => void,
): Int32Array {
  const jobs: DrawJob[] = [];
  const got = t.round(
    n,
    V,
    (j, into) => {
      jobs.push(job(j, into));
      return jobs[j];
    },
    meanwhile,
  );
  expect(Array.from(got)).toEqual(jobs.map((x) => drawBounded(x)));
  return got;
}

describe('DrawPool', () => {
  it('gives every row the token drawBounded gives on this thread, and the draw thread draws some of them', async () => {
    const t = await pool(1);
    const rng = new Rng(20261202, 0);
    for (let round = 0; round < 12; round++) {
      const got = checkedRound(t, 2 + (round % 5), (j, into) => {
        into.set(row(rng, 0.5 + j));
        let max = -Infinity;
        for (let i = 0; i < V; i++) if (into[i] > max) max = into[i];
        spin(3);
        return { z: into, max, invT: 1 / (0.5 + 0.1 * j), topP: j % 3 === 2 ? 1 : 0.9, minP: 0, u: rng.nextFloat() };
      });
      for (const tok of got) expect(tok === UNDECIDED || (tok >= 0 && tok < V)).toBe(true);
    }
    expect(t.stats.broken).toBe(false);
    expect(t.stats.helperRows).toBeGreaterThan(0);
  });

  it('does not wait for a stalled draw thread: the rows it holds are drawn again here, and its late tokens land nowhere', async () => {
    const t = await pool(1, 300);
    const rng = new Rng(11, 3);
    for (let round = 0; round < 3; round++) {
      checkedRound(t, 6, (j, into) => {
        into.set(row(rng, 1 + j));
        spin(2); // the draw thread claims a row while this one prepares the next
        return { z: into, max: NaN, invT: 1.1, topP: 0.9, minP: 0, u: rng.nextFloat() };
      });
    }
    // it held rows (300 ms each) and none of its tokens stood: each was drawn here first, and its late write to the
    // slot (tagged with a finished round) was refused
    expect(t.stats.stolenRows).toBeGreaterThan(0);
    expect(t.stats.helperRows).toBe(0);
    expect(t.stats.broken).toBe(false);
  });

  it('with three draw threads: the same tokens, drawn by several threads at once', async () => {
    const t = await pool(3);
    const rng = new Rng(31, 4);
    for (let round = 0; round < 6; round++) {
      const job = (j: number, into: Float32Array) => {
        into.set(row(rng, 1 + (j % 3)));
        return { z: into, max: NaN, invT: 1.2, topP: j % 2 ? 1 : 0.92, minP: 0, u: rng.nextFloat() };
      };
      checkedRound(t, 9, job, () => spin(10)); // the engine thread is busy elsewhere: the draw threads take the rows
    }
    expect(t.stats.threads).toBe(3);
    expect(t.stats.helperRows).toBeGreaterThan(0);
  });

  it('runs its rounds alone once the thread is closed (nothing waits for it)', () => {
    const t = new DrawPool();
    t.close();
    const rng = new Rng(7, 1);
    checkedRound(t, 3, (j, into) => {
      into.set(row(rng, 1));
      return { z: into, max: into.reduce((a, b) => (b > a ? b : a), -Infinity), invT: 1.25, topP: 0.9, minP: 0, u: 0.3 * j };
    });
  });
});

describe('SequenceSampler.prepareDraw / finishDraw', () => {
  // [name, params, whether the bounded draw decides the rows itself (where min_p binds it leaves them to drawNucleus)]
  const cases: [string, Partial<SamplingParams>, boolean][] = [
    ['top_p', { temperature: 0.8, top_p: 0.9 }, true],
    ['top_p with min_p', { temperature: 1.3, top_p: 0.95, min_p: 0.2 }, false],
    ['full softmax', { temperature: 0.7 }, true],
    [
      'penalties and logit_bias',
      { temperature: 0.9, top_p: 0.8, repetition_penalty: 1.3, frequency_penalty: 0.5, logit_bias: { 3: 5 } },
      true,
    ],
  ];
  for (const [name, params, decides] of cases) {
    it(`${name}: the bounded draw gives the exact draw's tokens (drawNucleus / drawFull on the masked row)`, () => {
      const p = { ...samplingParams(params), seed: 99 };
      const a = new SequenceSampler(p, [1, 2, 3]);
      const b = new SequenceSampler(p, [1, 2, 3]);
      expect(a.boundedDraw(V)).toBe(true);
      const rng = new Rng(5, 5);
      const into = new Float32Array(V);
      const exact = new Float32Array(V);
      let undecided = 0;
      for (let step = 0; step < 40; step++) {
        const logits = row(rng, 1 + (step % 4));
        const job = a.prepareDraw(logits, into);
        const bounded = drawBounded(job);
        if (bounded === UNDECIDED) undecided++;
        const token = a.finishDraw(job, bounded).token;
        expect(Number.isFinite(logits[token])).toBe(true);
        expect(token).toBe(b.finishDraw(b.prepareDraw(logits, exact), UNDECIDED).token);
      }
      // the bound leaves about one draw in thousands open, not the rows with NaN and ±∞ in them
      if (decides) expect(undecided).toBeLessThanOrEqual(2);
    });
  }

  it('a row with no finite logit fails as in next(), on either path', () => {
    const p = { ...samplingParams({ temperature: 0.8, top_p: 0.9 }), seed: 1 };
    const bad = Float32Array.from({ length: V }, (_, i) => (i % 2 ? NaN : -Infinity));
    const s = new SequenceSampler(p, []);
    const job = s.prepareDraw(bad, new Float32Array(V));
    const token = drawBounded(job);
    expect(() => s.finishDraw(job, token)).toThrow(NonFiniteLogitsError);
    expect(() => s.finishDraw(s.prepareDraw(bad, new Float32Array(V)), UNDECIDED)).toThrow(NonFiniteLogitsError);
    expect(() => new SequenceSampler(p, []).next(bad)).toThrow(NonFiniteLogitsError);
  });

  it('rows with logprobs or top_k, and greedy rows, are not bounded draws', () => {
    expect(new SequenceSampler(samplingParams({ temperature: 0.8, logprobs: true }), []).boundedDraw(V)).toBe(false);
    expect(new SequenceSampler(samplingParams({ temperature: 0.8, top_k: 40 }), []).boundedDraw(V)).toBe(false);
    expect(new SequenceSampler(samplingParams({ temperature: 0 }), []).boundedDraw(V)).toBe(false);
    expect(new SequenceSampler(samplingParams({ temperature: 0.8, min_p: 0.1 }), []).boundedDraw(V)).toBe(false);
  });
});
