/**
 * `POST /v1/completions` request: a prompt as text or token ids (one or a batch), the shared generation fields,
 * and OpenAI's integer `logprobs`.
 */
import { z } from 'zod';
import { customField, describeValue, numberField, type CheckResult } from './fields.ts';
import { generationShape, type GenerationParams } from './generation-fields.ts';

/** A prompt as OpenAI accepts it: text, a batch of texts, token ids, or a batch of token-id lists. */
export type Prompt = string | string[] | number[] | number[][];

/** Most prompts in one batched request. */
export const MAX_PROMPTS = 128;

function isTokenId(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function checkTokenIds(list: unknown[], path: (string | number)[]): CheckResult<number[]> {
  if (list.length === 0) return { ok: false, message: 'must contain at least one token id', path };
  const bad = list.findIndex((t) => !isTokenId(t));
  if (bad >= 0)
    return {
      ok: false,
      message: `must be a non-negative integer token id, got ${describeValue(list[bad])}`,
      path: [...path, bad],
    };
  return { ok: true, value: list as number[] };
}

/** `prompt`: non-empty text, token ids, or a batch of either (not mixed). */
export function checkPrompt(value: unknown): CheckResult<Prompt> {
  if (value === undefined) return { ok: false, message: 'is required: send a string, an array of strings, or token ids' };
  if (typeof value === 'string') return value.length > 0 ? { ok: true, value } : { ok: false, message: 'must not be empty' };
  if (!Array.isArray(value))
    return { ok: false, message: `must be a string, an array of strings, or an array of token ids, got ${describeValue(value)}` };
  if (value.length === 0) return { ok: false, message: 'must not be an empty array' };
  if (typeof value[0] === 'number') return checkTokenIds(value, []);
  if (value.length > MAX_PROMPTS)
    return { ok: false, message: `must hold at most ${MAX_PROMPTS} prompts in one request, got ${value.length}` };
  if (typeof value[0] === 'string') {
    const bad = value.findIndex((p) => typeof p !== 'string' || p.length === 0);
    if (bad >= 0)
      return {
        ok: false,
        message: `must be a non-empty string like the other prompts, got ${describeValue(value[bad])}`,
        path: [bad],
      };
    return { ok: true, value: value as string[] };
  }
  if (Array.isArray(value[0])) {
    for (const [i, ids] of value.entries()) {
      if (!Array.isArray(ids))
        return {
          ok: false,
          message: `must be an array of token ids like the other prompts, got ${describeValue(ids)}`,
          path: [i],
        };
      const r = checkTokenIds(ids, [i]);
      if (!r.ok) return r;
    }
    return { ok: true, value: value as number[][] };
  }
  return { ok: false, message: `must be a string or a token id, got ${describeValue(value[0])}`, path: [0] };
}

/** zod schema of the raw completions request. */
export const completionRequestSchema = z.object({
  ...generationShape,
  prompt: customField(checkPrompt),
  logprobs: numberField({ min: 0, max: 20, integer: true }).optional(),
});

/** A validated, normalized completions request. */
export interface CompletionRequest extends GenerationParams {
  prompt: Prompt;
  /** Return this many alternatives per sampled token (0–20), with the sampled token's log-probability. */
  logprobs?: number;
}
