import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { IncrementalDecoder } from './incremental-decoder.ts';
import { copyBundledTokenizer, writeTinyTokenizer } from '../make/tiny-tokenizer.ts';
import { TextTokenizer } from './tokenizer.ts';
import { SAMPLE_TEXTS } from './samples.ts';

/** Pushes ids one at a time; returns every chunk, the flushed rest last. */
function stream(tok: TextTokenizer, ids: readonly number[], skipSpecialTokens: boolean): string[] {
  const decoder = new IncrementalDecoder(tok, { skipSpecialTokens });
  const chunks = ids.map((id) => decoder.push(id));
  chunks.push(decoder.flush());
  return chunks;
}

const MULTIBYTE = ['cjk', 'emoji', 'combining', 'mixed'] as const;

const tokenizers: Record<string, () => TextTokenizer> = {
  tiny: () => {
    const dir = mkdtempSync(join(tmpdir(), 'realign-inc-'));
    writeTinyTokenizer(dir, { vocabSize: 512 });
    return TextTokenizer.load(join(dir, 'tokenizer.json'), join(dir, 'tokenizer_config.json'));
  },
  qwen: () => {
    const info = copyBundledTokenizer('qwen', mkdtempSync(join(tmpdir(), 'realign-inc-')));
    return TextTokenizer.load(info.tokenizerJsonPath, info.tokenizerConfigPath);
  },
  llama3: () => {
    const info = copyBundledTokenizer('llama3', mkdtempSync(join(tmpdir(), 'realign-inc-')));
    return TextTokenizer.load(info.tokenizerJsonPath, info.tokenizerConfigPath);
  },
};

describe.each(Object.keys(tokenizers))('incremental decoding with the %s tokenizer', (name) => {
  let tok: TextTokenizer;
  beforeAll(() => {
    tok = tokenizers[name]();
  });

  it.each(MULTIBYTE)('streams %s text token by token without a broken character', (sample) => {
    const text = SAMPLE_TEXTS[sample];
    const ids = tok.encode(text, { addSpecialTokens: false });
    const chunks = stream(tok, ids, false);
    for (const chunk of chunks) expect(chunk).not.toContain('\uFFFD');
    expect(chunks.join('')).toBe(tok.decode(ids));
    expect(chunks.at(-1)).toBe(''); // complete text leaves nothing held at the end
  });

  it('holds tokens that end inside a character (so the test above exercises the hold)', () => {
    const ids = tok.encode(SAMPLE_TEXTS.emoji, { addSpecialTokens: false });
    const partial = ids.filter((id) => tok.tokenString(id).startsWith('bytes:'));
    expect(partial.length).toBeGreaterThan(0);
    expect(stream(tok, ids, false).filter((c) => c === '').length).toBeGreaterThan(0);
  });

  it('streams a chat transcript, dropping special tokens only when asked', () => {
    if (!tok.hasChatTemplate) return;
    const messages = [{ role: 'user', content: `${SAMPLE_TEXTS.cjk} ${SAMPLE_TEXTS.emoji}` }];
    const ids = tok.encodeChat(messages);
    const kept = stream(tok, ids, false).join('');
    const skipped = stream(tok, ids, true).join('');
    expect(kept).toBe(tok.applyChatTemplate(messages));
    expect(skipped).toBe(tok.decode(ids, { skipSpecialTokens: true }));
    expect(skipped).toContain(SAMPLE_TEXTS.emoji);
    const firstSpecial = ids.find((id) => tok.isSpecial(id))!;
    expect(kept).toContain(tok.tokenString(firstSpecial));
    expect(skipped).not.toContain(tok.tokenString(firstSpecial));
  });
});

describe('incremental decoding of arbitrary id sequences', () => {
  const tiny = tokenizers.tiny();

  it('always reassembles to the full decode, also for invalid byte sequences (property)', () => {
    const id = fc.oneof(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: tiny.vocabSize - 1 }));
    fc.assert(
      fc.property(fc.array(id, { maxLength: 40 }), fc.boolean(), (ids, skip) => {
        const chunks = stream(tiny, ids, skip);
        return chunks.join('') === tiny.decode(ids, { skipSpecialTokens: skip });
      }),
      { numRuns: 400, seed: 7 },
    );
  });

  it('emits a character as soon as its last byte arrives', () => {
    const bytes = Array.from(new TextEncoder().encode('é🎉'));
    const decoder = new IncrementalDecoder(tiny, { skipSpecialTokens: false });
    expect(bytes.map((b) => decoder.push(b))).toEqual(['', 'é', '', '', '', '🎉']);
    expect(decoder.flush()).toBe('');
  });

  it('flushes an unfinished character as U+FFFD at the end', () => {
    const decoder = new IncrementalDecoder(tiny, { skipSpecialTokens: false });
    expect(decoder.push(0x41)).toBe('A');
    expect(decoder.push(0xf0)).toBe('');
    expect(decoder.push(0x9f)).toBe('');
    expect(decoder.flush()).toBe('\uFFFD');
  });
});

/** The tiny tokenizer with its decode calls counted (calls and the longest id list decoded). */
function countingDecodes(tok: TextTokenizer): { tok: TextTokenizer; calls: () => number; longest: () => number } {
  let calls = 0;
  let longest = 0;
  const counted = Object.create(tok) as TextTokenizer;
  counted.decode = (ids, options) => {
    calls++;
    longest = Math.max(longest, ids.length);
    return tok.decode(ids, options);
  };
  return { tok: counted, calls: () => calls, longest: () => longest };
}

describe('incremental decoding of long runs of invalid bytes', () => {
  const tiny = tokenizers.tiny();
  const UTF8 = new TextEncoder();
  // each run is 3000 ids; the window must stay a few ids long and each push cost a bounded number of decodes
  const RUNS: Record<string, number[]> = {
    'lone continuation bytes': Array.from({ length: 3000 }, () => 0x80),
    'bytes never valid in UTF-8': Array.from({ length: 3000 }, (_, i) => [0xff, 0xfe, 0xc0, 0xc1, 0xf5][i % 5]),
    'lead bytes that never complete': Array.from({ length: 3000 }, (_, i) => [0xe2, 0xf0, 0x9f, 0xe4][i % 4]),
    'truncated emoji between letters': Array.from({ length: 1000 }, () => [0xf0, 0x9f, 0x41]).flat(),
    'invalid bytes with valid characters between': Array.from({ length: 500 }, () => [
      0x80,
      0x80,
      ...UTF8.encode('é🎉'),
      0xff,
    ]).flat(),
  };

  it.each(Object.keys(RUNS))('%s: chunks join to the full decode, and per-token work stays bounded', (name) => {
    const ids = RUNS[name];
    const counted = countingDecodes(tiny);
    const decoder = new IncrementalDecoder(counted.tok, { skipSpecialTokens: false });
    const chunks = ids.map((id) => decoder.push(id));
    chunks.push(decoder.flush());
    expect(chunks.join('')).toBe(tiny.decode(ids));
    // without the release the longest window is the whole run (3000 ids) and the work grows with its square
    expect(counted.longest()).toBeLessThanOrEqual(16);
    expect(counted.calls()).toBeLessThanOrEqual(4 * ids.length);
    // text keeps flowing: never more than a few pushes without output
    let silent = 0;
    for (const c of chunks) {
      silent = c === '' ? silent + 1 : 0;
      expect(silent).toBeLessThanOrEqual(5);
    }
  });

  it('reassembles to the full decode for long sequences dominated by invalid and partial bytes (property)', () => {
    const tricky = [
      0x80, 0x9f, 0xbf, 0xc3, 0xa9, 0xe2, 0x82, 0xac, 0xf0, 0x9f, 0x98, 0x80, 0xff, 0xc0, 0xed, 0xa0, 0xf4, 0x90, 0x41,
    ];
    const id = fc.oneof(
      { weight: 6, arbitrary: fc.constantFrom(...tricky) },
      { weight: 1, arbitrary: fc.integer({ min: 0, max: tiny.vocabSize - 1 }) },
    );
    fc.assert(
      fc.property(fc.array(id, { minLength: 20, maxLength: 200 }), fc.boolean(), (ids, skip) => {
        const counted = countingDecodes(tiny);
        const decoder = new IncrementalDecoder(counted.tok, { skipSpecialTokens: skip });
        const chunks = ids.map((x) => decoder.push(x));
        chunks.push(decoder.flush());
        return chunks.join('') === tiny.decode(ids, { skipSpecialTokens: skip });
      }),
      { numRuns: 400, seed: 11 },
    );
  });
});
