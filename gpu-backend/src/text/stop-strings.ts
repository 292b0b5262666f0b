/** What a stop-string matcher lets through for one chunk. */
export interface StopMatch {
  /** text that can be sent now (when `stopped`, everything before the stop string) */
  text: string;
  /** true once a stop string has completed; later chunks are ignored */
  stopped: boolean;
  /** the stop string that matched, when `stopped` */
  stop?: string;
}

/**
 * Finds stop strings in streamed text, also when one is split across chunks (OpenAI semantics: the output
 * ends just before the stop string, which is not included). Text that could still be the start of a stop
 * string is held back until the next chunk shows whether it is; `flush()` releases it at the end.
 */
export class StopStringMatcher {
  private readonly stops: readonly string[];
  private held = '';
  private done = false;

  /** Empty strings are ignored: they would match everywhere. */
  constructor(stops: readonly string[]) {
    this.stops = stops.filter((s) => s.length > 0);
  }

  /** Whether a stop string has completed. */
  get stopped(): boolean {
    return this.done;
  }

  /** Feeds the next chunk of generated text. */
  push(chunk: string): StopMatch {
    if (this.done) return { text: '', stopped: true };
    if (this.stops.length === 0) return { text: chunk, stopped: false };
    const buffer = this.held + chunk;
    let at = -1;
    let which = '';
    for (const stop of this.stops) {
      const i = buffer.indexOf(stop);
      if (i !== -1 && (at === -1 || i < at)) {
        at = i;
        which = stop;
      }
    }
    if (at !== -1) {
      this.done = true;
      this.held = '';
      return { text: buffer.slice(0, at), stopped: true, stop: which };
    }
    const keep = this.partialMatchLength(buffer);
    this.held = buffer.slice(buffer.length - keep);
    return { text: buffer.slice(0, buffer.length - keep), stopped: false };
  }

  /** Ends the stream without a stop: returns the text still held back. */
  flush(): string {
    const rest = this.done ? '' : this.held;
    this.held = '';
    return rest;
  }

  /** Length of the longest suffix of `buffer` that is a proper prefix of some stop string. */
  private partialMatchLength(buffer: string): number {
    let best = 0;
    for (const stop of this.stops) {
      for (let len = Math.min(stop.length - 1, buffer.length); len > best; len--) {
        if (buffer.endsWith(stop.slice(0, len))) {
          best = len;
          break;
        }
      }
    }
    return best;
  }
}
