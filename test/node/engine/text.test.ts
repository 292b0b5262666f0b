import { afterAll, describe, expect, it } from 'vitest';
import { collect, job, startEngine } from '../helpers/engine.ts';
import { bigramModel } from '../helpers/bigram.ts';
import { cleanupTempDirs } from '../helpers/models.ts';

afterAll(cleanupTempDirs);

// CJK, Cyrillic, an emoji and accented Latin, chosen so that their byte-level tokens are all distinct
const TEXT = '世界🙂ж✓ŋ';

describe('text through the engine', () => {
  it('streams multi-byte characters intact and the chunks reassemble to the non-streamed text', async () => {
    const { dir, cycle, tokenizer } = bigramModel(TEXT);
    const engine = await startEngine({ mode: 'single', model: dir });
    try {
      const n = cycle.length * 3;
      const out = await collect(engine.generate(job([cycle[cycle.length - 1]], 1, n)));
      const whole = tokenizer.decode(out.tokens);
      expect(whole).toBe(TEXT.repeat(3));
      expect(out.chunks.join('')).toBe(whole);
      for (const c of out.chunks) {
        expect(c).not.toContain('\uFFFD');
        expect(/[\uD800-\uDBFF]$/.test(c)).toBe(false); // never half a surrogate pair
      }
      // some characters span several tokens, so holding back really happened
      expect(out.chunks.length).toBeLessThan(out.tokens.length);
    } finally {
      await engine.shutdown();
    }
  });

  it('stops at a stop string even when it spans tokens, without including it, and at stop token ids', async () => {
    const { dir, cycle } = bigramModel(TEXT);
    const engine = await startEngine({ mode: 'single', model: dir });
    try {
      const start = [cycle[cycle.length - 1]];
      const byString = await collect(engine.generate(job(start, 1, 100, {}, { stop: ['🙂ж'] })));
      expect(byString.finish).toBe('stop');
      expect(byString.chunks.join('')).toBe('世界');
      const byToken = await collect(engine.generate(job(start, 1, 100, {}, { stopTokenIds: [cycle[2]] })));
      expect(byToken.finish).toBe('stop');
      expect(byToken.tokens.at(-1)).toBe(cycle[2]);
      const byLength = await collect(engine.generate(job(start, 1, 4)));
      expect(byLength.finish).toBe('length');
      expect(byLength.tokens).toEqual(cycle.slice(0, 4));
    } finally {
      await engine.shutdown();
    }
  });
});
