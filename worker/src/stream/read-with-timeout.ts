/** Reading a backend's body with an idle deadline: a silent backend fails the read instead of hanging it. */

/** Thrown when no bytes arrived within the deadline. */
export class IdleTimeoutError extends Error {
  constructor(readonly ms: number) {
    super(`no data from the backend for ${ms} ms`);
    this.name = 'IdleTimeoutError';
  }
}

/** One `reader.read()` that rejects with {@link IdleTimeoutError} after `ms`. */
export async function readWithTimeout<T>(
  reader: ReadableStreamDefaultReader<T>,
  ms: number,
): Promise<ReadableStreamReadResult<T>> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new IdleTimeoutError(ms)), ms);
  });
  try {
    return await Promise.race([reader.read(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A whole (non-streamed) body as text, failing if it goes silent for `idleMs`. */
export async function readAllText(body: ReadableStream<Uint8Array> | null, idleMs: number): Promise<string> {
  if (body === null) return '';
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  try {
    for (;;) {
      const { done, value } = await readWithTimeout(reader, idleMs);
      if (done) return text + decoder.decode();
      text += decoder.decode(value, { stream: true });
    }
  } catch (e) {
    await reader.cancel().catch(() => undefined);
    throw e;
  }
}
