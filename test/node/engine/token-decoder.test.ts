/**
 * Which decoder the engine detokenizes with (model-loader.ts textOf): the token table it was given, without parsing
 * tokenizer.json, when the tokenizer's decoder is exactly ByteLevel; the tokenizer library when it is not (a
 * SentencePiece-style Sequence of Replace, ByteFallback, Fuse and Strip, whose decode the table's bytes do not
 * reproduce); one load of the tokenizer when no table is given.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import type { Checkpoint } from '../../../gpu-backend/src/checkpoint/checkpoint.ts';
import { textOf } from '../../../gpu-backend/src/engine/model-loader.ts';
import { writeTinyTokenizer } from '../../../gpu-backend/src/make/tiny-tokenizer.ts';
import { TokenTable } from '../../../gpu-backend/src/text/token-table.ts';
import { TextTokenizer } from '../../../gpu-backend/src/text/tokenizer.ts';
import { cleanupTempDirs, tempDir } from '../helpers/models.ts';

afterAll(cleanupTempDirs);
afterEach(() => {
  vi.restoreAllMocks();
});

/** A Llama-2-style tokenizer: BPE over `▁`-marked words with byte fallback, decoded by a SentencePiece sequence. */
function writeSentencePieceTokenizer(dir: string): void {
  const vocab: Record<string, number> = { '<unk>': 0, '<s>': 1, '</s>': 2 };
  for (let b = 0; b < 256; b++) vocab[`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`] = 3 + b;
  for (const w of ['▁', 'h', 'e', 'l', 'o', '▁h', 'el', '▁hel', 'lo', '▁hello']) vocab[w] = Object.keys(vocab).length;
  const special = (id: number, content: string) => ({ id, content, special: true, normalized: false });
  const json = {
    version: '1.0',
    added_tokens: [special(0, '<unk>'), special(1, '<s>'), special(2, '</s>')],
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'Prepend', prepend: '▁' },
        { type: 'Replace', pattern: { String: ' ' }, content: '▁' },
      ],
    },
    pre_tokenizer: null,
    post_processor: null,
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: {
      type: 'BPE',
      unk_token: '<unk>',
      fuse_unk: true,
      byte_fallback: true,
      vocab,
      merges: ['▁ h', 'e l', '▁h el', 'l o', '▁hel lo'],
    },
  };
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(json));
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ bos_token: '<s>', eos_token: '</s>' }));
}

/** The tokenizer fields of a checkpoint folder (textOf reads no other). */
function ckptOf(dir: string): Checkpoint {
  return {
    dir,
    tokenizerFile: join(dir, 'tokenizer.json'),
    tokenizerConfigFile: join(dir, 'tokenizer_config.json'),
  } as Checkpoint;
}

function load(dir: string): TextTokenizer {
  return TextTokenizer.load(join(dir, 'tokenizer.json'), join(dir, 'tokenizer_config.json'));
}

describe('the engine decoder', () => {
  it('is the given table for a ByteLevel tokenizer, and tokenizer.json is not read', () => {
    const dir = tempDir();
    writeTinyTokenizer(dir, { vocabSize: 300 });
    const tok = load(dir);
    const table = TokenTable.fromTokenizer(tok);
    writeFileSync(join(dir, 'tokenizer.json'), 'not a tokenizer');
    const loads = vi.spyOn(TextTokenizer, 'load');
    const { tokens, decoder } = textOf(ckptOf(dir), table.data);
    expect(loads).not.toHaveBeenCalled();
    expect(decoder).toBe(tokens);
    const ids = tok.encode('héllo 🙂', { addSpecialTokens: false });
    expect(decoder.decode(ids)).toBe('héllo 🙂');
    expect(tokens.eosTokenIds).toEqual(tok.eosTokenIds);
  });

  it('is the tokenizer library for a SentencePiece-style decoder, whose decode the table does not reproduce', () => {
    const dir = tempDir();
    writeSentencePieceTokenizer(dir);
    const tok = load(dir);
    const table = TokenTable.fromTokenizer(tok);
    expect(table.byteLevelDecoder).toBe(false);
    const ids = tok.encode('hello hello é', { addSpecialTokens: false });
    expect(tok.decode(ids)).toBe('hello hello é');
    // the table's bytes give ' hello hello é': the leading space only the library's Strip removes
    expect(table.decode(ids)).not.toBe(tok.decode(ids));
    const loads = vi.spyOn(TextTokenizer, 'load');
    const { tokens, decoder } = textOf(ckptOf(dir), table.data);
    expect(loads).toHaveBeenCalledTimes(1);
    expect(decoder).not.toBe(tokens);
    expect(decoder.decode(ids)).toBe('hello hello é');
    expect(tokens.tokenBytes(ids[0])).toEqual(tok.tokenBytes(ids[0]));
    expect(tokens.eosTokenIds).toEqual([2]);
  });

  it.each(['byte-level', 'sentencepiece'] as const)('without a table (%s) comes from one tokenizer load', (kind) => {
    const dir = tempDir();
    if (kind === 'byte-level') writeTinyTokenizer(dir, { vocabSize: 300 });
    else writeSentencePieceTokenizer(dir);
    const loads = vi.spyOn(TextTokenizer, 'load');
    const { tokens, decoder } = textOf(ckptOf(dir), undefined);
    expect(loads).toHaveBeenCalledTimes(1);
    const tok = loads.mock.results[0].value as TextTokenizer;
    expect(tokens.vocabSize).toBe(tok.vocabSize);
    expect(decoder).toBe(kind === 'byte-level' ? tokens : tok);
  });
});
