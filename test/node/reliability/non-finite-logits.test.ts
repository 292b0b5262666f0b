/**
 * NaN and ∞ in the logits, from broken weights, through the real engine: a token whose logit is +∞ or NaN is never
 * chosen — greedy on the host, greedy inside a decode-loop graph, sampled — and its neighbours' logprobs stay
 * finite; when no logit is finite (a NaN in the final norm) the request ends with an error that says so, for
 * generation and for blended logits alike.
 *
 * The checkpoint is the bigram model (test/node/helpers/bigram.ts), which spells a text: after token c0 it would
 * write c1 with logit 80 against 0 for everything else. Poisoning lm_head[c1, 0] with +∞ makes c1's logit +∞ after
 * c0 and NaN (0·∞) after any other token — an argmax that does not mask non-finite values picks it at once.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../../gpu-backend/src/engine/engine.ts';
import { bigramModel } from '../helpers/bigram.ts';
import { collect, job, startEngine } from '../helpers/engine.ts';
import { cleanupTempDirs, tempDir } from '../helpers/models.ts';
import { poisonCheckpoint } from './poison-checkpoint.ts';

const D = 64; // hidden size of the tiny preset
let cycle: number[];
let infHead: string;
let nanNorm: string;
let nanLater: string;
const engines: Engine[] = [];

beforeAll(() => {
  const bigram = bigramModel('Poison!');
  cycle = bigram.cycle;
  infHead = join(tempDir(), 'inf-head');
  poisonCheckpoint(bigram.dir, infHead, [{ tensor: 'lm_head.weight', index: cycle[1] * D, value: Infinity }]);
  nanNorm = join(tempDir(), 'nan-norm');
  poisonCheckpoint(bigram.dir, nanNorm, [{ tensor: 'model.norm.weight', index: 0, value: NaN }]);
  // c2's embedding holds a NaN: the logits are finite until c2 is the input, then all NaN
  nanLater = join(tempDir(), 'nan-later');
  poisonCheckpoint(bigram.dir, nanLater, [{ tensor: 'model.embed_tokens.weight', index: cycle[2] * D + 2, value: NaN }]);
}, 60_000);
afterAll(async () => {
  await Promise.all(engines.map((e) => e.shutdown()));
  cleanupTempDirs();
});

async function engine(model: string, decodeLoopSteps = 0): Promise<Engine> {
  const e = await startEngine({ mode: 'single', model }, { decodeLoopSteps });
  engines.push(e);
  return e;
}

describe('non-finite logits', () => {
  for (const loop of [0, 4]) {
    it(`a +∞/NaN logit is never chosen by greedy decoding${loop ? ' inside a decode-loop graph' : ''}`, async () => {
      const e = await engine(infHead, loop);
      const out = await collect(e.generate(job([cycle[0]], 1, 24)));
      expect(out.finish).toBe('length');
      expect(out.tokens).toHaveLength(24);
      expect(out.tokens).not.toContain(cycle[1]);
    });
  }

  it('a +∞/NaN logit is never sampled, and the logprobs of the others stay finite', async () => {
    const e = await engine(infHead);
    const out = await collect(e.generate(job([cycle[0]], 1, 48, { temperature: 1.5, seed: 7, logprobs: true, top_logprobs: 5 })));
    expect(out.finish).toBe('length');
    expect(out.tokens).not.toContain(cycle[1]);
    for (const t of out.events.flatMap((ev) => ev.tokens)) {
      expect(Number.isFinite(t.logprob)).toBe(true);
      for (const alt of t.top!) {
        expect(alt.token).not.toBe(cycle[1]);
        expect(Number.isFinite(alt.logprob)).toBe(true);
      }
    }
  });

  it('blended logits skip the non-finite token and report finite logprobs that sum to at most 1', async () => {
    const e = await engine(infHead);
    const r = await e.logits({
      inputIds: [cycle[0], cycle[3], cycle[0]],
      lambdas: [1],
      positions: 'all',
      topLogprobs: 10,
      includeBranches: false,
    });
    for (const top of r.blends[0].top) {
      expect(top.map((t) => t.token)).not.toContain(cycle[1]);
      for (const t of top) expect(Number.isFinite(t.logprob)).toBe(true);
      expect(top.reduce((s, t) => s + Math.exp(t.logprob), 0)).toBeLessThanOrEqual(1 + 1e-6);
    }
  });

  for (const loop of [0, 4]) {
    it(`no finite logit at all (NaN in the final norm): generation fails with a message${loop ? ' (decode-loop graph)' : ''}`, async () => {
      const e = await engine(nanNorm, loop);
      const out = await collect(e.generate(job([cycle[0]], 1, 8)));
      expect(out.finish).toBe('error');
      expect(out.tokens).toEqual([]);
      expect(out.events.at(-1)!.error).toMatchObject({ code: 'non_finite_logits', message: expect.stringMatching(/NaN/) });
      const s = await e.refreshStats();
      expect({ running: s.running, rows: s.rows }).toEqual({ running: 0, rows: 0 });
    });
  }

  for (const loop of [0, 4]) {
    it(`logits that turn all-NaN mid-generation end it with an error after the tokens before${loop ? ' (decode-loop graph)' : ''}`, async () => {
      const e = await engine(nanLater, loop);
      const out = await collect(e.generate(job([cycle[0]], 1, 8)));
      expect(out.tokens).toEqual([cycle[1], cycle[2]]);
      expect(out.finish).toBe('error');
      expect(out.events.at(-1)!.error).toMatchObject({ code: 'non_finite_logits', message: expect.stringMatching(/NaN/) });
    });
  }

  it('no finite logit at all: a blended-logits request is refused with a message', async () => {
    const e = await engine(nanNorm);
    await expect(
      e.logits({ inputIds: [cycle[0]], lambdas: [1], positions: 'last', topLogprobs: 5, includeBranches: false }),
    ).rejects.toMatchObject({
      code: 'non_finite_logits',
      message: expect.stringMatching(/NaN/),
    });
  });
});
