/**
 * The worker's configuration from its vars (see wrangler.toml): the backend list and the limits. Parsed once per
 * isolate and per distinct value; a broken value is a 500 that names the var, never a guess.
 */
import { z } from 'zod';
import { serverError } from '../../shared/src/errors.ts';
import { DEFAULT_MAX_LOGITS_ENTRIES } from '../../shared/src/logits-bounds.ts';

/** One GPU backend: requests for `/v1/x` go to `${url}/v1/x`. */
export interface BackendConfig {
  url: string;
  weight: number;
}

/** Everything the request path needs from the vars and secrets. */
export interface EdgeConfig {
  backends: BackendConfig[];
  maxBodyBytes: number;
  /** Deadline for the response headers of a streamed request. */
  backendTimeoutMs: number;
  /** Deadline for the whole answer of a non-streamed request (headers come at its end). */
  backendResponseTimeoutMs: number;
  streamIdleTimeoutMs: number;
  healthCooldownMs: number;
  maxAttempts: number;
  /** Most entries (positions × distributions × top_logprobs) of one /v1/logits answer (shared/src/logits-bounds.ts). */
  maxLogitsEntries: number;
  hmacSecret: string;
}

const backendsSchema = z
  .array(
    z.object({
      url: z.url({ protocol: /^https?$/ }).transform((u) => u.replace(/\/+$/, '')),
      weight: z.number().positive().finite().default(1),
    }),
  )
  .min(1);

/** Vars read here that wrangler.toml need not declare (the default applies). */
type OptionalVars = { LOGITS_MAX_ENTRIES?: string };

function positiveInt(env: Env, name: keyof Env | keyof OptionalVars, fallback: number): number {
  const raw = (env as Env & OptionalVars)[name] as unknown;
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n <= 0)
    throw serverError(
      `worker misconfigured: ${String(name)} must be a positive integer, got ${JSON.stringify(raw)}`,
      'misconfigured',
    );
  return n;
}

let memo: { key: string; backends: BackendConfig[] } | null = null;

function parseBackends(raw: string): BackendConfig[] {
  if (memo?.key === raw) return memo.backends;
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    throw serverError(
      'worker misconfigured: BACKENDS must be JSON like [{"url": "http://host:port", "weight": 1}]',
      'misconfigured',
    );
  }
  const parsed = backendsSchema.safeParse(json);
  if (!parsed.success)
    throw serverError(
      'worker misconfigured: BACKENDS must be a non-empty list of {"url": "http(s)://…", "weight": > 0}',
      'misconfigured',
    );
  memo = { key: raw, backends: parsed.data };
  return parsed.data;
}

/** Reads the configuration from the bindings (throws a 500 ApiError naming a broken var). */
export function readConfig(env: Env): EdgeConfig {
  if (!env.BACKEND_HMAC_SECRET)
    throw serverError('worker misconfigured: the secret BACKEND_HMAC_SECRET is not set', 'misconfigured');
  return {
    backends: parseBackends(env.BACKENDS ?? ''),
    maxBodyBytes: positiveInt(env, 'MAX_BODY_BYTES', 1 << 20),
    backendTimeoutMs: positiveInt(env, 'BACKEND_TIMEOUT_MS', 30_000),
    backendResponseTimeoutMs: positiveInt(env, 'BACKEND_RESPONSE_TIMEOUT_MS', 600_000),
    streamIdleTimeoutMs: positiveInt(env, 'STREAM_IDLE_TIMEOUT_MS', 60_000),
    healthCooldownMs: positiveInt(env, 'HEALTH_COOLDOWN_MS', 10_000),
    maxAttempts: positiveInt(env, 'MAX_ATTEMPTS', 3),
    maxLogitsEntries: positiveInt(env, 'LOGITS_MAX_ENTRIES', DEFAULT_MAX_LOGITS_ENTRIES),
    hmacSecret: env.BACKEND_HMAC_SECRET,
  };
}
