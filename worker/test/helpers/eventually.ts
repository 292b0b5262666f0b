/** Polling for effects the worker writes after its response (ctx.waitUntil): usage rows, cache entries, refunds. */

/** Calls `attempt` until it returns a value other than null, or fails after `timeoutMs`. */
export async function eventually<T>(what: string, attempt: () => Promise<T | null>, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await attempt();
    if (value !== null) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not seen within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
