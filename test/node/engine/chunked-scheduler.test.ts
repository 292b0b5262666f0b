/**
 * Chunked prefill in the scheduler (issue 14.5), run in this thread on real models and real ONNX Runtime runs:
 * prompts prefilled in chunks give exactly the tokens (and, within 1e-4, the logprobs) of whole-prompt prefill,
 * for chunk boundaries at odd positions, prompts an exact multiple of the chunk, 1-token chunks, λ per row, InRa and
 * fusion models, host and device sampling and the decode loop; a running stream gets a token between every two
 * chunks of a long prompt (counted per scheduler turn, not timed); a failed chunk ends only its own sequence.
 */
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { loadModel, type LoadedModel, type ModelSource } from '../../../gpu-backend/src/engine/model-loader.ts';
import type { EngineLimits, EngineStats, GenerateEvent, GenerateJob } from '../../../gpu-backend/src/engine/protocol.ts';
import { Scheduler } from '../../../gpu-backend/src/engine/scheduler.ts';
import { addAdapter } from '../../../gpu-backend/src/make/adapters.ts';
import { perturbCheckpoint } from '../../../gpu-backend/src/make/synthetic.ts';
import { DEFAULT_LIMITS, job, tinyInra, tinyModel } from '../helpers/engine.ts';
import { randomTokens } from '../helpers/graphs.ts';
import { cleanupTempDirs, tempDir, testSeed } from '../helpers/models.ts';

const seed = testSeed();
// logprobs of chunked and whole-prompt prefill: absolute difference (float32 graphs, same tokens)
const LOGPROB_TOL = 1e-4;

afterEach(() => vi.restoreAllMocks());
afterAll(cleanupTempDirs);

interface Outcome {
  tokens: number[];
  logprobs: (number | undefined)[];
  finish: string;
  error?: { message: string; code: string };
}

/** What one turn of the scheduler reported: its events and the stats after it. */
interface Turn {
  events: GenerateEvent[];
  stats: EngineStats;
}

/** A scheduler in this thread whose sink collects each request's events and every turn's stats. */
class Harness {
  readonly scheduler: Scheduler;
  readonly turns: Turn[] = [];
  /** called after each turn, inside the scheduler's loop (so what it does lands before the next turn) */
  onTurn: ((t: Turn) => void) | null = null;
  private readonly waiting = new Map<number, { events: GenerateEvent[]; done: (r: Outcome) => void }>();
  private readonly running: Promise<void>;
  private nextId = 1;

  constructor(model: LoadedModel, limits: Partial<EngineLimits>) {
    this.scheduler = new Scheduler(
      model,
      { ...DEFAULT_LIMITS, ...limits },
      {
        events: (events) => {
          const turn = { events, stats: this.scheduler.stats() };
          this.turns.push(turn);
          for (const ev of events) {
            const w = this.waiting.get(ev.id)!;
            w.events.push(ev);
            if (ev.finish) {
              this.waiting.delete(ev.id);
              const tokens = w.events.flatMap((e) => e.tokens);
              w.done({
                tokens: tokens.map((t) => t.id),
                logprobs: tokens.map((t) => t.logprob),
                finish: ev.finish,
                error: ev.error,
              });
            }
          }
          this.onTurn?.(turn);
        },
        logits: () => {},
        rejected: (id, error) => {
          const w = this.waiting.get(id)!;
          this.waiting.delete(id);
          w.done({ tokens: [], logprobs: [], finish: 'rejected', error });
        },
      },
    );
    this.running = this.scheduler.loop();
  }

  submit(j: Omit<GenerateJob, 'id'>): { id: number; outcome: Promise<Outcome> } {
    const id = this.nextId++;
    const outcome = new Promise<Outcome>((done) => this.waiting.set(id, { events: [], done }));
    this.scheduler.submitGenerate({ ...j, id });
    return { id, outcome };
  }

  async stop(): Promise<void> {
    this.scheduler.stop();
    await this.running;
  }
}

async function load(source: ModelSource, opts: { deviceSampling?: boolean; decodeLoop?: boolean } = {}): Promise<LoadedModel> {
  return loadModel(source, { device: 'cpu', threads: 1, graphCache: join(tempDir(), 'graphs'), ...opts });
}

/** Runs `jobs` all submitted in one turn (so that they share prefill runs and decode steps). */
async function together(model: LoadedModel, limits: Partial<EngineLimits>, jobs: Omit<GenerateJob, 'id'>[]) {
  const h = new Harness(model, limits);
  try {
    const runs = jobs.map((j) => h.submit(j));
    const outcomes = await Promise.all(runs.map((r) => r.outcome));
    const stats = h.scheduler.stats();
    expect(stats.rows).toBe(0);
    expect(stats.prefilling).toBe(0);
    return { outcomes, turns: h.turns, stats };
  } finally {
    await h.stop();
  }
}

function expectSame(got: Outcome[], want: Outcome[]): void {
  expect(got.map((o) => o.tokens)).toEqual(want.map((o) => o.tokens));
  expect(got.map((o) => o.finish)).toEqual(want.map((o) => o.finish));
  got.forEach((o, i) =>
    o.logprobs.forEach((l, k) => {
      const w = want[i].logprobs[k];
      if (l === undefined || w === undefined) expect(l).toBe(w);
      else expect(Math.abs(l - w)).toBeLessThan(LOGPROB_TOL);
    }),
  );
}

// prompt lengths around a 5-token chunk: 1, one chunk, one chunk + 1 (only the last token left), exact multiples,
// odd boundaries, long; λ per row; greedy and seeded sampled rows, some with logprobs and max_tokens that end rows
// while others are still being prefilled
function mixedJobs(V: number, lambdas: number[]): Omit<GenerateJob, 'id'>[] {
  const lens = [1, 5, 6, 10, 23, 4, 15, 31, 12];
  return lens.map((len, i) =>
    job(
      randomTokens(len, V),
      lambdas[i % lambdas.length],
      3 + ((i * 5) % 11),
      i % 3 === 0
        ? {}
        : { temperature: 0.9, top_p: 0.9, seed: 100 + i, logprobs: i % 2 === 0, top_logprobs: i % 2 === 0 ? 2 : 0 },
    ),
  );
}

const models = [
  {
    name: 'InRa, host sampling',
    source: (): ModelSource => ({ mode: 'inra', model: tinyInra(seed) }),
    opts: {},
    chunks: [5, 1, 16],
  },
  {
    name: 'InRa, device sampling',
    source: (): ModelSource => ({ mode: 'inra', model: tinyInra(seed) }),
    opts: { deviceSampling: true },
    chunks: [5],
  },
  {
    name: 'fusion, decode loop',
    source: (): ModelSource => ({ mode: 'fusion', aligned: tinyModel(seed + 3), reference: tinyModel(seed) }),
    opts: { decodeLoop: true },
    limits: { decodeLoopSteps: 4 },
    chunks: [7],
  },
] as const;

describe.each(models)(
  `chunked prefill gives the tokens of whole prompts: $name (seed ${seed})`,
  ({ source, opts, chunks, ...rest }) => {
    it(`chunks of ${chunks.join(', ')} tokens against chunking off, nine requests of mixed lengths, λ and sampling`, async () => {
      const model = await load(source(), opts);
      try {
        const extra = 'limits' in rest ? rest.limits : {};
        const jobs = mixedJobs(model.vocabSize, [0, 0.5, 1, 1.7, -0.5]);
        const whole = await together(model, { ...extra, prefillChunkTokens: 0 }, jobs);
        // off: every prompt in one first-prompt run, nothing pending
        expect(whole.turns.every((t) => t.stats.prefilling === 0)).toBe(true);
        for (const C of chunks) {
          const chunked = await together(model, { ...extra, prefillChunkTokens: C }, jobs);
          expectSame(chunked.outcomes, whole.outcomes);
          // the longer prompts went in over several turns (the per-turn bound while streams run: the test below)
          expect(chunked.turns.filter((t) => t.stats.prefilling > 0).length).toBeGreaterThan(1);
          // every prompt token but the last of a prompt longer than one chunk (that one goes through a decode step)
          const longer = jobs.filter((j) => j.promptIds.length > C).length;
          expect(chunked.stats.prefilledTokens).toBe(jobs.reduce((n, j) => n + j.promptIds.length, 0) - longer);
        }
      } finally {
        await model.runner.release();
      }
    });
  },
);

describe(`running streams are not starved by a long prompt (seed ${seed})`, () => {
  it('a running stream gets a token in every turn that prefills a chunk of a 6-chunk prompt; off, the prompt goes in one turn', async () => {
    const model = await load({ mode: 'inra', model: tinyInra(seed) });
    try {
      const V = model.vocabSize;
      const C = 8;
      const long = randomTokens(6 * C + 1, V); // 6 chunks, then its last token through the decode step
      const count = async (prefillChunkTokens: number) => {
        const h = new Harness(model, { prefillChunkTokens });
        try {
          let started!: () => void;
          const first = new Promise<void>((r) => (started = r));
          const streamId = h.submit(job(randomTokens(5, V), 0.5, 200)).id;
          const check = setInterval(() => h.turns.length > 1 && started(), 1);
          await first;
          clearInterval(check);
          const from = h.turns.length;
          const prefilled0 = h.turns[from - 1].stats.prefilledTokens;
          const b = h.submit(job(long, 0.3, 4));
          const outcome = await b.outcome;
          const turns = h.turns.slice(from);
          // the turns up to B's first token: prompt positions written, and whether the stream got a token
          const firstB = turns.findIndex((t) => t.events.some((e) => e.id === b.id && e.tokens.length > 0));
          const upTo = turns.slice(0, firstB + 1);
          let before = prefilled0;
          const perTurn = upTo.map((t) => {
            const wrote = t.stats.prefilledTokens - before;
            before = t.stats.prefilledTokens;
            return { wrote, streamToken: t.events.some((e) => e.id === streamId && e.tokens.length > 0) };
          });
          return { outcome, perTurn };
        } finally {
          await h.stop();
        }
      };
      const chunked = await count(C);
      const prefillTurns = chunked.perTurn.filter((t) => t.wrote > 0);
      expect(prefillTurns.map((t) => t.wrote)).toEqual([C, C, C, C, C, C]);
      // every turn that wrote a chunk also decoded the stream: it got a token between every two chunks
      expect(chunked.perTurn.every((t) => t.streamToken)).toBe(true);
      const off = await count(0);
      expect(off.perTurn.filter((t) => t.wrote > 0).map((t) => t.wrote)).toEqual([long.length]);
      expect(chunked.outcome.tokens).toEqual(off.outcome.tokens);
    } finally {
      await model.runner.release();
    }
  });
});

describe(`a failed chunk ends only its own sequence (seed ${seed})`, () => {
  it('a later chunk of one prompt throws: it ends with engine_error; a stream and another chunked prompt finish as alone', async () => {
    const model = await load({ mode: 'inra', model: tinyInra(seed) });
    try {
      const V = model.vocabSize;
      const limits = { prefillChunkTokens: 6 };
      const jobs = [job(randomTokens(4, V), 0.5, 30), job(randomTokens(27, V), 1.5, 10, { temperature: 0.8, seed: 5 })];
      const alone = (await together(model, limits, jobs)).outcomes;
      const poison = job(randomTokens(20, V), 0.5, 10);
      const marker = poison.promptIds[12]; // the first token of its third chunk
      const fill = model.runner.fill.bind(model.runner);
      let failed = 0;
      vi.spyOn(model.runner, 'fill').mockImplementation((plan) => {
        if (plan.tokens.length === 1 && plan.totals[0] === 18 && plan.tokens[0][0] === marker) {
          failed++;
          return Promise.reject(new Error('injected ONNX Runtime failure'));
        }
        return fill(plan);
      });
      const h = new Harness(model, limits);
      try {
        const runs = [h.submit(jobs[0]), h.submit(poison), h.submit(jobs[1])];
        const [a, bad, c] = await Promise.all(runs.map((r) => r.outcome));
        expect(failed).toBe(1);
        expect(bad.finish).toBe('error');
        expect(bad.error?.code).toBe('engine_error');
        expect(bad.error?.message).toMatch(/injected ONNX Runtime failure/);
        expectSame([a, c], alone);
        const stats = h.scheduler.stats();
        expect(stats.rows).toBe(0);
        expect(stats.kvTokensReserved).toBe(0);
      } finally {
        await h.stop();
      }
    } finally {
      await model.runner.release();
    }
  });
});

describe(`cancelled and failed first chunks (seed ${seed})`, () => {
  it('a prompt cancelled between two of its chunks ends at once and frees its rows; the stream beside it is as alone', async () => {
    const model = await load({ mode: 'inra', model: tinyInra(seed) });
    try {
      const V = model.vocabSize;
      const limits = { prefillChunkTokens: 4 };
      const stream = job(randomTokens(3, V), 0.5, 24, { temperature: 0.7, seed: 9 });
      const [alone] = (await together(model, limits, [stream])).outcomes;
      const h = new Harness(model, limits);
      try {
        const a = h.submit(stream);
        let long: { id: number; outcome: Promise<Outcome> } | null = null;
        let cancelledAt = -1;
        h.onTurn = (t) => {
          // the long prompt arrives while the stream decodes, and is cancelled after its second chunk
          if (!long) long = h.submit(job(randomTokens(30, V), 0.5, 8));
          else if (cancelledAt < 0 && t.stats.prefilledTokens >= 3 + 8) {
            cancelledAt = t.stats.prefilledTokens;
            h.scheduler.cancel(long.id);
          }
        };
        const got = await a.outcome;
        const gone = await long!.outcome;
        expect(cancelledAt).toBe(3 + 8);
        expect(gone.finish).toBe('cancelled');
        expect(gone.tokens).toEqual([]);
        expectSame([got], [alone]);
        const stats = h.scheduler.stats();
        // nothing of the cancelled prompt was written after the turn that cancelled it
        expect(stats.prefilledTokens).toBe(cancelledAt);
        expect(stats.rows).toBe(0);
        expect(stats.prefilling).toBe(0);
      } finally {
        await h.stop();
      }
    } finally {
      await model.runner.release();
    }
  });

  it('a batched first-chunk run that throws is retried one prompt at a time: only the prompt that breaks it fails', async () => {
    const model = await load({ mode: 'inra', model: tinyInra(seed) });
    try {
      const V = model.vocabSize;
      const limits = { prefillChunkTokens: 8 };
      const jobs = [job(randomTokens(19, V), 0.5, 6), job(randomTokens(14, V), 1, 6, { temperature: 1, seed: 3 })];
      const alone = (await together(model, limits, jobs)).outcomes;
      const poison = job(randomTokens(21, V), 0.2, 6);
      const head = poison.promptIds.slice(0, 8);
      const fill = model.runner.fill.bind(model.runner);
      const firstChunkRuns: number[] = [];
      vi.spyOn(model.runner, 'fill').mockImplementation((plan) => {
        const first = plan.totals.every((t, r) => t === plan.tokens[r].length);
        if (first) firstChunkRuns.push(plan.outputs.length);
        if (first && plan.tokens.some((t) => t.length === 8 && t.every((x, i) => x === head[i])))
          return Promise.reject(new Error('injected ONNX Runtime failure'));
        return fill(plan);
      });
      const h = new Harness(model, limits);
      try {
        const runs = [h.submit(jobs[0]), h.submit(poison), h.submit(jobs[1])];
        const [a, bad, c] = await Promise.all(runs.map((r) => r.outcome));
        // nothing decodes yet: the three first chunks share one run; it fails, then each runs alone
        expect(firstChunkRuns).toEqual([3, 1, 1, 1]);
        expect(bad.finish).toBe('error');
        expect(bad.error?.code).toBe('engine_error');
        expect(bad.error?.message).toMatch(/injected ONNX Runtime failure/);
        expectSame([a, c], alone);
        expect(h.scheduler.stats().rows).toBe(0);
      } finally {
        await h.stop();
      }
    } finally {
      await model.runner.release();
    }
  });
});

describe(`chunked prefill on a model of several named adapters (seed ${seed})`, () => {
  it('chunks of 5 give the tokens of chunking off for rows of different mixes (one run per adapter branch per chunk)', async () => {
    const work = tempDir();
    addAdapter(tinyModel(seed), join(work, '1'), 'concise');
    addAdapter(join(work, '1'), join(work, '2'), 'safe');
    addAdapter(join(work, '2'), join(work, '3'), 'style');
    const dir = join(work, 'trained');
    perturbCheckpoint(join(work, '3'), dir, (n) => /^model\.layers\.[012]\./.test(n), seed + 1, 0.08);
    const model = await load({ mode: 'inra', model: dir });
    try {
      const V = model.vocabSize;
      const mixes: Record<string, number>[] = [
        { concise: 0.7 },
        { safe: 1 },
        { concise: 0.5, style: 1.5 },
        {},
        { safe: -0.5, style: 0.3 },
      ];
      const lens = [6, 23, 10, 1, 16];
      const jobs = mixes.map((mix, i) =>
        job(randomTokens(lens[i], V), 0.5, 4 + i, i % 2 ? { temperature: 0.9, seed: 20 + i } : {}, { mix }),
      );
      const whole = await together(model, { prefillChunkTokens: 0 }, jobs);
      const chunked = await together(model, { prefillChunkTokens: 5 }, jobs);
      expectSame(chunked.outcomes, whole.outcomes);
      expect(chunked.turns.filter((t) => t.stats.prefilling > 0).length).toBeGreaterThan(1);
    } finally {
      await model.runner.release();
    }
  });
});
