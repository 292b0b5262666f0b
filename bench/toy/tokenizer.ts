/**
 * The toy's tokenizer: byte-level BPE whose only merges spell a few whole words (the chat roles and the words of
 * the task's traces), so every digit and sign stays its own token, plus the ChatML special tokens and template of
 * the project's tiny tokenizer. Written as ordinary `tokenizer.json` / `tokenizer_config.json` files.
 */
import { bytesToByteLevel } from '../../gpu-backend/src/text/byte-table.ts';
import { writeByteLevelTokenizer } from '../../gpu-backend/src/make/tiny-tokenizer.ts';

/** Words that become single tokens (a leading space belongs to the word, as the GPT-2 pre-tokenizer splits). */
export const TOY_WORDS = ['user', 'assistant', 'system', ' sum', ' check', ' answer', ' carry'];

/** Writes the tokenizer files into `dir`; returns the number of ids used. */
export function writeToyTokenizer(dir: string): number {
  // each word is built left to right: "u"+"s", "us"+"e", ... (merges already made by an earlier word are skipped)
  const merges: [string, string][] = [];
  for (const word of TOY_WORDS) {
    const chars = [...bytesToByteLevel(new TextEncoder().encode(word))];
    let left = chars[0];
    for (const ch of chars.slice(1)) {
      merges.push([left, ch]);
      left += ch;
    }
  }
  return writeByteLevelTokenizer(dir, merges, 512).vocabSize;
}
