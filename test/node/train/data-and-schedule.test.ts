import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TextTokenizer } from '../../../gpu-backend/src/text/tokenizer.ts';
import { BatchOrder, makeBatch } from '../../../gpu-backend/src/train/batches.ts';
import { DataError, loadDataset } from '../../../gpu-backend/src/train/data.ts';
import { learningRate } from '../../../gpu-backend/src/train/schedule.ts';
import { cleanupTempDirs, tempDir } from '../helpers/models.ts';
import { tinyModelWithTokenizer } from './helpers.ts';

afterAll(cleanupTempDirs);

describe('training data', () => {
  const dir = tinyModelWithTokenizer('qwen2', 1);
  const tok = TextTokenizer.load(join(dir, 'tokenizer.json'), join(dir, 'tokenizer_config.json'));
  const eos = tok.eosTokenIds[0];
  const file = (lines: string[]) => {
    const f = join(tempDir(), 'd.jsonl');
    writeFileSync(f, lines.join('\n'));
    return f;
  };

  it('tokenizes the prompt through the chat template and the response as the model writes it, ending in the end-of-turn token', () => {
    const [ex, viaMessages] = loadDataset(
      file([
        JSON.stringify({ prompt: 'hi', response: 'hello there' }),
        '',
        JSON.stringify({
          messages: [
            { role: 'user', content: 'hi' },
            { role: 'assistant', content: 'hello there' },
          ],
        }),
      ]),
      tok,
      { eos, maxLength: 64 },
    );
    const prompt = tok.encodeChat([{ role: 'user', content: 'hi' }], { addGenerationPrompt: true });
    expect(ex.ids).toEqual([...prompt, ...tok.encode('hello there', { addSpecialTokens: false }), eos]);
    expect(ex.promptLength).toBe(prompt.length);
    expect(viaMessages).toEqual(ex);
  });

  it('says which line is wrong and why', () => {
    expect(() => loadDataset(file(['{"prompt": "a", "response": "b"}', '{oops']), tok, { eos, maxLength: 64 })).toThrow(
      /d\.jsonl:2: not valid JSON/,
    );
    expect(() => loadDataset(file(['{"prompt": "a"}']), tok, { eos, maxLength: 64 })).toThrow(
      /:1: "prompt" and "response" must be strings/,
    );
    expect(() =>
      loadDataset(file(['{"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]}']), tok, {
        eos,
        maxLength: 64,
      }),
    ).toThrow(/last message must be the assistant's/);
    expect(() =>
      loadDataset(file([JSON.stringify({ prompt: 'x'.repeat(200), response: 'b' })]), tok, { eos, maxLength: 16 }),
    ).toThrow(DataError);
  });

  it('pads a batch on the right and weighs only the positions that predict response tokens', () => {
    const b = makeBatch(
      [
        { ids: [5, 6, 7, 8, 9], promptLength: 3 },
        { ids: [1, 2, 3], promptLength: 1 },
      ],
      0,
    );
    expect(b.width).toBe(4);
    expect(Array.from(b.ids, Number)).toEqual([5, 6, 7, 8, 1, 2, 0, 0]);
    expect(Array.from(b.targets, Number)).toEqual([6, 7, 8, 9, 2, 3, 0, 0]);
    expect(Array.from(b.mask)).toEqual([0, 0, 1, 1, 1, 1, 0, 0]);
    expect(b.responseTokens).toBe(4);
  });
});

describe('batch order and learning rate', () => {
  it('every epoch covers each example once, in an order fixed by (seed, epoch)', () => {
    const lengths = Array.from({ length: 50 }, (_, i) => 5 + (i % 7));
    const order = new BatchOrder(lengths, 4, 9);
    const e0 = order.epoch(0);
    expect(e0.flat().sort((a, b) => a - b)).toEqual(lengths.map((_, i) => i));
    expect(new BatchOrder(lengths, 4, 9).epoch(0)).toEqual(e0);
    expect(order.epoch(1)).not.toEqual(e0);
    expect(order.at(order.perEpoch)).toEqual(order.epoch(1)[0]);
  });

  it('warms up linearly to the peak, then decays along a cosine to the floor', () => {
    const s = { peak: 1e-3, warmupSteps: 10, totalSteps: 110, minRatio: 0.1 };
    expect(learningRate(s, 0)).toBeCloseTo(1e-4, 12);
    expect(learningRate(s, 9)).toBeCloseTo(1e-3, 12);
    expect(learningRate(s, 60)).toBeCloseTo(0.55e-3, 12);
    expect(learningRate(s, 110)).toBeCloseTo(1e-4, 12);
    for (let t = 10; t < 110; t++) expect(learningRate(s, t + 1)).toBeLessThanOrEqual(learningRate(s, t));
  });
});
