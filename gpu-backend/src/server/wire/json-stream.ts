/**
 * Large JSON answers written out in pieces instead of one `JSON.stringify`: the caller yields the text in small
 * pieces (a position, an object), and the stream packs them into chunks of about `chunkChars`, one chunk each time
 * the client is ready for more (backpressure), letting the event loop serve other requests between chunks.
 */

/** A response body from text pieces, produced lazily at the reader's pace. */
export function piecesStream(pieces: Iterable<string>, chunkChars = 16 * 1024): ReadableStream<Uint8Array> {
  const it = pieces[Symbol.iterator]();
  const encoder = new TextEncoder();
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        // one macrotask per chunk: timers, I/O and other requests run between chunks
        await new Promise<void>((resolve) => setImmediate(resolve));
        let text = '';
        for (;;) {
          const next = it.next();
          if (next.done) {
            if (text !== '') controller.enqueue(encoder.encode(text));
            controller.close();
            return;
          }
          text += next.value;
          if (text.length >= chunkChars) break;
        }
        controller.enqueue(encoder.encode(text));
      },
      cancel() {
        it.return?.();
      },
    },
    { highWaterMark: 1 },
  );
}

/** The pieces of a JSON array whose items are produced one by one (each item stringified alone). */
export function* jsonArrayPieces<T>(items: Iterable<T>, toJson: (item: T) => unknown): Generator<string> {
  yield '[';
  let first = true;
  for (const item of items) {
    yield (first ? '' : ',') + JSON.stringify(toJson(item));
    first = false;
  }
  yield ']';
}
