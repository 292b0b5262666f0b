import type { TokenDecoder } from './token-table.ts';

const REPLACEMENT = '\uFFFD';

/**
 * Held ids beyond which the decoder looks for text that is already final. A UTF-8 character has at most four
 * bytes, so a longer hold means the window holds bytes that can no longer start a valid character.
 */
const MAX_HELD = 4;
/** How many split points (from the end of the window) a release tries: enough to step over a 3-byte tail. */
const RELEASE_SCAN = 6;

/**
 * Turns a stream of token ids into text chunks that never end inside a character.
 *
 * Each step decodes a short window of ids twice — the ids already emitted at its start, for context, and
 * the whole window — and emits the difference. While the window's text ends in U+FFFD (the bytes so far are
 * an incomplete UTF-8 sequence, e.g. the first two of an emoji's four bytes) nothing is emitted and the ids
 * wait for the next one. The window then starts at the previous chunk's ids, so decoders whose output
 * depends on neighbours (a leading space stripped at the start) see the same context as a full decode.
 * The concatenation of all chunks plus `flush()` equals `tokenizer.decode(allIds)`.
 *
 * A model that keeps producing invalid bytes would keep the window's text ending in U+FFFD forever, and each
 * step would decode a longer window. Once more than MAX_HELD ids are held, the decoder therefore releases the
 * longest part of the window whose text is final: a split point whose text is a strict prefix of the window's
 * text (later bytes already decided how its last bytes decode, e.g. as U+FFFD, just as a full decode does).
 */
export class IncrementalDecoder {
  private readonly ids: number[] = [];
  /** first id of the decoding window; ids from here to `readOffset` have been emitted */
  private prefixOffset = 0;
  /** ids before this have been emitted */
  private readOffset = 0;
  private readonly decodeOptions: { skipSpecialTokens: boolean };

  constructor(
    private readonly tokenizer: TokenDecoder,
    options: { skipSpecialTokens: boolean },
  ) {
    this.decodeOptions = { skipSpecialTokens: options.skipSpecialTokens };
  }

  /** Adds one token id; returns the text it completes ('' while a character is still incomplete). */
  push(id: number): string {
    this.ids.push(id);
    const { prefixText, windowText } = this.decodeWindow();
    if (windowText.length > prefixText.length && !windowText.endsWith(REPLACEMENT))
      return this.advance(this.ids.length, windowText.slice(prefixText.length));
    if (this.ids.length - this.readOffset > MAX_HELD && windowText.endsWith(REPLACEMENT))
      return this.release(prefixText, windowText);
    return '';
  }

  /** Ends the stream: returns whatever is still held (an incomplete character decodes to U+FFFD). */
  flush(): string {
    const { prefixText, windowText } = this.decodeWindow();
    this.prefixOffset = this.readOffset = this.ids.length;
    return windowText.length > prefixText.length ? windowText.slice(prefixText.length) : '';
  }

  /** All ids pushed so far. */
  get tokenIds(): readonly number[] {
    return this.ids;
  }

  /** Emits `text` as the text of the ids before `end`. */
  private advance(end: number, text: string): string {
    this.prefixOffset = this.readOffset;
    this.readOffset = end;
    return text;
  }

  /** Emits the held ids up to the last split point whose text can no longer change (or nothing if none). */
  private release(prefixText: string, windowText: string): string {
    const lowest = Math.max(this.readOffset + 1, this.ids.length - RELEASE_SCAN);
    for (let end = this.ids.length - 1; end >= lowest; end--) {
      const text = this.tokenizer.decode(this.ids.slice(this.prefixOffset, end), this.decodeOptions);
      if (text.length > prefixText.length && text.length < windowText.length && windowText.startsWith(text))
        return this.advance(end, text.slice(prefixText.length));
    }
    return '';
  }

  private decodeWindow(): { prefixText: string; windowText: string } {
    const prefixText = this.tokenizer.decode(this.ids.slice(this.prefixOffset, this.readOffset), this.decodeOptions);
    const windowText = this.tokenizer.decode(this.ids.slice(this.prefixOffset), this.decodeOptions);
    return { prefixText, windowText };
  }
}
