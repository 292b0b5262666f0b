import { describe, expect, it } from 'vitest';
import { samplingParams, type SamplingParams } from './params.ts';
import { NonFiniteLogitsError, SequenceSampler } from './sampler.ts';

function sampler(params: Partial<SamplingParams>, prompt: number[] = []): SequenceSampler {
  return new SequenceSampler(samplingParams(params), prompt);
}

const row = (...values: number[]) => Float32Array.from(values);

/** log_softmax(z / T) in float64, the definition logprobs must follow. */
function logSoftmax(z: ArrayLike<number>, t: number): number[] {
  const xs = Array.from(z, (v) => v / t);
  const m = Math.max(...xs);
  const lse = m + Math.log(xs.reduce((s, x) => s + Math.exp(x - m), 0));
  return xs.map((x) => x - lse);
}

/** Processed logits as the sampler saw them, read back from greedy top_logprobs (T = 1): z_i − z_0 = lp_i − lp_0. */
function processedDiffs(result: ReturnType<SequenceSampler['next']>, ids: number[]): number[] {
  const lp = new Map(result.top!.map((t) => [t.token, t.logprob]));
  return ids.map((id) => lp.get(id)! - lp.get(ids[0])!);
}

describe('greedy', () => {
  it('takes the argmax and breaks ties towards the lowest id', () => {
    expect(sampler({ temperature: 0 }).next(row(1, 3, 3, 2)).token).toBe(1);
    expect(sampler({ temperature: 0 }).next(row(5, 5, 5)).token).toBe(0);
    expect(sampler({ temperature: 0 }).next(row(-1, -0.5, -2)).token).toBe(1);
  });

  it('ignores top_k / top_p / min_p, which always keep the argmax', () => {
    expect(sampler({ temperature: 0, top_k: 1, top_p: 0.01, min_p: 0.99 }).next(row(0, 4, 1)).token).toBe(1);
  });
});

describe('logit_bias and penalties act after the blend, before sampling', () => {
  it('logit_bias raises or bans tokens', () => {
    expect(sampler({ temperature: 0, logit_bias: { '2': 5 } }).next(row(3, 1, 0)).token).toBe(2);
    expect(sampler({ temperature: 0, logit_bias: { '0': -100 } }).next(row(3, 1, 0)).token).toBe(1);
    expect(sampler({ temperature: 0, logit_bias: { '99': 50 } }).next(row(3, 1, 0)).token).toBe(0); // id past the row
  });

  it('repetition_penalty divides positive and multiplies negative logits of prompt tokens', () => {
    expect(sampler({ temperature: 0, repetition_penalty: 2 }, [0]).next(row(3, 2, 0)).token).toBe(1);
    expect(sampler({ temperature: 0, repetition_penalty: 2 }, [0]).next(row(-1, -1.5, -3)).token).toBe(1);
    const r = sampler({ temperature: 0, repetition_penalty: 2, logprobs: true, top_logprobs: 3 }, [0, 2, 2]).next(row(3, 2, -1));
    expect(processedDiffs(r, [1, 0, 2])[1]).toBeCloseTo(1.5 - 2, 6);
    expect(processedDiffs(r, [1, 0, 2])[2]).toBeCloseTo(-2 - 2, 6);
  });

  it('repetition_penalty also covers generated tokens', () => {
    const s = sampler({ temperature: 0, repetition_penalty: 2 });
    expect([s.next(row(3, 2, 0)).token, s.next(row(3, 2, 0)).token, s.next(row(3, 2, 0)).token]).toEqual([0, 1, 0]);
  });

  it('presence and frequency penalties subtract per generated token (OpenAI)', () => {
    const s = sampler({ temperature: 0, presence_penalty: 0.5, frequency_penalty: 0.25, logprobs: true, top_logprobs: 3 });
    const logits = row(2, 1.9, 0);
    const steps = Array.from({ length: 4 }, () => s.next(logits));
    expect(steps.map((r) => r.token)).toEqual([0, 1, 0, 1]);
    // After the 3rd step: token 0 generated twice (2 − 0.5 − 0.5 = 1.0), token 1 once (1.9 − 0.75 = 1.15).
    expect(processedDiffs(steps[3], [1, 0])[1]).toBeCloseTo(1.0 - 1.15, 6);
    // The prompt does not count for presence/frequency.
    expect(sampler({ temperature: 0, presence_penalty: 2 }, [0]).next(logits).token).toBe(0);
  });

  it("leaves the caller's logits untouched", () => {
    const logits = row(3, 2, Number.NaN);
    sampler({ temperature: 0, logit_bias: { '1': 4 }, repetition_penalty: 3 }, [0]).next(logits);
    expect(Array.from(logits)).toEqual([3, 2, Number.NaN]);
  });
});

describe('non-finite logits', () => {
  it('never picks NaN or ±∞ tokens, greedy or sampled', () => {
    const logits = row(Number.NaN, Infinity, 1, -Infinity, 0.5);
    expect(sampler({ temperature: 0 }).next(logits).token).toBe(2);
    for (const params of [
      { temperature: 1 },
      { temperature: 2, top_k: 4 },
      { temperature: 1, top_p: 0.99 },
      { temperature: 1, min_p: 0.01 },
    ]) {
      const s = sampler({ ...params, seed: 3 });
      const seen = new Set(Array.from({ length: 500 }, () => s.next(logits).token));
      expect([...seen].sort()).toEqual([2, 4]);
    }
  });

  it('fails the sequence with a typed error when nothing finite is left', () => {
    expect(() => sampler({ temperature: 1 }).next(row(Number.NaN, Number.NaN, Infinity))).toThrow(NonFiniteLogitsError);
    expect(() => sampler({ temperature: 0 }).next(row(-Infinity, -Infinity))).toThrow(
      /every logit of this sequence is NaN or ±∞/,
    );
    expect(() => sampler({ temperature: 0, logit_bias: { '1': -Infinity } }).next(row(Number.NaN, 2))).toThrow(/1 NaN, 0 \+∞/);
    expect(() => sampler({ temperature: 0 }).next(new Float32Array(0))).toThrow(NonFiniteLogitsError);
  });
});

describe('logprobs of the blended distribution after temperature', () => {
  const logits = row(0.3, 2.0, -1.0, 1.2, 2.0, 1.5, -2.0);

  it('match log_softmax(z / T) for the chosen token and the top tokens', () => {
    const want = logSoftmax(logits, 0.7);
    const s = sampler({ temperature: 0.7, top_k: 3, seed: 11, logprobs: true, top_logprobs: 4 });
    for (let step = 0; step < 20; step++) {
      const r = s.next(logits);
      expect(r.logprob!).toBeCloseTo(want[r.token], 5);
      expect(r.top!.map((t) => t.token)).toEqual([1, 4, 5, 3]); // ties (ids 1 and 4) to the lower id
      for (const t of r.top!) expect(t.logprob).toBeCloseTo(want[t.token], 5);
    }
  });

  it('use T = 1 when greedy', () => {
    const r = sampler({ temperature: 0, logprobs: true, top_logprobs: 2 }).next(logits);
    expect(r.token).toBe(1);
    expect(r.logprob!).toBeCloseTo(logSoftmax(logits, 1)[1], 6);
  });

  it('are absent unless asked for, and top_logprobs lists only finite tokens', () => {
    const plain = sampler({ temperature: 1, seed: 1 }).next(logits);
    expect(plain.logprob).toBeUndefined();
    expect(plain.top).toBeUndefined();
    const r = sampler({ temperature: 0, logprobs: true, top_logprobs: 5 }).next(row(1, -Infinity, Number.NaN, 0));
    expect(r.top!.map((t) => t.token)).toEqual([0, 3]);
    expect(r.top![1].logprob).toBeCloseTo(Math.log(1 / (1 + Math.E)), 6);
  });
});

describe('seeded streams', () => {
  const logits = Float32Array.from({ length: 64 }, (_, i) => Math.sin(i * 1.7) * 2);
  const run = (s: SequenceSampler, n: number) => Array.from({ length: n }, () => s.next(logits).token);

  it('repeat exactly for the same seed, whatever other samplers do in between', () => {
    const params = { temperature: 1, top_p: 0.95, seed: 2024 };
    const alone = run(sampler(params), 50);
    const a = sampler(params);
    const noisy = [
      sampler({ temperature: 1 }),
      sampler({ temperature: 1, seed: 2024 }),
      sampler({ temperature: 0.5, top_k: 5, seed: 1 }),
    ];
    const interleaved: number[] = [];
    for (let i = 0; i < 50; i++) {
      for (const other of noisy) for (let k = 0; k <= i % 3; k++) other.next(logits);
      interleaved.push(a.next(logits).token);
    }
    expect(interleaved).toEqual(alone);
  });

  it('differ between seeds and between streams of one seed', () => {
    const params = samplingParams({ temperature: 1, seed: 5 });
    const base = run(new SequenceSampler(params, []), 40);
    expect(run(new SequenceSampler(params, [], { stream: 0 }), 40)).toEqual(base);
    expect(run(new SequenceSampler(params, [], { stream: 1 }), 40)).not.toEqual(base);
    expect(run(sampler({ temperature: 1, seed: 6 }), 40)).not.toEqual(base);
  });

  it('draw a random seed when none is given and expose it for replay', () => {
    const a = sampler({ temperature: 1 });
    const b = sampler({ temperature: 1 });
    expect(a.seed).not.toBe(b.seed);
    const first = run(a, 30);
    expect(run(sampler({ temperature: 1, seed: a.seed }), 30)).toEqual(first);
  });
});
