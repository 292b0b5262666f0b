/**
 * The active half of health checking: `GET <backend>/readyz` (signed, like every edge → backend request), with the
 * verdict written to the health book. Used by `/readyz` and for backends on probation in the request path.
 */
import { signRequest } from '../../../shared/src/signing.ts';
import type { EdgeConfig } from '../config.ts';
import type { HealthBook } from './health-book.ts';

/** Probe verdict. */
export type ProbeResult = { ok: true } | { ok: false; reason: string };

/** Longest a probe may take (less when the configured backend timeout is shorter). */
const PROBE_TIMEOUT_MS = 2_000;

/** Asks a backend whether it is ready (HTTP 200 within `timeoutMs`). */
async function probeReady(baseUrl: string, timeoutMs: number, hmacSecret: string): Promise<ProbeResult> {
  const url = new URL(`${baseUrl}/readyz`);
  const headers = await signRequest(hmacSecret, { method: 'GET', path: url.pathname + url.search, body: '' });
  try {
    const res = await fetch(url, { headers, signal: AbortSignal.timeout(timeoutMs) });
    await res.body?.cancel();
    return res.status === 200 ? { ok: true } : { ok: false, reason: `status ${res.status}` };
  } catch (e) {
    return {
      ok: false,
      reason: e instanceof Error && e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : 'connection failed',
    };
  }
}

/** Probes a backend and records the verdict in `book`: a pass puts it back in rotation, a failure starts a cooldown. */
export async function probeAndRecord(book: HealthBook, baseUrl: string, config: EdgeConfig): Promise<ProbeResult> {
  const r = await probeReady(baseUrl, Math.min(PROBE_TIMEOUT_MS, config.backendTimeoutMs), config.hmacSecret);
  if (r.ok) book.markSuccess(baseUrl);
  else book.markFailure(baseUrl, `readyz: ${r.reason}`, Date.now(), config.healthCooldownMs);
  return r;
}
