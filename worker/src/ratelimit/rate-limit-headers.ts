/** OpenAI's rate-limit headers from an acquire result (`x-ratelimit-*-requests` and `-tokens`). */
import type { AcquireResult } from './limits.ts';

/** A duration as OpenAI writes it: `850ms`, `1.5s`, `6m0s`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.ceil(ms)}ms`;
  const s = ms / 1000;
  if (s < 60) return `${Number(s.toFixed(3))}s`;
  const m = Math.floor(s / 60);
  return `${m}m${Math.round(s - m * 60)}s`;
}

/** The six `x-ratelimit-*` headers (none for an unmetered admission: there is nothing true to report). */
export function rateLimitHeaders(r: AcquireResult): Record<string, string> {
  if (r.unmetered === true) return {};
  return {
    'x-ratelimit-limit-requests': String(r.requests.limit),
    'x-ratelimit-remaining-requests': String(r.requests.remaining),
    'x-ratelimit-reset-requests': formatDuration(r.requests.resetMs),
    'x-ratelimit-limit-tokens': String(r.tokens.limit),
    'x-ratelimit-remaining-tokens': String(r.tokens.remaining),
    'x-ratelimit-reset-tokens': formatDuration(r.tokens.resetMs),
  };
}
