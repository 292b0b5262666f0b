/**
 * Usage per named adapter (migration 0007): the mix a request ran and each adapter branch's tokens, as the backend
 * reported them in `usage.realign` (gpu-backend/src/server/usage-ledger.ts), in the usage row's columns.
 */
import { mixKey, type AdapterMix } from '../../../shared/src/adapter-mix.ts';
import type { BranchTokens, Usage } from '../../../shared/src/responses.ts';

/** Tokens per adapter name. */
export type AdapterTokens = Record<string, BranchTokens>;

/** The mix and per-adapter tokens of usages reported by the backends that ran one request (summed). */
export function adapterUsageOf(usages: Usage[]): { mix?: AdapterMix; adapters?: AdapterTokens } {
  const adapters = usages.map((u) => u.realign?.adapters).reduce(addAdapterTokens, undefined);
  const mix = usages.find((u) => u.realign?.mix !== undefined)?.realign?.mix;
  return { ...(mix ? { mix } : {}), ...(adapters ? { adapters } : {}) };
}

/** Sums two per-adapter counts (either may be absent). */
export function addAdapterTokens(a: AdapterTokens | undefined, b: AdapterTokens | undefined): AdapterTokens | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  const out: AdapterTokens = {};
  for (const name of new Set([...Object.keys(a), ...Object.keys(b)])) {
    out[name] = {
      prompt_tokens: (a[name]?.prompt_tokens ?? 0) + (b[name]?.prompt_tokens ?? 0),
      completion_tokens: (a[name]?.completion_tokens ?? 0) + (b[name]?.completion_tokens ?? 0),
    };
  }
  return out;
}

/** The usage row's `mix` and `adapter_tokens` columns for what a backend reported (null: it named no adapter). */
export function adapterColumns(r: { mix?: AdapterMix; adapters?: AdapterTokens } | undefined): {
  mix: string | null;
  adapter_tokens: string | null;
} {
  return {
    mix: r?.mix === undefined ? null : mixKey(r.mix),
    adapter_tokens: r?.adapters === undefined ? null : JSON.stringify(r.adapters),
  };
}
