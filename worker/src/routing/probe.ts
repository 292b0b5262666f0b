/** The active half of health checking: `GET <backend>/readyz` (signed, like every edge → backend request). */
import { signRequest } from '../../../shared/src/signing.ts';

/** Probe verdict. */
export type ProbeResult = { ok: true } | { ok: false; reason: string };

/** Asks a backend whether it is ready (HTTP 200 within `timeoutMs`). */
export async function probeReady(baseUrl: string, timeoutMs: number, hmacSecret: string): Promise<ProbeResult> {
  const url = new URL(`${baseUrl}/readyz`);
  const headers = await signRequest(hmacSecret, { method: 'GET', path: url.pathname + url.search, body: '' });
  try {
    const res = await fetch(url, { headers, signal: AbortSignal.timeout(timeoutMs) });
    await res.body?.cancel();
    return res.status === 200 ? { ok: true } : { ok: false, reason: `status ${res.status}` };
  } catch (e) {
    return { ok: false, reason: e instanceof Error && e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : 'connection failed' };
  }
}
