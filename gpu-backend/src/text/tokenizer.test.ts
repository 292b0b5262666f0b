import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { copyBundledTokenizer, MIN_TINY_VOCAB_SIZE, writeTinyTokenizer } from '../make/tiny-tokenizer.ts';
import { TextTokenizer, TokenizerError } from './tokenizer.ts';
import { SAMPLE_TEXTS } from './samples.ts';

const UTF8 = new TextEncoder();

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'realign-tok-'));
}

function loadTiny(vocabSize: number): TextTokenizer {
  const dir = tempDir();
  writeTinyTokenizer(dir, { vocabSize });
  return TextTokenizer.load(join(dir, 'tokenizer.json'), join(dir, 'tokenizer_config.json'));
}

const bundled = new Map<string, { tok: TextTokenizer; vocabSize: number; dir: string }>();

/** Each bundled tokenizer is copied and loaded once per file (a load takes about a second). */
function loadBundled(kind: 'qwen' | 'llama3'): { tok: TextTokenizer; vocabSize: number; dir: string } {
  let entry = bundled.get(kind);
  if (entry === undefined) {
    const dir = tempDir();
    const info = copyBundledTokenizer(kind, dir);
    entry = { tok: TextTokenizer.load(info.tokenizerJsonPath, info.tokenizerConfigPath), vocabSize: info.vocabSize, dir };
    bundled.set(kind, entry);
  }
  return entry;
}

describe('tiny byte-level BPE tokenizer', () => {
  const tiny = loadTiny(512);

  it.each([MIN_TINY_VOCAB_SIZE, 300, 512, 4096])(
    'keeps the whole vocabulary within vocabSize %i and round-trips',
    (vocabSize) => {
      const dir = tempDir();
      const info = writeTinyTokenizer(dir, { vocabSize });
      const tok = TextTokenizer.load(join(dir, 'tokenizer.json'), join(dir, 'tokenizer_config.json'));
      expect(info.vocabSize).toBeLessThanOrEqual(vocabSize);
      expect(tok.vocabSize).toBe(info.vocabSize);
      expect(Object.values(info.specialTokenIds).every((id) => id < vocabSize)).toBe(true);
      for (const text of Object.values(SAMPLE_TEXTS)) expect(tok.decode(tok.encode(text))).toBe(text);
    },
  );

  it('fills a 512 vocabulary with learned merges', () => {
    expect(tiny.vocabSize).toBe(512);
    const sentence = 'The quick brown fox jumps over the lazy dog.';
    // 253 merges learned from a ~3 KB corpus that contains this sentence: well under one token per byte.
    expect(tiny.encode(sentence).length).toBeLessThan(sentence.length * 0.75);
  });

  it('rejects a vocabulary too small for bytes and specials', () => {
    expect(() => writeTinyTokenizer(tempDir(), { vocabSize: 271 })).toThrow(/≥ 272/);
  });

  it.each(Object.entries(SAMPLE_TEXTS))('round-trips %s text', (_name, text) => {
    expect(tiny.decode(tiny.encode(text))).toBe(text);
  });

  it('round-trips any Unicode text (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 60 }), (text) => tiny.decode(tiny.encode(text)) === text),
      { numRuns: 300, seed: 42 },
    );
  });

  it('gives each token the bytes it stands for', () => {
    const text = SAMPLE_TEXTS.mixed + SAMPLE_TEXTS.emoji;
    const bytes = tiny.encode(text).flatMap((id) => tiny.tokenBytes(id));
    expect(bytes).toEqual(Array.from(UTF8.encode(text)));
    expect(tiny.tokenBytes(0xe4)).toEqual([0xe4]);
    expect(tiny.tokenString(0xe4)).toBe('bytes:\\xe4');
    expect(tiny.tokenString('A'.charCodeAt(0))).toBe('A');
  });

  it('knows its special tokens, eos and ChatML template', () => {
    const imEnd = tiny.idOf('<|im_end|>')!;
    const imStart = tiny.idOf('<|im_start|>')!;
    expect(tiny.eosTokenIds).toEqual([imEnd]);
    expect(tiny.bosTokenId).toBeNull();
    expect(tiny.isSpecial(imEnd) && tiny.isSpecial(imStart) && tiny.isSpecial(tiny.idOf('<|endoftext|>')!)).toBe(true);
    expect(tiny.isSpecial(65)).toBe(false);
    const chat = tiny.applyChatTemplate([
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hi 🎉' },
    ]);
    expect(chat).toBe('<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi 🎉<|im_end|>\n<|im_start|>assistant\n');
    expect(tiny.applyChatTemplate([{ role: 'user', content: 'x' }], { addGenerationPrompt: false })).toBe(
      '<|im_start|>user\nx<|im_end|>\n',
    );
    const ids = tiny.encodeChat([{ role: 'user', content: 'x' }]);
    expect(ids[0]).toBe(imStart);
    expect(ids.filter((id) => id === imEnd)).toHaveLength(1);
    expect(tiny.decode(ids, { skipSpecialTokens: true })).toBe('user\nx\nassistant\n');
  });
});

describe('bundled Qwen3 tokenizer', () => {
  let qwen: TextTokenizer;
  let vocabSize: number;
  beforeAll(() => ({ tok: qwen, vocabSize } = loadBundled('qwen')));

  it('reports its vocabulary and special tokens', () => {
    expect(vocabSize).toBe(151669);
    expect(qwen.vocabSize).toBe(151669);
    expect(qwen.eosTokenIds).toEqual([151645]);
    expect(qwen.bosTokenId).toBeNull();
    expect(qwen.isSpecial(151645)).toBe(true);
    expect(qwen.idOf('<think>')).toBe(151667);
    expect(qwen.isSpecial(151667)).toBe(false);
  });

  it.each(Object.entries(SAMPLE_TEXTS))('round-trips %s text (NFC, as its normalizer makes it)', (_name, text) => {
    expect(qwen.decode(qwen.encode(text))).toBe(text.normalize('NFC'));
  });

  it('renders its ChatML template and encodes the special tokens as single ids', () => {
    const messages = [
      { role: 'system', content: 'You are helpful.' },
      { role: 'user', content: '你好' },
    ];
    expect(qwen.applyChatTemplate(messages)).toBe(
      '<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\n你好<|im_end|>\n<|im_start|>assistant\n',
    );
    expect(qwen.applyChatTemplate(messages, { extra: { enable_thinking: false } })).toMatch(
      /<\|im_start\|>assistant\n<think>\n\n<\/think>\n\n$/,
    );
    const ids = qwen.encodeChat(messages);
    expect(ids[0]).toBe(151644);
    expect(ids.filter((id) => id === 151645)).toHaveLength(2);
    expect(qwen.decode(ids)).toBe(qwen.applyChatTemplate(messages));
    expect(qwen.decode([151644, 151645], { skipSpecialTokens: true })).toBe('');
    expect(qwen.decode([151667], { skipSpecialTokens: true })).toBe('<think>');
  });

  it('decodes ids past its vocabulary (model padding rows) to nothing', () => {
    expect(qwen.decode([9707, 151900, 151935])).toBe('Hello');
    expect(qwen.tokenBytes(151900)).toEqual([]);
  });
});

describe('bundled Llama 3.1 tokenizer', () => {
  let llama: TextTokenizer;
  let vocabSize: number;
  beforeAll(() => ({ tok: llama, vocabSize } = loadBundled('llama3')));

  it('reports its vocabulary and special tokens', () => {
    expect(vocabSize).toBe(128256);
    expect(llama.vocabSize).toBe(128256);
    expect(llama.eosTokenIds).toEqual([128009]);
    expect(llama.bosTokenId).toBe(128000);
    expect(llama.isSpecial(128000) && llama.isSpecial(128009)).toBe(true);
    expect(llama.encode('Hi')[0]).toBe(128000);
    expect(llama.encode('Hi', { addSpecialTokens: false })[0]).not.toBe(128000);
  });

  it.each(Object.entries(SAMPLE_TEXTS))('round-trips %s text', (_name, text) => {
    expect(llama.decode(llama.encode(text, { addSpecialTokens: false }))).toBe(text);
  });

  it('keeps " ." and " n\'t" (no clean_up_tokenization_spaces, though its config asks for it)', () => {
    const text = "It is n't so . Is it ?";
    expect(llama.decode(llama.encode(text, { addSpecialTokens: false }))).toBe(text);
  });

  it('renders the Llama 3 chat format with one BOS', () => {
    const messages = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: ' Hi! ' },
    ];
    expect(llama.applyChatTemplate(messages)).toBe(
      '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>' +
        '<|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n',
    );
    const ids = llama.encodeChat(messages);
    expect(ids.filter((id) => id === 128000)).toHaveLength(1);
    expect(ids[0]).toBe(128000);
  });
});

describe('decoding matches @huggingface/tokenizers (its ByteLevel decoder, without clean-up)', () => {
  it.each(['tiny', 'qwen', 'llama3'] as const)(
    'for random ids of the %s tokenizer, incl. special, added and partial-byte tokens (property)',
    (kind) => {
      let dir: string;
      let ours: TextTokenizer;
      if (kind === 'tiny') {
        dir = tempDir();
        writeTinyTokenizer(dir, { vocabSize: 512 });
        ours = TextTokenizer.load(join(dir, 'tokenizer.json'), join(dir, 'tokenizer_config.json'));
      } else ({ dir, tok: ours } = loadBundled(kind));
      const json = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8'));
      const config = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8'));
      const library = new Tokenizer(json, config);
      const added = (json.added_tokens as { id: number }[]).map((t) => t.id);
      const interesting = [...added, ...ours.encode(SAMPLE_TEXTS.emoji + SAMPLE_TEXTS.cjk, { addSpecialTokens: false })];
      const id = fc.oneof(fc.integer({ min: 0, max: ours.vocabSize - 1 }), fc.constantFrom(...interesting));
      fc.assert(
        fc.property(fc.array(id, { minLength: 1, maxLength: 30 }), fc.boolean(), (ids, skip) => {
          const want = library.decode(ids, { skip_special_tokens: skip, clean_up_tokenization_spaces: false });
          expect(ours.decode(ids, { skipSpecialTokens: skip })).toBe(want);
        }),
        { numRuns: 300, seed: 11 },
      );
    },
  );
});

describe('tokenizer loading errors', () => {
  it('names a missing file', () => {
    expect(() => TextTokenizer.load('/nonexistent/tokenizer.json', null)).toThrow(TokenizerError);
    expect(() => TextTokenizer.load('/nonexistent/tokenizer.json', null)).toThrow(/cannot read tokenizer.json at \/nonexistent/);
  });

  it('says what to do when there is no chat template', () => {
    const dir = tempDir();
    writeTinyTokenizer(dir, { vocabSize: 300 });
    const tok = TextTokenizer.load(join(dir, 'tokenizer.json'), null);
    expect(tok.hasChatTemplate).toBe(false);
    expect(tok.eosTokenIds).toEqual([]);
    expect(() => tok.applyChatTemplate([{ role: 'user', content: 'x' }])).toThrow(/no chat_template.*send a plain prompt/);
  });
});
