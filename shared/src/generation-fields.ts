/**
 * Fields shared by `/v1/chat/completions` and `/v1/completions`: sampling (OpenAI's plus the vLLM extras),
 * streaming, and realign's `lambda` / `control` / `preset`. Bounds are what the wire accepts; capacity limits
 * (context length, the largest `max_tokens`, a model's hard λ range) belong to the backend's configuration.
 */
import { z } from 'zod';
import {
  arrayField,
  booleanField,
  customField,
  describeValue,
  lambdaField,
  numberField,
  presetField,
  stringField,
  tokenIdField,
  type CheckResult,
  type NumberRule,
} from './fields.ts';
import { checkAdapterName, checkMix, type AdapterMix } from './adapter-mix.ts';

/** Most stop strings a request may carry. */
export const MAX_STOP_STRINGS = 16;
/** Longest stop string, in characters. */
export const MAX_STOP_LENGTH = 256;
/** Most entries in `logit_bias`. */
export const MAX_LOGIT_BIAS = 1024;
/** Largest `n`. */
export const MAX_N = 128;

/**
 * The accepted range of each numeric sampling field, for requests and for the sampling defaults of λ presets.
 * OpenAI's ranges where OpenAI has the field (temperature [0, 2], top_p, presence/frequency penalties [-2, 2]).
 * `repetition_penalty` (vLLM/HF: divides a seen token's positive logit, multiplies a negative one; vLLM accepts
 * any value > 0) is bounded to [0.01, 100]: outside it no setting is useful (common ones are 1–1.5), and inside
 * it a logit changes by at most a factor of 100, so logits of float16 range (|z| ≤ 65504) stay far inside float32.
 * The sampler still saturates whatever overflows (gpu-backend/src/sampling/sampler.ts): these bounds are the
 * contract, not the only guard.
 */
export const SAMPLING_RULES = {
  temperature: { min: 0, max: 2 },
  top_p: { min: 0, minExclusive: true, max: 1 },
  top_k: { min: -1, integer: true },
  min_p: { min: 0, max: 1 },
  repetition_penalty: { min: 0.01, max: 100 },
  presence_penalty: { min: -2, max: 2 },
  frequency_penalty: { min: -2, max: 2 },
} as const satisfies Record<string, NumberRule>;

/** `stop`: a string or a list of non-empty strings, normalized to a list. */
export function checkStop(value: unknown): CheckResult<string[]> {
  const list = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(list)) return { ok: false, message: `must be a string or an array of strings, got ${describeValue(value)}` };
  if (list.length > MAX_STOP_STRINGS)
    return { ok: false, message: `must hold at most ${MAX_STOP_STRINGS} strings, got ${list.length}` };
  for (const [i, s] of list.entries()) {
    if (typeof s !== 'string') return { ok: false, message: `must be a string, got ${describeValue(s)}`, path: [i] };
    if (s.length === 0) return { ok: false, message: 'must not be empty', path: [i] };
    if (s.length > MAX_STOP_LENGTH)
      return { ok: false, message: `must be at most ${MAX_STOP_LENGTH} characters, got ${s.length}`, path: [i] };
  }
  return { ok: true, value: list as string[] };
}

/** `logit_bias`: token id (as a decimal string key) → bias in [-100, 100]. */
export function checkLogitBias(value: unknown): CheckResult<Record<string, number>> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, message: `must be an object mapping token ids to numbers, got ${describeValue(value)}` };
  }
  const entries = Object.entries(value);
  if (entries.length > MAX_LOGIT_BIAS)
    return { ok: false, message: `must have at most ${MAX_LOGIT_BIAS} entries, got ${entries.length}` };
  for (const [key, bias] of entries) {
    if (!/^\d{1,9}$/.test(key))
      return { ok: false, message: `keys must be token ids written as decimal strings, got ${JSON.stringify(key)}` };
    if (typeof bias !== 'number' || !Number.isFinite(bias) || bias < -100 || bias > 100) {
      return { ok: false, message: `must be a number in [-100, 100], got ${describeValue(bias)}`, path: [key] };
    }
  }
  return { ok: true, value: value as Record<string, number> };
}

/** The fields of both generation endpoints (zod shape, merged into each request object). */
export const generationShape = {
  model: stringField(1, 256),
  max_tokens: numberField({ min: 1, integer: true }).optional(),
  temperature: numberField(SAMPLING_RULES.temperature).optional(),
  top_p: numberField(SAMPLING_RULES.top_p).optional(),
  n: numberField({ min: 1, max: MAX_N, integer: true }).optional(),
  stop: customField(checkStop).optional(),
  stream: booleanField().optional(),
  stream_options: z
    .object(
      { include_usage: booleanField().optional() },
      { error: (iss) => `must be an object like {"include_usage": true}, got ${describeValue(iss.input)}` },
    )
    .optional(),
  seed: numberField({ integer: true }).optional(),
  logit_bias: customField(checkLogitBias).optional(),
  presence_penalty: numberField(SAMPLING_RULES.presence_penalty).optional(),
  frequency_penalty: numberField(SAMPLING_RULES.frequency_penalty).optional(),
  user: stringField(1, 256).optional(),
  // realign
  lambda: lambdaField().optional(),
  control: lambdaField().optional(),
  preset: presetField().optional(),
  adapter: customField(checkAdapterName).optional(),
  mix: customField(checkMix).optional(),
  // vLLM extras
  top_k: numberField(SAMPLING_RULES.top_k).optional(),
  min_p: numberField(SAMPLING_RULES.min_p).optional(),
  repetition_penalty: numberField(SAMPLING_RULES.repetition_penalty).optional(),
  stop_token_ids: arrayField(tokenIdField(), 0, 1024, 'token ids').optional(),
  skip_special_tokens: booleanField().optional(),
};

/** The normalized generation fields after parsing (`control` folded into `lambda`, `stream` always set). */
export interface GenerationParams {
  model: string;
  /** Most new tokens per choice; unset = the backend's default (up to the context length). */
  max_tokens?: number;
  temperature?: number;
  top_p?: number;
  n?: number;
  stop?: string[];
  stream: boolean;
  stream_options?: { include_usage?: boolean };
  seed?: number;
  logit_bias?: Record<string, number>;
  presence_penalty?: number;
  frequency_penalty?: number;
  user?: string;
  /** λ: 0 = reference model, 1 = aligned model; any finite value on the wire. */
  lambda?: number;
  /** A named preset of the tenant's λ policy (resolved by the edge; the backend ignores it). */
  preset?: string;
  /** The named adapter λ applies to (a model of several adapters; absent: its first). See adapter-mix.ts. */
  adapter?: string;
  /** λ per named adapter, z = z_ref + Σ λ_i·(z_i − z_ref), in place of `lambda` and `adapter`. */
  mix?: AdapterMix;
  /** Keep the k most likely tokens; -1 or 0 = off. */
  top_k?: number;
  min_p?: number;
  repetition_penalty?: number;
  stop_token_ids?: number[];
  skip_special_tokens?: boolean;
}

/** Fields that OpenAI clients may send but realign does not serve; naming them gives a 400 instead of silently ignoring them. */
export const UNSUPPORTED_FIELDS: Record<string, string> = {
  tools: 'realign generates text only; remove `tools`',
  tool_choice: 'realign generates text only; remove `tool_choice`',
  functions: 'realign generates text only; remove `functions`',
  function_call: 'realign generates text only; remove `function_call`',
  audio: 'realign generates text only; remove `audio`',
  best_of: 'is not supported; use `n` instead',
  echo: 'is not supported; remove `echo`',
  suffix: 'is not supported; remove `suffix`',
};

/** The field a client wrote λ in: `lambda` or its alias `control`. */
export type LambdaField = 'lambda' | 'control';

/**
 * Folds the alias `control` into `lambda` — the one place both halves do it, for every endpoint. Returns the value
 * and the field the client used (null when it sent neither), or a `[param, message]` pair when the two disagree.
 */
export function foldLambdaAlias(
  lambda: number | undefined,
  control: number | undefined,
): { value: number | undefined; field: LambdaField | null } | [string, string] {
  if (control !== undefined && lambda !== undefined && control !== lambda) {
    return ['control', `is an alias of \`lambda\`; send one of them (got lambda=${lambda}, control=${control})`];
  }
  if (lambda !== undefined) return { value: lambda, field: 'lambda' };
  return { value: control, field: control === undefined ? null : 'control' };
}

/**
 * Cross-field rules of both generation endpoints, applied to the parsed object:
 * `lambda`/`control` aliases, `stream_options` only with `stream`. Returns the normalized fields with the field
 * the client wrote λ in, or a `[param, message]` pair.
 */
export function normalizeGeneration<
  T extends {
    lambda?: number;
    control?: number;
    stream?: boolean;
    stream_options?: { include_usage?: boolean };
    adapter?: string;
    mix?: AdapterMix;
  },
>(raw: T): { fields: Omit<T, 'control' | 'stream'> & { stream: boolean }; lambdaField: LambdaField | null } | [string, string] {
  const { control, ...rest } = raw;
  const folded = foldLambdaAlias(rest.lambda, control);
  if (Array.isArray(folded)) return folded;
  if (rest.mix !== undefined && rest.adapter !== undefined)
    return ['adapter', 'cannot be sent with `mix`: send either `mix` or `adapter` (with `lambda`)'];
  if (rest.mix !== undefined && folded.field !== null)
    return [folded.field, 'cannot be sent with `mix`: the mix gives every adapter its λ'];
  const stream = rest.stream ?? false;
  if (rest.stream_options !== undefined && !stream) return ['stream_options', 'is only allowed when `stream` is true'];
  const out = { ...rest, stream } as Omit<T, 'control' | 'stream'> & { stream: boolean; lambda?: number };
  if (folded.value !== undefined) out.lambda = folded.value;
  return { fields: out, lambdaField: folded.field };
}
