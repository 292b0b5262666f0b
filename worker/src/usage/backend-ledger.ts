/**
 * Asking a backend what it generated for one request (its usage ledger, `GET /ledger/:dispatchId`, signed like
 * every edge → backend request). Used when a request ended without the backend's usage reaching the edge: the
 * client hung up, the stream broke, the edge gave up waiting, or an earlier edge died.
 */
import type { Usage } from '../../../shared/src/responses.ts';
import { signRequest } from '../../../shared/src/signing.ts';
import type { BackendConfig } from '../config.ts';

/** A backend's record of one request (gpu-backend/src/server/usage-ledger.ts). */
export interface LedgerRecord {
  state: 'running' | 'completed' | 'cancelled' | 'failed';
  usage: Usage;
}

/** What one look-up found: the record, `unknown` (the backend never ran it), or `unreachable`. */
export type LedgerAnswer = LedgerRecord | 'unknown' | 'unreachable';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function isRecord(v: unknown): v is LedgerRecord {
  if (typeof v !== 'object' || v === null) return false;
  const r = v as { state?: unknown; usage?: { prompt_tokens?: unknown; completion_tokens?: unknown } };
  return (
    typeof r.state === 'string' && typeof r.usage?.prompt_tokens === 'number' && typeof r.usage.completion_tokens === 'number'
  );
}

/** One look-up of `dispatchId` on `backend`. */
export async function lookUpLedger(
  backend: BackendConfig,
  dispatchId: string,
  hmacSecret: string,
  timeoutMs = 3000,
): Promise<LedgerAnswer> {
  const url = new URL(`${backend.url}/ledger/${encodeURIComponent(dispatchId)}`);
  try {
    const headers = await signRequest(hmacSecret, { method: 'GET', path: url.pathname + url.search, body: '' });
    const res = await fetch(url, { headers, signal: AbortSignal.timeout(timeoutMs) });
    if (res.status === 404) {
      await res.body?.cancel();
      return 'unknown';
    }
    if (res.status !== 200) {
      await res.body?.cancel();
      return 'unreachable';
    }
    const json: unknown = await res.json();
    return isRecord(json) ? json : 'unreachable';
  } catch {
    return 'unreachable';
  }
}

/**
 * The final record of `dispatchId` on `backend`: asks again while the request still runs there (a cancellation
 * takes the engine one step to act on) or is not known yet (a request cancelled while it was being admitted is
 * entered a moment later), up to `waitMs`; then whatever was last seen.
 */
export async function finalLedger(
  backend: BackendConfig,
  dispatchId: string,
  hmacSecret: string,
  waitMs = 10_000,
): Promise<LedgerAnswer> {
  const deadline = Date.now() + waitMs;
  let unknownSince: number | null = null;
  for (let delay = 50; ; delay = Math.min(delay * 2, 1000)) {
    const answer = await lookUpLedger(backend, dispatchId, hmacSecret);
    if (answer === 'unreachable') return answer;
    if (answer !== 'unknown' && answer.state !== 'running') return answer;
    if (answer === 'unknown') {
      unknownSince ??= Date.now();
      if (Date.now() - unknownSince > 1500) return answer;
    }
    if (Date.now() + delay > deadline) return answer;
    await sleep(delay);
  }
}
