/**
 * The active half of health checking: `GET <backend>/readyz` (signed, like every edge → backend request), with the
 * verdict written to the health book. Used by `/readyz` and for backends on probation in the request path. Asked
 * for one model, a probe goes by that model's state as the backend's `/readyz` body names it (`ready`, `loading`,
 * `failed: …`; gpu-backend/src/server/registry.ts): a model that cannot serve there fails the probe for that model
 * only, and a model that serves passes even while another model there keeps the backend as a whole unready.
 */
import { signRequest } from '../../../shared/src/signing.ts';
import type { EdgeConfig } from '../config.ts';
import type { HealthBook } from './health-book.ts';

/** Probe verdict. */
export type ProbeResult = { ok: true } | { ok: false; reason: string };

/** Longest a probe may take (less when the configured backend timeout is shorter). */
const PROBE_TIMEOUT_MS = 2_000;

/** Most of a `/readyz` body read (it names each model's state; anything longer is not the backend's). */
const MAX_READYZ_BYTES = 64 * 1024;

/** A backend's `/readyz` answer: its status and its body (parsed JSON, or undefined), or why there was none. */
type Readyz = { status: number; body: unknown } | { failed: string };

/** Asks a backend whether it is ready (within `timeoutMs`). */
async function readyz(baseUrl: string, timeoutMs: number, hmacSecret: string): Promise<Readyz> {
  const url = new URL(`${baseUrl}/readyz`);
  const headers = await signRequest(hmacSecret, { method: 'GET', path: url.pathname + url.search, body: '' });
  try {
    const res = await fetch(url, { headers, signal: AbortSignal.timeout(timeoutMs) });
    const length = Number(res.headers.get('content-length') ?? 0);
    if (!(res.headers.get('content-type') ?? '').includes('json') || length > MAX_READYZ_BYTES) {
      await res.body?.cancel();
      return { status: res.status, body: undefined };
    }
    const text = await res.text();
    let body: unknown;
    try {
      body = text.length <= MAX_READYZ_BYTES ? JSON.parse(text) : undefined;
    } catch {
      body = undefined;
    }
    return { status: res.status, body };
  } catch (e) {
    return { failed: e instanceof Error && e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : 'connection failed' };
  }
}

/** The state a `/readyz` body gives `model` on a backend that takes work, or null when it names none. */
function modelState(body: unknown, model: string): string | null {
  if (typeof body !== 'object' || body === null) return null;
  const { accepting, models } = body as { accepting?: unknown; models?: unknown };
  if (accepting === false || typeof models !== 'object' || models === null) return null;
  const state = (models as Record<string, unknown>)[model];
  return typeof state === 'string' ? state : null;
}

/**
 * Probes a backend and records the verdict in `book`: a pass puts it back in rotation, a failure starts a cooldown.
 * With `model`, the verdict is that model's when the backend names its state (a failure then cools down only the
 * model there; the backend answered, so it is up); else the backend's, by status (200 passes).
 */
export async function probeAndRecord(
  book: HealthBook,
  baseUrl: string,
  config: EdgeConfig,
  model?: string,
): Promise<ProbeResult> {
  const r = await readyz(baseUrl, Math.min(PROBE_TIMEOUT_MS, config.backendTimeoutMs), config.hmacSecret);
  const now = Date.now();
  if ('failed' in r) {
    book.markFailure(baseUrl, `readyz: ${r.failed}`, now, config.healthCooldownMs);
    return { ok: false, reason: r.failed };
  }
  const state = model === undefined ? null : modelState(r.body, model);
  if (state !== null) {
    if (state === 'ready') {
      book.markSuccess(baseUrl, model);
      return { ok: true };
    }
    book.markSuccess(baseUrl);
    book.markFailure(baseUrl, `readyz: model ${state}`, now, config.healthCooldownMs, model);
    return { ok: false, reason: `model ${state}` };
  }
  if (r.status === 200) {
    book.markSuccess(baseUrl, model);
    return { ok: true };
  }
  book.markFailure(baseUrl, `readyz: status ${r.status}`, now, config.healthCooldownMs);
  return { ok: false, reason: `status ${r.status}` };
}
