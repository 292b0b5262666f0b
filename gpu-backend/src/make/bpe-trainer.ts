import { bytesToByteLevel } from '../text/byte-table.ts';

/** The GPT-2 pre-tokenizer split (what a `ByteLevel` pre-tokenizer with `use_regex` applies before BPE). */
const GPT2_SPLIT = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

const UTF8 = new TextEncoder();

/**
 * Learns up to `maxMerges` byte-level BPE merges from `corpus`: repeatedly merges the most frequent adjacent
 * pair of symbols inside pre-tokenized words (ties broken by the pair's text, so the result is deterministic).
 * Stops early when no word has two symbols left. Returns merges in rank order, as byte-level strings.
 */
export function learnByteLevelMerges(corpus: string, maxMerges: number): [string, string][] {
  const wordCounts = new Map<string, number>();
  for (const piece of corpus.match(GPT2_SPLIT) ?? []) {
    const word = bytesToByteLevel(UTF8.encode(piece));
    wordCounts.set(word, (wordCounts.get(word) ?? 0) + 1);
  }
  const words = [...wordCounts].map(([word, count]) => ({ symbols: [...word], count }));
  const merges: [string, string][] = [];
  while (merges.length < maxMerges) {
    const pairCounts = new Map<string, number>();
    for (const { symbols, count } of words) {
      for (let i = 0; i + 1 < symbols.length; i++) {
        const key = symbols[i] + ' ' + symbols[i + 1];
        pairCounts.set(key, (pairCounts.get(key) ?? 0) + count);
      }
    }
    let bestKey = '';
    let bestCount = 0;
    for (const [key, count] of pairCounts) {
      if (count > bestCount || (count === bestCount && key < bestKey)) {
        bestKey = key;
        bestCount = count;
      }
    }
    if (bestCount === 0) break;
    const [left, right] = bestKey.split(' ') as [string, string];
    merges.push([left, right]);
    for (const word of words) word.symbols = mergePair(word.symbols, left, right);
  }
  return merges;
}

function mergePair(symbols: string[], left: string, right: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < symbols.length; i++) {
    if (i + 1 < symbols.length && symbols[i] === left && symbols[i + 1] === right) {
      out.push(left + right);
      i++;
    } else {
      out.push(symbols[i]);
    }
  }
  return out;
}
