import type { TextTokenizer } from './tokenizer.ts';

const REPLACEMENT = '\uFFFD';

/**
 * Turns a stream of token ids into text chunks that never end inside a character.
 *
 * Each step decodes a short window of ids twice — the ids already emitted at its start, for context, and
 * the whole window — and emits the difference. While the window's text ends in U+FFFD (the bytes so far are
 * an incomplete UTF-8 sequence, e.g. the first two of an emoji's four bytes) nothing is emitted and the ids
 * wait for the next one. The window then starts at the previous chunk's ids, so decoders whose output
 * depends on neighbours (a leading space stripped at the start) see the same context as a full decode.
 * The concatenation of all chunks plus `flush()` equals `tokenizer.decode(allIds)`.
 */
export class IncrementalDecoder {
  private readonly ids: number[] = [];
  /** first id of the decoding window; ids from here to `readOffset` have been emitted */
  private prefixOffset = 0;
  /** ids before this have been emitted */
  private readOffset = 0;
  private readonly decodeOptions: { skipSpecialTokens: boolean };

  constructor(
    private readonly tokenizer: TextTokenizer,
    options: { skipSpecialTokens: boolean },
  ) {
    this.decodeOptions = { skipSpecialTokens: options.skipSpecialTokens };
  }

  /** Adds one token id; returns the text it completes ('' while a character is still incomplete). */
  push(id: number): string {
    this.ids.push(id);
    const { prefixText, windowText } = this.decodeWindow();
    if (windowText.length <= prefixText.length || windowText.endsWith(REPLACEMENT)) return '';
    this.prefixOffset = this.readOffset;
    this.readOffset = this.ids.length;
    return windowText.slice(prefixText.length);
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

  private decodeWindow(): { prefixText: string; windowText: string } {
    const prefixText = this.tokenizer.decode(this.ids.slice(this.prefixOffset, this.readOffset), this.decodeOptions);
    const windowText = this.tokenizer.decode(this.ids.slice(this.prefixOffset), this.decodeOptions);
    return { prefixText, windowText };
  }
}
