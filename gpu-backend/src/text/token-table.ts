/**
 * A tokenizer's per-token facts in shared memory, so that a model's tokenizer.json is parsed once (on its tokenizer
 * thread) and the other threads — the server's event loop (token texts of logprobs answers, the prompt byte bound)
 * and the engine thread (streamed text) — read the same bytes without parsing it again. The arrays live in
 * SharedArrayBuffers: `data` crosses threads by postMessage or workerData without being copied.
 */
import type { TextTokenizer } from './tokenizer.ts';

/** The tokenizer knows the id (`id_to_token` names it): unknown ids decode to nothing. */
const KNOWN = 1;
/** An added token: it ends a run of byte tokens and stands for its own content. */
const ADDED = 2;
/** A special token: skipped by `skipSpecialTokens`. */
const SPECIAL = 4;

/** What crosses threads: plain facts, the added tokens' text (few) and three shared arrays. */
export interface TokenTableData {
  /** number of token ids the tokenizer knows (highest id + 1, added tokens included) */
  vocabSize: number;
  /** the tokenizer config's `eos_token` (empty when it names none) */
  eosTokenIds: number[];
  bosTokenId: number | null;
  hasChatTemplate: boolean;
  /** {@link TextTokenizer.maxBytesPerToken} */
  maxBytesPerToken: number | null;
  /** the decoder is exactly ByteLevel, so {@link TokenTable.decode} is the tokenizer's decode */
  byteLevelDecoder: boolean;
  /** token id's bytes are `bytes[offsets[id] .. offsets[id + 1])` (vocabSize + 1 entries) */
  offsets: Int32Array;
  bytes: Uint8Array;
  /** per id: KNOWN | ADDED | SPECIAL */
  flags: Uint8Array;
  /** added tokens as [id, content] */
  added: [number, string][];
}

/** What streamed detokenization needs (engine/sequence.ts, text/incremental-decoder.ts). */
export interface TokenDecoder {
  decode(ids: ArrayLike<number>, options?: { skipSpecialTokens?: boolean }): string;
}

/** What the token fields of logprobs answers need (server/wire/). */
export interface TokenTexts {
  tokenString(id: number): string;
  tokenBytes(id: number): number[];
}

const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true });
/** As the ByteLevel decoder decodes: invalid bytes become U+FFFD, a leading BOM is kept. */
const LENIENT_UTF8 = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

function shared<T extends Int32Array | Uint8Array>(make: (buf: SharedArrayBuffer) => T, bytes: number): T {
  return make(new SharedArrayBuffer(bytes));
}

/** A token table in one thread: {@link TokenTableData} plus this thread's caches. */
export class TokenTable implements TokenDecoder, TokenTexts {
  private readonly addedContent: Map<number, string>;
  /** logprobs answers name thousands of tokens; each id's text is worked out once */
  private readonly stringCache = new Map<number, string>();
  /** a byte run being decoded (grows to the longest run seen) */
  private scratch = new Uint8Array(256);

  constructor(readonly data: TokenTableData) {
    this.addedContent = new Map(data.added);
  }

  /** The table of a loaded tokenizer (one pass over its vocabulary). */
  static fromTokenizer(tok: TextTokenizer): TokenTable {
    const V = tok.vocabSize;
    const parts: number[][] = [];
    let total = 0;
    for (let id = 0; id < V; id++) {
      const b = tok.tokenBytes(id);
      parts.push(b);
      total += b.length;
    }
    const offsets = shared((b) => new Int32Array(b), 4 * (V + 1));
    const bytes = shared((b) => new Uint8Array(b), total);
    const flags = shared((b) => new Uint8Array(b), V);
    const added: [number, string][] = [];
    let at = 0;
    for (let id = 0; id < V; id++) {
      offsets[id] = at;
      bytes.set(parts[id], at);
      at += parts[id].length;
      const content = tok.addedTokenContent(id);
      if (content !== undefined) added.push([id, content]);
      flags[id] = (tok.knows(id) ? KNOWN : 0) | (content !== undefined ? ADDED : 0) | (tok.isSpecial(id) ? SPECIAL : 0);
    }
    offsets[V] = at;
    return new TokenTable({
      vocabSize: V,
      eosTokenIds: [...tok.eosTokenIds],
      bosTokenId: tok.bosTokenId,
      hasChatTemplate: tok.hasChatTemplate,
      maxBytesPerToken: tok.maxBytesPerToken,
      byteLevelDecoder: tok.byteLevelDecoder,
      offsets,
      bytes,
      flags,
      added,
    });
  }

  get vocabSize(): number {
    return this.data.vocabSize;
  }

  get eosTokenIds(): readonly number[] {
    return this.data.eosTokenIds;
  }

  get bosTokenId(): number | null {
    return this.data.bosTokenId;
  }

  get hasChatTemplate(): boolean {
    return this.data.hasChatTemplate;
  }

  get maxBytesPerToken(): number | null {
    return this.data.maxBytesPerToken;
  }

  /** Whether {@link decode} is the tokenizer's own decode (its decoder is exactly ByteLevel). */
  get byteLevelDecoder(): boolean {
    return this.data.byteLevelDecoder;
  }

  private flag(id: number): number {
    return Number.isInteger(id) && id >= 0 && id < this.data.vocabSize ? this.data.flags[id] : 0;
  }

  /** Whether `id` is a special token (skipped by `skipSpecialTokens`). */
  isSpecial(id: number): boolean {
    return (this.flag(id) & SPECIAL) !== 0;
  }

  private range(id: number): Uint8Array {
    if (!Number.isInteger(id) || id < 0 || id >= this.data.vocabSize) return new Uint8Array(0);
    return this.data.bytes.subarray(this.data.offsets[id], this.data.offsets[id + 1]);
  }

  /** The UTF-8 bytes token `id` stands for, as {@link TextTokenizer.tokenBytes} gives them ([] for unknown ids). */
  tokenBytes(id: number): number[] {
    return Array.from(this.range(id));
  }

  /**
   * The text of token `id` for a logprobs `token` field: its bytes as UTF-8 text, or — when they are not complete
   * UTF-8 (part of a multi-byte character) — `bytes:` followed by `\xNN` escapes, as OpenAI does.
   */
  tokenString(id: number): string {
    let text = this.stringCache.get(id);
    if (text !== undefined) return text;
    const bytes = this.range(id);
    try {
      text = STRICT_UTF8.decode(bytes.slice());
    } catch {
      text = 'bytes:' + Array.from(bytes, (b) => '\\x' + b.toString(16).padStart(2, '0')).join('');
    }
    // only ids the tokenizer knows are kept, so the cache is bounded by the vocabulary
    if (id >= 0 && id < this.data.vocabSize) this.stringCache.set(id, text);
    return text;
  }

  /**
   * Text of `ids` as the ByteLevel decoder writes it (without clean-up): ids the tokenizer does not know decode to
   * nothing; bytes of consecutive ordinary tokens decode together (lenient UTF-8); an added token ends such a run
   * and stands for its own content; a skipped special token vanishes without ending the run. This is the
   * tokenizer's decode only when {@link byteLevelDecoder}; other decoders (SentencePiece's Metaspace) need the
   * tokenizer library.
   */
  decode(ids: ArrayLike<number>, { skipSpecialTokens = false }: { skipSpecialTokens?: boolean } = {}): string {
    let text = '';
    let run = 0;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      const flag = this.flag(id);
      if ((flag & KNOWN) === 0 || (skipSpecialTokens && (flag & SPECIAL) !== 0)) continue;
      if ((flag & ADDED) === 0) {
        run = this.appendRun(run, this.range(id));
        continue;
      }
      if (run > 0) text += LENIENT_UTF8.decode(this.scratch.subarray(0, run));
      run = 0;
      text += this.addedContent.get(id)!;
    }
    if (run > 0) text += LENIENT_UTF8.decode(this.scratch.subarray(0, run));
    return text;
  }

  private appendRun(run: number, bytes: Uint8Array): number {
    if (run + bytes.length > this.scratch.length) {
      const grown = new Uint8Array(Math.max(2 * this.scratch.length, run + bytes.length));
      grown.set(this.scratch.subarray(0, run));
      this.scratch = grown;
    }
    this.scratch.set(bytes, run);
    return run + bytes.length;
  }
}
