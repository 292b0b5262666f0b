/**
 * `POST /v1/logits` request: one forward pass over an input, blended at several λ values (the TrRa teacher
 * signal). The input is exactly one of `prompt`, `messages` or `input_ids`.
 */
import { z } from 'zod';
import { checkMessages, type ChatMessage } from './chat-request.ts';
import {
  arrayField,
  booleanField,
  customField,
  lambdaField,
  numberField,
  presetField,
  stringField,
  tokenIdField,
} from './fields.ts';
import { checkAdapterName, checkMix, type AdapterMix } from './adapter-mix.ts';

/** Most λ values in one logits request. */
export const MAX_LAMBDAS = 32;
/** Largest `top_logprobs` of a logits request. */
export const MAX_LOGITS_TOP = 100;

/** zod schema of the raw logits request. */
export const logitsRequestSchema = z.object({
  model: stringField(1, 256),
  prompt: stringField(1, Number.MAX_SAFE_INTEGER).optional(),
  messages: customField(checkMessages).optional(),
  input_ids: arrayField(tokenIdField(), 1, 1_000_000, 'token ids').optional(),
  lambdas: arrayField(lambdaField(), 1, MAX_LAMBDAS, 'λ values').optional(),
  lambda: lambdaField().optional(),
  control: lambdaField().optional(),
  preset: presetField().optional(),
  adapter: customField(checkAdapterName).optional(),
  mix: customField(checkMix).optional(),
  positions: z.enum(['last', 'all'], { error: () => 'must be "last" or "all"' }).optional(),
  top_logprobs: numberField({ min: 1, max: MAX_LOGITS_TOP, integer: true }).optional(),
  include_branches: booleanField().optional(),
  add_generation_prompt: booleanField().optional(),
  continue_final_message: booleanField().optional(),
  user: stringField(1, 256).optional(),
});

/** A validated logits request with defaults filled in. */
export interface LogitsRequest {
  model: string;
  /** Exactly one of `prompt`, `messages`, `input_ids` is set. */
  prompt?: string;
  messages?: ChatMessage[];
  input_ids?: number[];
  /**
   * λ values to blend at, from one forward pass; unset = the λ the edge's policy resolves (the backend: the
   * model's default). A single `lambda` (or `control`) on the wire is read as `lambdas: [lambda]`.
   */
  lambdas?: number[];
  preset?: string;
  /** The named adapter the λ values apply to (a model of several adapters; absent: its first). */
  adapter?: string;
  /** One more blend, read out after the λ values: λ per named adapter (adapter-mix.ts). */
  mix?: AdapterMix;
  /** Report the next-token distribution at the last position only (default) or at every position. */
  positions: 'last' | 'all';
  /** Alternatives per position and λ (default 20). */
  top_logprobs: number;
  /** Also report the aligned and the reference branch's own distributions (default false). */
  include_branches: boolean;
  /** With `messages`: append the assistant prefix of the chat template (default true, false when continuing). */
  add_generation_prompt: boolean;
  /**
   * With `messages` ending in an assistant message: the distribution after that message's text, as if the
   * assistant were still writing it (the template's end-of-turn marker is left out). Default false.
   */
  continue_final_message: boolean;
  user?: string;
}

/** Default of {@link LogitsRequest.top_logprobs}. */
export const DEFAULT_LOGITS_TOP = 20;
