/**
 * Response shapes of the three endpoints, as the backend produces them and the edge passes them on.
 * They are OpenAI's, plus a top-level `lambda` (the λ the sequence was generated with) and
 * `usage.realign` (token counts per branch).
 */
import { z } from 'zod';

/** Tokens one branch processed: a branch that a λ of exactly 0 or 1 skips reports zeros. */
export interface BranchTokens {
  prompt_tokens: number;
  completion_tokens: number;
}

/** realign's extension of `usage`. */
export interface RealignUsage {
  /** The λ used: a number for generation, the list of `lambdas` for `/v1/logits`. */
  lambda: number | number[];
  branches: {
    /** The aligned branch (InRa: through the adapter; fusion: the aligned checkpoint). */
    aligned: BranchTokens;
    /** The reference branch (InRa: adapter skipped; fusion: the reference checkpoint). */
    reference: BranchTokens;
  };
  /** A request with a `mix` (several named adapters): the mix, and the tokens each adapter's branch computed. */
  mix?: Record<string, number>;
  adapters?: Record<string, BranchTokens>;
}

/** OpenAI's usage object with `realign` added. `prompt_tokens` counts each prompt once, not per branch. */
export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  realign?: RealignUsage;
}

/** Why a choice stopped: a stop string/token, or `max_tokens`. */
export type FinishReason = 'stop' | 'length';

/** One alternative token with its log-probability (of the blended distribution after temperature). */
export interface TopLogprob {
  token: string;
  logprob: number;
  bytes: number[] | null;
}

/** Chat logprobs of one sampled token. */
export interface ChatTokenLogprob extends TopLogprob {
  top_logprobs: TopLogprob[];
}

/** `choices[i].logprobs` of a chat completion (or of a chunk, covering that chunk's tokens). */
export interface ChatLogprobs {
  content: ChatTokenLogprob[] | null;
}

/** A finished chat completion (`stream: false`). */
export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  lambda: number;
  choices: Array<{
    index: number;
    message: { role: 'assistant'; content: string };
    logprobs: ChatLogprobs | null;
    finish_reason: FinishReason;
  }>;
  usage: Usage;
}

/**
 * One SSE event of a streamed chat completion. All chunks of a stream share `id`. The first chunk of a choice
 * carries `delta.role`; the last carries `finish_reason`. With `stream_options.include_usage` a final chunk with
 * `choices: []` carries `usage`; the other chunks then have `usage: null`.
 */
export interface ChatCompletionChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  lambda: number;
  choices: Array<{
    index: number;
    delta: { role?: 'assistant'; content?: string };
    logprobs: ChatLogprobs | null;
    finish_reason: FinishReason | null;
  }>;
  usage?: Usage | null;
}

/** OpenAI's logprobs of `/v1/completions`. */
export interface CompletionLogprobs {
  tokens: string[];
  token_logprobs: number[];
  top_logprobs: Array<Record<string, number>> | null;
  text_offset: number[];
}

/**
 * A text completion, finished or as a streamed chunk (OpenAI streams `text_completion` objects too:
 * a chunk's `text` is the new text, `finish_reason` is null until the last chunk of a choice).
 */
export interface TextCompletion {
  id: string;
  object: 'text_completion';
  created: number;
  model: string;
  lambda: number;
  choices: Array<{
    index: number;
    text: string;
    logprobs: CompletionLogprobs | null;
    finish_reason: FinishReason | null;
  }>;
  usage?: Usage | null;
}

/** A token and its log-probability at one position of a logits response. */
export interface TokenLogprob {
  token_id: number;
  token: string;
  logprob: number;
}

/** The top tokens after one input position: `position` p predicts token p + 1. */
export interface PositionLogprobs {
  position: number;
  top_logprobs: TokenLogprob[];
}

/** `POST /v1/logits` answer: per λ (in request order), per reported position, the top-k of the blended distribution. */
export interface LogitsResponse {
  id: string;
  object: 'logits';
  created: number;
  model: string;
  lambdas: number[];
  /** The tokenized input (after the chat template for `messages`). */
  input_ids: number[];
  positions: 'last' | 'all';
  /** One entry per λ, in the order of `lambdas`. */
  results: Array<{ lambda: number; positions: PositionLogprobs[] }>;
  /** With `include_branches`: each branch's own distribution (λ = 1 is aligned, λ = 0 reference). */
  branches?: { aligned: PositionLogprobs[]; reference: PositionLogprobs[] };
  usage: Usage;
}

const count = z.number().int().nonnegative();
const branchTokensSchema = z.object({ prompt_tokens: count, completion_tokens: count });

/** Lenient schema of `usage`, for a consumer (the edge) that records what a backend reported. */
export const usageSchema = z.object({
  prompt_tokens: count,
  completion_tokens: count,
  total_tokens: count.optional(),
  realign: z
    .object({
      lambda: z.union([z.number(), z.array(z.number())]),
      branches: z.object({ aligned: branchTokensSchema, reference: branchTokensSchema }),
      mix: z.record(z.string(), z.number()).optional(),
      adapters: z.record(z.string(), branchTokensSchema).optional(),
    })
    .optional(),
});

/** Reads `usage` from a response or chunk object; null when absent or malformed. */
export function readUsage(value: unknown): Usage | null {
  if (typeof value !== 'object' || value === null || !('usage' in value)) return null;
  const parsed = usageSchema.safeParse((value as { usage: unknown }).usage);
  if (!parsed.success) return null;
  const u = parsed.data;
  return { ...u, total_tokens: u.total_tokens ?? u.prompt_tokens + u.completion_tokens };
}
