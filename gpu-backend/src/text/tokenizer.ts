import { readFileSync } from 'node:fs';
import { Template } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';
import { byteLevelToBytes } from './byte-table.ts';

/** One chat message as the chat template sees it. */
export interface ChatMessage {
  role: string;
  content: string;
  name?: string;
}

/** A tokenizer folder that cannot be loaded or used as asked: the message names the file or what is missing. */
/** Options of {@link TextTokenizer.applyChatTemplate}. */
export interface ChatTemplateOptions {
  /** Append the template's assistant prefix (default true; ignored when continuing). */
  addGenerationPrompt?: boolean;
  /** End the text inside the last message, which the model continues (default false). */
  continueFinalMessage?: boolean;
  /** Extra template variables. */
  extra?: Record<string, unknown>;
}

export class TokenizerError extends Error {
  constructor(
    message: string,
    readonly file?: string,
  ) {
    super(message);
    this.name = 'TokenizerError';
  }
}

interface AddedTokenJson {
  id: number;
  content: string;
  special?: boolean;
}

/** A normalizer or pre-tokenizer entry of tokenizer.json (only what the prompt byte bound looks at). */
interface StepJson {
  type: string;
  behavior?: string;
  normalizers?: StepJson[];
  pretokenizers?: StepJson[];
}

interface TokenizerJson {
  model: { type?: string; vocab: Record<string, number> | [string, number][]; byte_fallback?: boolean };
  added_tokens?: AddedTokenJson[];
  decoder?: { type: string; decoders?: { type: string }[] } | null;
  normalizer?: StepJson | null;
  pre_tokenizer?: StepJson | null;
}

type TokenField = string | { content: string } | null | undefined;

interface TokenizerConfigJson {
  bos_token?: TokenField;
  eos_token?: TokenField;
  pad_token?: TokenField;
  unk_token?: TokenField;
  additional_special_tokens?: TokenField[];
  chat_template?: string | { name: string; template: string }[];
  [key: string]: unknown;
}

const UTF8 = new TextEncoder();
const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true });
/** As the ByteLevel decoder decodes: invalid bytes become U+FFFD, a leading BOM is kept. */
const LENIENT_UTF8 = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
const BYTE_FALLBACK = /^<0x([0-9A-Fa-f]{2})>$/;

function tokenContent(field: TokenField): string | null {
  if (field === null || field === undefined) return null;
  return typeof field === 'string' ? field : field.content;
}

function readJson(path: string, what: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new TokenizerError(`cannot read ${what} at ${path}: ${(err as Error).message}`, path);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new TokenizerError(`${path} is not valid JSON (${(err as Error).message}); expected a Hugging Face ${what}`, path);
  }
}

function pickChatTemplate(raw: TokenizerConfigJson['chat_template']): string | null {
  if (typeof raw === 'string') return raw;
  if (Array.isArray(raw) && raw.length > 0) return (raw.find((t) => t.name === 'default') ?? raw[0]).template;
  return null;
}

/**
 * How many times shorter (in UTF-8 bytes) a normalizer can make a text, or null when it may delete text outright.
 * Unicode normalization and lowercasing shrink by at most 4 (NFKC folds a 4-byte mathematical letter into ASCII;
 * NFC composes three 3-byte Hangul jamo into one syllable; the Kelvin sign lowercases to `k`).
 */
function normalizerShrink(n: StepJson | null | undefined): number | null {
  if (!n) return 1;
  if (n.type === 'Sequence') {
    let f = 1;
    for (const x of n.normalizers ?? []) {
      const g = normalizerShrink(x);
      if (g === null) return null;
      f *= g;
    }
    return f;
  }
  if (['NFC', 'NFD', 'NFKC', 'NFKD', 'Lowercase'].includes(n.type)) return 4;
  if (n.type === 'Prepend') return 1;
  return null;
}

/** Whether a pre-tokenizer keeps every byte of its input (splits, never drops). */
function keepsAllBytes(p: StepJson | null | undefined): boolean {
  if (!p) return true;
  if (p.type === 'Sequence') return (p.pretokenizers ?? []).every(keepsAllBytes);
  if (p.type === 'Split') return p.behavior !== 'Removed';
  return ['ByteLevel', 'Metaspace', 'Digits', 'Punctuation', 'UnicodeScripts'].includes(p.type);
}

function usesByteLevel(decoder: TokenizerJson['decoder']): boolean {
  if (!decoder) return false;
  if (decoder.type === 'ByteLevel') return true;
  return decoder.type === 'Sequence' && (decoder.decoders ?? []).some((d) => d.type === 'ByteLevel');
}

/**
 * A Hugging Face tokenizer (`tokenizer.json` + `tokenizer_config.json`) with the chat template, special-token
 * ids and per-token bytes that generation needs. Encoding and decoding go through `@huggingface/tokenizers`.
 */
export class TextTokenizer {
  /** Number of token ids the tokenizer knows (highest id + 1, added tokens included). */
  readonly vocabSize: number;
  /** Ids that end generation: the config's `eos_token` (empty when it names none). */
  readonly eosTokenIds: readonly number[];
  /** Id of the config's `bos_token`, or null when it has none. */
  readonly bosTokenId: number | null;
  private readonly inner: Tokenizer;
  private readonly byteLevel: boolean;
  /** the decoder is exactly ByteLevel, so `decodeByteLevel` reproduces it */
  private readonly byteLevelOnly: boolean;
  private readonly bytesCache = new Map<number, readonly number[]>();
  /** logprobs answers name thousands of tokens; each id's text is worked out once */
  private readonly stringCache = new Map<number, string>();
  private readonly byteFallback: boolean;
  private readonly addedContent = new Map<number, string>();
  private readonly specialIds = new Set<number>();
  private readonly template: Template | null;
  private readonly templateTokens: Record<string, string>;
  /** the normalizer's worst shrink factor, or null when the pipeline may drop text */
  private readonly shrink: number | null;
  private bytesPerTokenCache: number | null | undefined;

  private constructor(json: TokenizerJson, config: TokenizerConfigJson, source: string) {
    try {
      this.inner = new Tokenizer(json, config);
    } catch (err) {
      throw new TokenizerError(`${source}: unsupported or malformed tokenizer (${(err as Error).message})`, source);
    }
    this.byteLevel = usesByteLevel(json.decoder);
    this.byteLevelOnly = json.decoder?.type === 'ByteLevel';
    this.byteFallback = json.model.byte_fallback === true;
    this.shrink = keepsAllBytes(json.pre_tokenizer) ? normalizerShrink(json.normalizer) : null;
    let maxId = -1;
    for (const id of this.inner.get_vocab(true).values()) maxId = Math.max(maxId, id);
    this.vocabSize = maxId + 1;
    for (const t of json.added_tokens ?? []) {
      this.addedContent.set(t.id, t.content);
      if (t.special) this.specialIds.add(t.id);
    }
    for (const extra of config.additional_special_tokens ?? []) {
      const id = this.idOf(tokenContent(extra));
      if (id !== null) this.specialIds.add(id);
    }
    const eos = this.idOf(tokenContent(config.eos_token));
    this.eosTokenIds = eos === null ? [] : [eos];
    this.bosTokenId = this.idOf(tokenContent(config.bos_token));
    this.templateTokens = {};
    for (const key of ['bos_token', 'eos_token', 'pad_token', 'unk_token'] as const) {
      const content = tokenContent(config[key]);
      if (content !== null) this.templateTokens[key] = content;
    }
    const templateText = pickChatTemplate(config.chat_template);
    try {
      this.template = templateText === null ? null : new Template(templateText);
    } catch (err) {
      throw new TokenizerError(`${source}: chat_template does not parse (${(err as Error).message})`, source);
    }
  }

  /** Loads `tokenizer.json` and, when given, `tokenizer_config.json` (chat template, bos/eos tokens). */
  static load(tokenizerJsonPath: string, tokenizerConfigPath: string | null): TextTokenizer {
    const json = readJson(tokenizerJsonPath, 'tokenizer.json') as TokenizerJson;
    if (typeof json !== 'object' || json === null || typeof json.model !== 'object') {
      throw new TokenizerError(
        `${tokenizerJsonPath} has no "model" section; expected a Hugging Face tokenizer.json`,
        tokenizerJsonPath,
      );
    }
    const config =
      tokenizerConfigPath === null ? {} : (readJson(tokenizerConfigPath, 'tokenizer_config.json') as TokenizerConfigJson);
    return new TextTokenizer(json, config, tokenizerJsonPath);
  }

  /**
   * The most UTF-8 bytes of input one token can stand for: the longest token's bytes times the normalizer's worst
   * shrink. A text of N bytes then encodes to at least N / this many tokens, so a text longer than
   * `maxTokens × this` bytes is over `maxTokens` without being tokenized. Null when no such bound holds (a
   * normalizer or pre-tokenizer that may drop text). Worked out once, on first use.
   */
  get maxBytesPerToken(): number | null {
    if (this.bytesPerTokenCache === undefined) {
      let longest = 1;
      for (let id = 0; id < this.vocabSize; id++) longest = Math.max(longest, this.tokenBytes(id).length);
      this.bytesPerTokenCache = this.shrink === null ? null : longest * this.shrink;
    }
    return this.bytesPerTokenCache;
  }

  /** Whether the decoder is exactly ByteLevel, so that decoding needs only each token's bytes (text/token-table.ts). */
  get byteLevelDecoder(): boolean {
    return this.byteLevelOnly;
  }

  /** Whether the tokenizer knows `id` (ids it does not know decode to nothing). */
  knows(id: number): boolean {
    return id >= 0 && id < this.vocabSize && this.inner.id_to_token(id) !== undefined;
  }

  /** The content of added token `id`, or undefined when `id` is not an added token. */
  addedTokenContent(id: number): string | undefined {
    return this.addedContent.get(id);
  }

  /** Whether `tokenizer_config.json` carried a chat template. */
  get hasChatTemplate(): boolean {
    return this.template !== null;
  }

  /** Token ids of `text`; `addSpecialTokens` (default true) lets the post-processor add e.g. BOS. */
  encode(text: string, { addSpecialTokens = true }: { addSpecialTokens?: boolean } = {}): number[] {
    return this.inner.encode(text, { add_special_tokens: addSpecialTokens }).ids;
  }

  /**
   * Text of `ids`. Ids the tokenizer does not know (a model's embedding may have padding rows past the
   * tokenizer's vocabulary) decode to nothing. `clean_up_tokenization_spaces` is never applied: it rewrites
   * " ." and " n't" and would make streamed text differ from the concatenation of its chunks.
   */
  decode(ids: ArrayLike<number>, { skipSpecialTokens = false }: { skipSpecialTokens?: boolean } = {}): string {
    const known: number[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (this.knows(id)) known.push(id);
    }
    if (known.length === 0) return '';
    if (this.byteLevelOnly) return this.decodeByteLevel(known, skipSpecialTokens);
    return this.inner.decode(known, { skip_special_tokens: skipSpecialTokens, clean_up_tokenization_spaces: false });
  }

  /**
   * What the library's ByteLevel decoder does, without its per-token searches of the added-token list (this
   * runs for every streamed token): bytes of consecutive ordinary tokens decode together, an added token
   * ends such a run and stands for its own text, a skipped special token vanishes without ending the run.
   */
  private decodeByteLevel(ids: readonly number[], skipSpecialTokens: boolean): string {
    let text = '';
    const run: number[] = [];
    for (const id of ids) {
      if (skipSpecialTokens && this.specialIds.has(id)) continue;
      const added = this.addedContent.get(id);
      if (added === undefined) {
        for (const b of this.cachedBytes(id)) run.push(b);
        continue;
      }
      if (run.length > 0) text += LENIENT_UTF8.decode(new Uint8Array(run));
      run.length = 0;
      text += added;
    }
    if (run.length > 0) text += LENIENT_UTF8.decode(new Uint8Array(run));
    return text;
  }

  private cachedBytes(id: number): readonly number[] {
    let bytes = this.bytesCache.get(id);
    if (bytes === undefined) this.bytesCache.set(id, (bytes = this.tokenBytes(id)));
    return bytes;
  }

  /**
   * Renders the chat template; `extra` adds template variables (e.g. `enable_thinking`, `tools`). With
   * `continueFinalMessage` the text ends right after the last message's content: the assistant's answer so far,
   * without the end-of-turn marker the template writes after it.
   */
  applyChatTemplate(messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): string {
    const rendered = this.renderTemplate(messages, options);
    if (!options.continueFinalMessage) return rendered;
    const last = messages.at(-1)?.content ?? '';
    const at = last === '' ? -1 : rendered.lastIndexOf(last);
    if (at < 0) {
      throw new TokenizerError(
        'the chat template does not write the last message verbatim, so it cannot be continued; send `prompt` instead',
      );
    }
    return rendered.slice(0, at + last.length);
  }

  private renderTemplate(
    messages: readonly ChatMessage[],
    { addGenerationPrompt = true, continueFinalMessage = false, extra = {} }: ChatTemplateOptions,
  ): string {
    if (this.template === null) {
      throw new TokenizerError(
        'this tokenizer has no chat_template in tokenizer_config.json: send a plain prompt (completions) or use a model whose tokenizer has one',
      );
    }
    try {
      return this.template.render({
        ...extra,
        ...this.templateTokens,
        messages: messages.map((m) => ({ ...m })),
        add_generation_prompt: addGenerationPrompt && !continueFinalMessage,
      });
    } catch (err) {
      throw new TokenizerError(`the chat template rejected these messages: ${(err as Error).message}`);
    }
  }

  /** Token ids of the rendered chat; the template writes its own BOS, so the post-processor adds none. */
  encodeChat(messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): number[] {
    return this.encode(this.applyChatTemplate(messages, options), { addSpecialTokens: false });
  }

  /** Whether `id` is a special token (skipped by `skipSpecialTokens`). */
  isSpecial(id: number): boolean {
    return this.specialIds.has(id);
  }

  /** Id of a token string as stored in the vocabulary (e.g. `<|im_end|>`), or null. */
  idOf(token: string | null): number | null {
    if (token === null) return null;
    return this.inner.token_to_id(token) ?? null;
  }

  /**
   * The UTF-8 bytes token `id` stands for: added tokens give their content; byte-level tokens map back through
   * the GPT-2 byte table; `<0xNN>` byte-fallback tokens give one byte; others their text with `▁` as a space.
   * Unknown ids give no bytes.
   */
  tokenBytes(id: number): number[] {
    const added = this.addedContent.get(id);
    if (added !== undefined) return Array.from(UTF8.encode(added));
    const token = id >= 0 && id < this.vocabSize ? this.inner.id_to_token(id) : undefined;
    if (token === undefined) return [];
    if (this.byteLevel) {
      const bytes = byteLevelToBytes(token);
      if (bytes !== null) return bytes;
    }
    const fallback = this.byteFallback ? BYTE_FALLBACK.exec(token) : null;
    if (fallback) return [parseInt(fallback[1], 16)];
    return Array.from(UTF8.encode(token.replaceAll('\u2581', ' ')));
  }

  /**
   * The text of token `id` for a logprobs `token` field: its bytes as UTF-8 text, or — when they are not
   * complete UTF-8 (part of a multi-byte character) — `bytes:` followed by `\xNN` escapes, as OpenAI does.
   */
  tokenString(id: number): string {
    let text = this.stringCache.get(id);
    if (text !== undefined) return text;
    const bytes = this.tokenBytes(id);
    try {
      text = STRICT_UTF8.decode(new Uint8Array(bytes));
    } catch {
      text = 'bytes:' + bytes.map((b) => '\\x' + b.toString(16).padStart(2, '0')).join('');
    }
    // only ids the tokenizer knows are kept, so the cache is bounded by the vocabulary
    if (id >= 0 && id < this.vocabSize) this.stringCache.set(id, text);
    return text;
  }
}
