/**
 * Fault isolation in the scheduler (issue 13 item 1): whatever one sequence's own work throws ends that sequence
 * alone, and the rest of its batch goes on with exactly the tokens it gives alone. The faults are injected into
 * the real code paths of one marked row — the sampler, the token bookkeeping (stops, detokenizing), the greedy
 * decode-loop path, an out-of-vocabulary token, a job the sequence cannot be built from — on a real model with
 * real ONNX Runtime runs, the scheduler running in this thread so that the injection reaches it. A model run that
 * fails ends only the sequences of that run, a failed prefill is retried one sequence at a time, and the engine
 * serves new work afterwards.
 */
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadModel, type LoadedModel } from '../../../gpu-backend/src/engine/model-loader.ts';
import type { GenerateEvent, GenerateJob } from '../../../gpu-backend/src/engine/protocol.ts';
import { Scheduler } from '../../../gpu-backend/src/engine/scheduler.ts';
import { Sequence } from '../../../gpu-backend/src/engine/sequence.ts';
import { SequenceSampler } from '../../../gpu-backend/src/sampling/sampler.ts';
import { DEFAULT_LIMITS, job, tinyModel } from '../helpers/engine.ts';
import { randomTokens } from '../helpers/graphs.ts';
import { cleanupTempDirs, tempDir, testSeed } from '../helpers/models.ts';

const seed = testSeed();
let model: LoadedModel;

/** A scheduler in this thread with a sink that collects each request's events. */
class Harness {
  readonly scheduler: Scheduler;
  private readonly waiting = new Map<number, { events: GenerateEvent[]; done: (r: Outcome) => void }>();
  private readonly running: Promise<void>;
  private nextId = 1;
  widest = 0;

  constructor(decodeLoopSteps = 0) {
    this.scheduler = new Scheduler(
      model,
      { ...DEFAULT_LIMITS, decodeLoopSteps },
      {
        events: (events) => {
          this.widest = Math.max(this.widest, this.scheduler.stats().lastBatchSize);
          for (const ev of events) {
            const w = this.waiting.get(ev.id)!;
            w.events.push(ev);
            if (ev.finish) {
              this.waiting.delete(ev.id);
              w.done({
                tokens: w.events.flatMap((e) => e.tokens.map((t) => t.id)),
                finish: ev.finish,
                error: ev.error,
                usage: ev.usage,
              });
            }
          }
        },
        logits: () => {},
        rejected: (id, error) => {
          const w = this.waiting.get(id)!;
          this.waiting.delete(id);
          w.done({ tokens: [], finish: 'rejected', error });
        },
      },
    );
    this.running = this.scheduler.loop();
  }

  /** Submits a job (synchronously, so jobs submitted together are admitted together) and returns its outcome. */
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

interface Outcome {
  tokens: number[];
  finish: string;
  error?: { message: string; code: string };
  usage?: GenerateEvent['usage'];
}

beforeAll(async () => {
  model = await loadModel(
    { mode: 'single', model: tinyModel(seed) },
    { device: 'cpu', threads: 1, graphCache: join(tempDir(), 'graphs'), decodeLoop: true },
  );
}, 120_000);
afterEach(() => {
  vi.restoreAllMocks();
});
afterAll(async () => {
  await model?.runner.session.release();
  cleanupTempDirs();
});

/** Ten ordinary jobs (greedy ones only when `greedy`, so that the decode-loop path is taken). */
function ordinary(greedy = false): Omit<GenerateJob, 'id'>[] {
  const V = model.vocabSize;
  return Array.from({ length: 10 }, (_, i) =>
    job(
      randomTokens(3 + i, V),
      1,
      32,
      greedy || i % 3 === 0 ? {} : { temperature: 0.9, top_p: 0.9, seed: i, logprobs: i % 2 === 0, top_logprobs: 2 },
    ),
  );
}

/** Runs the jobs alone, then together with `poison` (all submitted at once); returns both. */
async function aloneAndTogether(
  h: Harness,
  jobs: Omit<GenerateJob, 'id'>[],
  poison: Omit<GenerateJob, 'id'>,
  arm: (poisonId: number) => void,
) {
  const alone: Outcome[] = [];
  for (const j of jobs) alone.push(await h.submit(j).outcome);
  h.widest = 0;
  const others = jobs.slice(0, 5).map((j) => h.submit(j));
  const bad = h.submit(poison);
  others.push(...jobs.slice(5).map((j) => h.submit(j)));
  arm(bad.id);
  const together = await Promise.all(others.map((o) => o.outcome));
  return { alone, together, poisoned: await bad.outcome };
}

async function expectIdle(h: Harness): Promise<void> {
  const s = h.scheduler.stats();
  expect([s.running, s.queued, s.rows, s.kvTokensUsed, s.kvTokensReserved]).toEqual([0, 0, 0, 0, 0]);
}

describe(`a fault in one row ends that row alone (seed ${seed})`, () => {
  it('the sampler throws for one row mid-generation: it ends with sequence_failed, the ten others finish as alone', async () => {
    const h = new Harness();
    try {
      let poisonId = -1;
      const next = SequenceSampler.prototype.next;
      let calls = 0;
      vi.spyOn(SequenceSampler.prototype, 'next').mockImplementation(function (this: SequenceSampler, logits: Float32Array) {
        if (this.params.seed === 666 && poisonId > 0 && ++calls === 4) throw new TypeError('injected sampler fault');
        return next.call(this, logits);
      });
      // a sampled row among others takes the split path (engine/host-sampling.ts): the fault goes there too
      const finish = SequenceSampler.prototype.finishDraw;
      vi.spyOn(SequenceSampler.prototype, 'finishDraw').mockImplementation(function (this: SequenceSampler, j, t) {
        if (this.params.seed === 666 && poisonId > 0 && ++calls === 4) throw new TypeError('injected sampler fault');
        return finish.call(this, j, t);
      });
      const jobs = ordinary();
      const { alone, together, poisoned } = await aloneAndTogether(
        h,
        jobs,
        job(randomTokens(5, model.vocabSize), 1, 32, { temperature: 1, seed: 666 }),
        (id) => (poisonId = id),
      );
      expect(together).toEqual(alone);
      expect(h.widest).toBe(11);
      expect(poisoned.finish).toBe('error');
      expect(poisoned.error?.code).toBe('sequence_failed');
      expect(poisoned.error?.message).toMatch(/injected sampler fault/);
      // exact usage of what it did generate before the fault
      expect(poisoned.tokens).toHaveLength(3);
      expect(poisoned.usage?.completion_tokens).toBe(3);
      await expectIdle(h);
      // and the next request runs as before
      expect(await h.submit(jobs[1]).outcome).toEqual(alone[1]);
    } finally {
      await h.stop();
    }
  });

  for (const loop of [0, 4]) {
    it(`taking a token throws for one row (stops, detokenizing)${loop ? ', greedy rows in the decode-loop graph' : ''}: that row alone ends`, async () => {
      const h = new Harness(loop);
      try {
        let poisonId = -1;
        const accept = Sequence.prototype.accept;
        vi.spyOn(Sequence.prototype, 'accept').mockImplementation(function (this: Sequence, token) {
          if (this.job.id === poisonId && this.generated === 5) throw new RangeError('injected detokenizer fault');
          return accept.call(this, token);
        });
        const loopRuns = vi.spyOn(model.runner, 'loop');
        const { alone, together, poisoned } = await aloneAndTogether(
          h,
          ordinary(loop > 0),
          job(randomTokens(7, model.vocabSize), 1, 32),
          (id) => (poisonId = id),
        );
        expect(together).toEqual(alone);
        expect(poisoned.finish).toBe('error');
        expect(poisoned.error?.code).toBe('sequence_failed');
        expect(poisoned.error?.message).toMatch(/injected detokenizer fault/);
        expect(poisoned.tokens).toHaveLength(5);
        if (loop)
          expect(loopRuns).toHaveBeenCalled(); // the greedy rows really ran in the decode-loop graph
        else expect(loopRuns).not.toHaveBeenCalled();
        await expectIdle(h);
      } finally {
        await h.stop();
      }
    });
  }

  it('a row whose next token is not a vocabulary id fails before the step, not the step of the batch', async () => {
    const h = new Harness();
    try {
      let poisonId = -1;
      const next = SequenceSampler.prototype.next;
      vi.spyOn(SequenceSampler.prototype, 'next').mockImplementation(function (this: SequenceSampler, logits: Float32Array) {
        const r = next.call(this, logits);
        return this.params.seed === 777 && poisonId > 0 ? { ...r, token: logits.length + 5 } : r;
      });
      const finish = SequenceSampler.prototype.finishDraw;
      vi.spyOn(SequenceSampler.prototype, 'finishDraw').mockImplementation(function (this: SequenceSampler, j, t) {
        const r = finish.call(this, j, t);
        return this.params.seed === 777 && poisonId > 0 ? { ...r, token: j.z.length + 5 } : r;
      });
      const { alone, together, poisoned } = await aloneAndTogether(
        h,
        ordinary(),
        job(randomTokens(5, model.vocabSize), 1, 32, { temperature: 1, seed: 777 }),
        (id) => (poisonId = id),
      );
      expect(together).toEqual(alone);
      expect(poisoned.finish).toBe('error');
      expect(poisoned.error?.code).toBe('sequence_failed');
      await expectIdle(h);
    } finally {
      await h.stop();
    }
  });

  it('a job the sequence cannot be built from is refused alone, and the scheduler keeps running', async () => {
    const h = new Harness();
    try {
      const jobs = ordinary();
      const alone: Outcome[] = [];
      for (const j of jobs.slice(0, 3)) alone.push(await h.submit(j).outcome);
      const runs = jobs.slice(0, 3).map((j) => h.submit(j));
      // a seed that is not a number: the random stream cannot be seeded (BigInt(NaN) throws)
      let bad: { outcome: Promise<Outcome> } | undefined;
      expect(() => (bad = h.submit(job([1, 2, 3], 1, 8, { temperature: 1, seed: Number.NaN })))).not.toThrow();
      const refused = await bad!.outcome;
      expect(refused.finish).toBe('rejected');
      expect(refused.error?.code).toBe('invalid_job');
      expect(await Promise.all(runs.map((r) => r.outcome))).toEqual(alone);
      await expectIdle(h);
    } finally {
      await h.stop();
    }
  });
});

describe(`a model run that fails (seed ${seed})`, () => {
  it('a failed prefill is retried one sequence at a time: only the prompt that breaks the run fails', async () => {
    const h = new Harness();
    try {
      const jobs = ordinary();
      const alone: Outcome[] = [];
      for (const j of jobs) alone.push(await h.submit(j).outcome);
      const poisonPrompt = [11, 22, 33, 44, 55, 66, 77];
      const step = model.runner.step.bind(model.runner);
      let prefillRuns = 0;
      vi.spyOn(model.runner, 'step').mockImplementation((plan) => {
        if (plan.prefill) prefillRuns++;
        if (
          plan.prefill &&
          plan.tokens.some((t) => t.length === poisonPrompt.length && t.every((x, i) => x === poisonPrompt[i]))
        ) {
          return Promise.reject(new Error('injected ONNX Runtime failure'));
        }
        return step(plan);
      });
      // all submitted in one turn: one prefill group with the poison in it
      const runs = jobs.map((j) => h.submit(j));
      const bad = h.submit(job(poisonPrompt, 1, 8));
      const together = await Promise.all(runs.map((r) => r.outcome));
      const poisoned = await bad.outcome;
      expect(together).toEqual(alone);
      expect(poisoned.finish).toBe('error');
      expect(poisoned.error?.code).toBe('engine_error');
      expect(poisoned.error?.message).toMatch(/injected ONNX Runtime failure/);
      expect(prefillRuns).toBe(1 + 11); // the group, then each of the eleven alone
      await expectIdle(h);
    } finally {
      await h.stop();
    }
  });

  it('a failed decode run ends the sequences of that run; the engine serves new requests afterwards', async () => {
    const h = new Harness();
    try {
      const jobs = ordinary();
      const alone = await h.submit(jobs[2]).outcome;
      const step = model.runner.step.bind(model.runner);
      let decodes = 0;
      vi.spyOn(model.runner, 'step').mockImplementation((plan) => {
        if (!plan.prefill && ++decodes === 3) return Promise.reject(new Error('injected ONNX Runtime failure'));
        return step(plan);
      });
      const runs = jobs.slice(0, 4).map((j) => h.submit(j));
      const outcomes = await Promise.all(runs.map((r) => r.outcome));
      for (const o of outcomes) {
        expect(o.finish).toBe('error');
        expect(o.error?.code).toBe('engine_error');
        expect(o.tokens).toHaveLength(3); // the prefill's token and two decode steps
        expect(o.usage?.completion_tokens).toBe(3);
      }
      await expectIdle(h);
      expect(await h.submit(jobs[2]).outcome).toEqual(alone);
    } finally {
      await h.stop();
    }
  });
});
