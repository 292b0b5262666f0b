/**
 * The toy's tokenizer: byte-level BPE whose only merges spell a few whole words (the chat roles and the words of
 * the task's traces), so every digit and sign stays its own token, plus the ChatML special tokens and template of
 * the project's tiny tokenizer. Written as ordinary `tokenizer.json` / `tokenizer_config.json` files.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bytesToByteLevel } from '../../gpu-backend/src/text/byte-table.ts';
import { CHATML_TEMPLATE, TINY_SPECIAL_TOKENS } from '../../gpu-backend/src/text/tiny-tokenizer.ts';

/** Words that become single tokens (a leading space belongs to the word, as the GPT-2 pre-tokenizer splits). */
export const TOY_WORDS = ['user', 'assistant', 'system', ' sum', ' check', ' answer', ' carry'];

/** Writes the tokenizer files into `dir`; returns the number of ids used. */
export function writeToyTokenizer(dir: string): number {
  const vocab: Record<string, number> = {};
  for (let b = 0; b < 256; b++) vocab[bytesToByteLevel([b])] = b;
  const merges: [string, string][] = [];
  let next = 256;
  for (const word of TOY_WORDS) {
    const chars = [...bytesToByteLevel(new TextEncoder().encode(word))];
    let left = chars[0];
    for (const ch of chars.slice(1)) {
      const joined = left + ch;
      if (vocab[joined] === undefined) {
        merges.push([left, ch]);
        vocab[joined] = next++;
      }
      left = joined;
    }
  }
  const added = TINY_SPECIAL_TOKENS.map((content) => ({ id: next++, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }));
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: true };
  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: byteLevel,
    decoder: byteLevel,
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges: merges.map(([a, b]) => `${a} ${b}`) },
  };
  const config = {
    add_bos_token: false,
    add_prefix_space: false,
    bos_token: null,
    eos_token: '<|im_end|>',
    pad_token: '<|endoftext|>',
    unk_token: null,
    additional_special_tokens: ['<|im_start|>', '<|im_end|>'],
    added_tokens_decoder: Object.fromEntries(added.map(({ id, ...rest }) => [String(id), rest])),
    chat_template: CHATML_TEMPLATE,
    clean_up_tokenization_spaces: false,
    model_max_length: 512,
    tokenizer_class: 'PreTrainedTokenizerFast',
  };
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tokenizer));
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(config, null, 2));
  return next;
}
