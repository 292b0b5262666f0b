/**
 * Property (issue 13): no sampling parameters the API accepts can hurt another request. Each case draws a few
 * requests with random sampling parameters from the accepted ranges, biased to the extremes (temperature 0, 2 and
 * subnormal; top_p subnormal; top_k 1 and past the vocabulary; min_p 1 and just below; penalties at their bounds;
 * logit_bias ±100 on hundreds of tokens; seeds at ±2^53), checks that the API really accepts them (the shared
 * parser of the worker and the backend), and runs them in one batch of the real engine with four ordinary
 * requests. The ordinary requests must give exactly the tokens they give alone, and the random ones must end
 * normally with vocabulary ids. A quarter of the random rows go beyond the API (penalties of 1e-300 or 1e300,
 * biases of ±1e30, min_p above 1): the engine takes its parameters unvalidated, so this checks that what the
 * validation keeps out cannot hurt the batch either — such a row may end with an error, but alone.
 * `REALIGN_FUZZ_SCALE` scales the case count, `REALIGN_FUZZ_SEED` replays a run.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../../gpu-backend/src/engine/engine.ts';
import type { GenerateJob } from '../../../gpu-backend/src/engine/protocol.ts';
import { samplingOf } from '../../../gpu-backend/src/server/prepare/generation.ts';
import type { SamplingParams } from '../../../gpu-backend/src/sampling/params.ts';
import { ApiError } from '../../../shared/src/errors.ts';
import { MAX_LOGIT_BIAS, SAMPLING_RULES } from '../../../shared/src/generation-fields.ts';
import { parseRequest } from '../../../shared/src/parse-request.ts';
import { collect, job, startEngine, tinyModel, type Collected } from '../helpers/engine.ts';
import { randomTokens } from '../helpers/graphs.ts';
import { cleanupTempDirs, testSeed } from '../helpers/models.ts';

const SCALE = Math.max(0.1, Number(process.env.REALIGN_FUZZ_SCALE ?? '1') || 1);
const SEED = process.env.REALIGN_FUZZ_SEED ? Number(process.env.REALIGN_FUZZ_SEED) : testSeed();
const CASES = Math.round(30 * SCALE);
let engine: Engine;
let V: number;

beforeAll(async () => {
  engine = await startEngine({ mode: 'single', model: tinyModel(SEED) });
  V = engine.info.vocabSize;
}, 120_000);
afterAll(async () => {
  await engine?.shutdown();
  cleanupTempDirs();
});

/** A number of a rule's range: its bounds, values next to them, and anything between. */
function inRange(rule: { min: number; max: number }, special: number[] = []): fc.Arbitrary<number> {
  return fc.oneof(fc.constantFrom(rule.min, rule.max, ...special), fc.double({ min: rule.min, max: rule.max, noNaN: true }));
}

/** The sampling fields of a request as sent on the wire (only some set, as clients do). */
function wireSampling(vocab: number): fc.Arbitrary<Record<string, unknown>> {
  const R = SAMPLING_RULES;
  const biasKey = fc.integer({ min: 0, max: vocab - 1 }).map(String);
  const biasValue = fc.oneof(fc.constantFrom(-100, 100), fc.double({ min: -100, max: 100, noNaN: true }));
  return fc.record(
    {
      temperature: inRange(R.temperature, [5e-324, 1e-300, 1e-30, 1e-3]),
      top_p: fc.oneof(fc.constantFrom(1, 5e-324, 1e-12, 0.5), fc.double({ min: 5e-324, max: 1, noNaN: true })),
      top_k: fc.oneof(fc.constantFrom(-1, 0, 1, 2, vocab - 1, vocab, vocab + 1, 2 ** 31), fc.integer({ min: 1, max: vocab })),
      min_p: inRange(R.min_p, [1 - 1e-12, 5e-324, 0.9]),
      repetition_penalty: inRange(R.repetition_penalty, [1, 1.0000001]),
      presence_penalty: inRange(R.presence_penalty),
      frequency_penalty: inRange(R.frequency_penalty),
      logit_bias: fc.dictionary(biasKey, biasValue, { maxKeys: MAX_LOGIT_BIAS }),
      seed: fc.oneof(fc.constantFrom(0, -1, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER), fc.integer()),
      logprobs: fc.integer({ min: 0, max: 5 }),
    },
    { requiredKeys: [] },
  );
}

/** Parameters the API refuses (the engine still must not let them hurt other rows). */
function beyondApi(vocab: number): fc.Arbitrary<Partial<SamplingParams>> {
  const huge = fc.constantFrom(1e-300, 1e-30, 1e-5, 1e5, 1e30, 1e300);
  return fc.record(
    {
      temperature: fc.constantFrom(0, 1, 1e-300, 50, 1e300),
      top_p: fc.constantFrom(1, 0.5, 1e-300),
      top_k: fc.constantFrom(0, 1, 3),
      min_p: fc.constantFrom(0, 0.9, 1, 1.5),
      repetition_penalty: huge,
      presence_penalty: fc.constantFrom(-1e300, -1e30, 1e30, 1e300),
      frequency_penalty: fc.constantFrom(-1e30, 1e30),
      logit_bias: fc.dictionary(fc.integer({ min: 0, max: vocab - 1 }).map(String), fc.constantFrom(-1e30, 1e30, 1e300, -1e300), {
        maxKeys: 64,
      }),
      seed: fc.integer(),
      logprobs: fc.boolean(),
      top_logprobs: fc.integer({ min: 0, max: 5 }),
    },
    { requiredKeys: ['repetition_penalty', 'seed'] },
  );
}

/** Engine parameters from accepted wire fields, mapped by the backend's own mapping (server/prepare/generation.ts). */
function toParams(wire: Record<string, unknown>): Partial<SamplingParams> {
  const req = parseRequest('completions', { model: 'm', prompt: 'x', ...wire });
  if (req instanceof ApiError) throw new Error(`the generator made a request the API refuses: ${req.message}`);
  return samplingOf(req, 'completions').params;
}

describe(`sampling parameters never hurt the batch (seed ${SEED})`, () => {
  it(
    'random accepted parameters, extremes included, in one batch with ordinary rows: the ordinary rows give exactly what they give alone',
    { timeout: 600_000 },
    async () => {
      const ordinaryParams: Partial<SamplingParams>[] = [
        {},
        { temperature: 0.8, seed: 3 },
        { temperature: 1, top_p: 0.9, top_k: 40, seed: 4, logprobs: true, top_logprobs: 3 },
        { frequency_penalty: 0.5 },
      ];
      const ordinary = ordinaryParams.map((p, i) => job(randomTokens(3 + 4 * i, V), 1, 16, p));
      const alone: Collected[] = [];
      for (const j of ordinary) alone.push(await collect(engine.generate(j)));

      const row = fc.record({
        wire: wireSampling(V),
        beyond: fc.oneof({ arbitrary: fc.constant(null), weight: 3 }, { arbitrary: beyondApi(V), weight: 1 }),
        promptLength: fc.integer({ min: 1, max: 24 }),
        maxTokens: fc.integer({ min: 1, max: 20 }),
        stopOnEos: fc.boolean(),
      });
      const cases = fc.sample(
        fc.record({ rows: fc.array(row, { minLength: 1, maxLength: 4 }), order: fc.integer({ min: 0, max: 1000 }) }),
        { numRuns: CASES, seed: SEED },
      );
      const tally = { cases: 0, randomRows: 0, length: 0, stop: 0, extremes: 0, beyond: 0, beyondErrors: 0 };
      for (const c of cases) {
        const random: Omit<GenerateJob, 'id'>[] = c.rows.map((r) =>
          job(randomTokens(r.promptLength, V), 1, r.maxTokens, r.beyond ?? toParams(r.wire), { ignoreEos: !r.stopOnEos }),
        );
        // interleave: the random rows at positions chosen by the case, all submitted at once (one batch)
        const all: { kind: 'ordinary' | 'random'; index: number; job: Omit<GenerateJob, 'id'> }[] = ordinary.map((j, index) => ({
          kind: 'ordinary',
          index,
          job: j,
        }));
        random.forEach((j, index) => all.splice((c.order + index * 7) % (all.length + 1), 0, { kind: 'random', index, job: j }));
        const results = await Promise.all(all.map(async (x) => ({ ...x, out: await collect(engine.generate(x.job)) })));

        for (const r of results) {
          if (r.kind === 'ordinary') {
            expect(r.out.tokens, `ordinary row ${r.index} in case ${tally.cases}`).toEqual(alone[r.index].tokens);
            expect(r.out.finish).toBe(alone[r.index].finish);
            continue;
          }
          const beyond = c.rows[r.index].beyond;
          if (beyond) {
            // beyond the API: it may fail, but alone, with a code, and with valid tokens before
            const ctx = `row beyond the API ${JSON.stringify({ ...beyond, logit_bias: `${Object.keys(beyond.logit_bias ?? {}).length} entries` })}`;
            expect(r.out.finish, ctx).toMatch(/^(length|stop|error)$/);
            if (r.out.finish === 'error') expect(r.out.events.at(-1)?.error?.code, ctx).toBeTruthy();
            for (const id of r.out.tokens) expect(Number.isInteger(id) && id >= 0 && id < V, ctx).toBe(true);
            tally.beyond++;
            if (r.out.finish === 'error') tally.beyondErrors++;
            continue;
          }
          const wire = c.rows[r.index].wire;
          const context = `random row ${JSON.stringify({ ...wire, logit_bias: `${Object.keys(wire.logit_bias ?? {}).length} entries` })}`;
          expect(r.out.finish, context).toMatch(/^(length|stop)$/);
          expect(r.out.events.at(-1)?.error, context).toBeUndefined();
          for (const t of r.out.events.flatMap((ev) => ev.tokens)) {
            expect(Number.isInteger(t.id) && t.id >= 0 && t.id < V, context).toBe(true);
            if (t.logprob !== undefined) expect(Number.isFinite(t.logprob) && t.logprob <= 0, context).toBe(true);
            for (const alt of t.top ?? []) expect(alt.logprob <= 0 && !Number.isNaN(alt.logprob), context).toBe(true);
          }
          tally.randomRows++;
          tally[r.out.finish as 'length' | 'stop']++;
          const bounded = [
            'temperature',
            'top_p',
            'min_p',
            'repetition_penalty',
            'presence_penalty',
            'frequency_penalty',
          ] as const;
          const extremes = bounded.filter((k) => wire[k] === SAMPLING_RULES[k].min || wire[k] === SAMPLING_RULES[k].max);
          if (extremes.length > 0) tally.extremes++;
        }
        tally.cases++;
      }
      const stats = await engine.refreshStats();
      expect([stats.running, stats.queued, stats.rows, stats.kvTokensUsed, stats.kvTokensReserved]).toEqual([0, 0, 0, 0, 0]);
      console.log(
        `[property engine sampling] seed=${SEED} cases=${tally.cases} random rows=${tally.randomRows} (length ${tally.length}, stop ${tally.stop}, ` +
          `${tally.extremes} with a field at a bound), rows beyond the API=${tally.beyond} (${tally.beyondErrors} ended alone with an error), ordinary rows=${tally.cases * ordinary.length}, all equal to alone`,
      );
      expect(tally.cases).toBe(CASES);
    },
  );
});
