/**
 * The edge's catalogue rows as the local system seeds them (PUT /admin/models/:id): each model's default λ from
 * the caller, and what its backends' GET /v1/models say of it — `realign.max_context` as `context_length` and
 * `realign.adapters` as `adapters` — so the edge's context check, allow-list and per-adapter λ bounds see the model
 * as the backends serve it (its first adapter being the one a request without `adapter` or `mix` runs on).
 */
import { signRequest } from '../../shared/src/signing.ts';

/** What one backend's /v1/models says of one model. */
export interface ServedModel {
  id: string;
  maxContext?: number;
  adapters?: string[];
}

/** The body of PUT /admin/models/:id. */
export interface CatalogueRow {
  default_lambda: number;
  context_length?: number;
  adapters?: string[];
}

/** The models of one GET /v1/models answer of a backend (`{"data": [{id, realign: {max_context, adapters}}]}`). */
export function servedModels(body: unknown): ServedModel[] {
  const data = (body as { data?: unknown } | null)?.data;
  if (!Array.isArray(data)) throw new Error(`a backend's /v1/models answer has no data list: ${JSON.stringify(body)}`);
  return data.map((m: { id?: unknown; realign?: { max_context?: unknown; adapters?: unknown } }) => {
    if (typeof m?.id !== 'string') throw new Error(`a backend's /v1/models lists a model without an id: ${JSON.stringify(m)}`);
    const { max_context: ctx, adapters } = m.realign ?? {};
    return {
      id: m.id,
      ...(typeof ctx === 'number' ? { maxContext: ctx } : {}),
      ...(Array.isArray(adapters) && adapters.every((a) => typeof a === 'string') ? { adapters } : {}),
    };
  });
}

/**
 * The catalogue row of model `id` served by `served` (one entry per backend that lists it; none: only the default
 * λ). Its context is the smallest of the backends' (a request must fit whichever backend it is sent to); backends
 * that name different adapters for it are an error (the edge could not tell which one a request runs on).
 */
export function catalogueRow(id: string, defaultLambda: number, served: ServedModel[]): CatalogueRow {
  const contexts = served.flatMap((s) => (s.maxContext === undefined ? [] : [s.maxContext]));
  const lists = new Set(served.map((s) => JSON.stringify(s.adapters ?? [])));
  if (lists.size > 1) throw new Error(`the backends serve model ${id} with different adapters: ${[...lists].join(' vs ')}`);
  const adapters = served[0]?.adapters;
  return {
    default_lambda: defaultLambda,
    ...(contexts.length ? { context_length: Math.min(...contexts) } : {}),
    ...(adapters?.length ? { adapters } : {}),
  };
}

/** GET /v1/models of the backend at `url`, signed with the shared HMAC secret as the edge signs its calls. */
export async function fetchServedModels(url: string, hmacSecret: string): Promise<ServedModel[]> {
  const path = '/v1/models';
  const headers = await signRequest(hmacSecret, { method: 'GET', path, body: '' });
  const res = await fetch(`${url}${path}`, { headers });
  if (!res.ok) throw new Error(`GET ${url}${path} → ${res.status} ${await res.text()}`);
  return servedModels(await res.json());
}
