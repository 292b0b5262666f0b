import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { IncrementalDecoder } from '../../../gpu-backend/src/text/incremental-decoder.ts';
import { copyBundledTokenizer, writeTinyTokenizer } from '../../../gpu-backend/src/text/tiny-tokenizer.ts';
import { TextTokenizer } from '../../../gpu-backend/src/text/tokenizer.ts';
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
