/**
 * The one validation entry point of both halves: JSON text → typed request, or an {@link ApiError} (400) whose
 * message names the field and says what to change. Unknown fields are dropped; fields realign cannot serve are
 * refused (see UNSUPPORTED_FIELDS); `null` means "unset", as OpenAI's clients send it.
 */
import type { z } from 'zod';
import { chatRequestSchema, type ChatCompletionRequest } from './chat-request.ts';
import { completionRequestSchema, type CompletionRequest } from './completion-request.ts';
import { ApiError, invalidRequest } from './errors.ts';
import { describeValue } from './fields.ts';
import { foldLambdaAlias, normalizeGeneration, UNSUPPORTED_FIELDS, type LambdaField } from './generation-fields.ts';
import { DEFAULT_LOGITS_TOP, logitsRequestSchema, type LogitsRequest } from './logits-request.ts';

/**
 * Largest `max_tokens` (or `max_completion_tokens`) the wire accepts, in either half. A backend's own limit and a
 * model's context are lower; this bound keeps what the edge charges for a request finite and sane before any
 * backend has seen it.
 */
export const MAX_TOKENS_BOUND = 1 << 20;

function checkMaxTokensBound(value: number | undefined, param: string): ApiError | null {
  if (value === undefined || value <= MAX_TOKENS_BOUND) return null;
  return invalidRequest(`\`${param}\` must be at most ${MAX_TOKENS_BOUND}, got ${value}`, param, 'max_tokens_too_large');
}

/** The three request kinds and the path each is served at. */
export const ENDPOINTS = {
  chat: '/v1/chat/completions',
  completions: '/v1/completions',
  logits: '/v1/logits',
} as const;

/** A request kind: `chat`, `completions` or `logits`. */
export type RequestKind = keyof typeof ENDPOINTS;

/** The typed request of each kind. */
export interface RequestByKind {
  chat: ChatCompletionRequest;
  completions: CompletionRequest;
  logits: LogitsRequest;
}

/** A validated request and the field its client wrote λ in (`lambda`, `control`, or null: neither). */
export interface ParsedRequest<K extends RequestKind> {
  request: RequestByKind[K];
  lambdaField: LambdaField | null;
}

/** Joins a zod path as a parameter name: `messages[0].content`, `logit_bias["50256"]`. */
export function paramName(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else if (out === '') out = String(p);
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(String(p))) out += `.${String(p)}`;
    else out += `[${JSON.stringify(String(p))}]`;
  }
  return out;
}

/** One zod issue as a sentence that starts with the field: "`top_p` must be in (0, 1], got 1.5". */
export function formatIssue(issue: z.core.$ZodIssue): { param: string; message: string } {
  const param = paramName(issue.path);
  const input = (issue as { input?: unknown }).input;
  let text = issue.message;
  if (issue.code === 'invalid_type' && input === undefined) text = 'is required';
  else if (issue.code === 'invalid_type' && text.startsWith('Invalid input'))
    text = `must be ${issue.expected}, got ${describeValue(input)}`;
  return { param, message: param === '' ? text : `\`${param}\` ${text}` };
}

/**
 * Parses a request body's text as JSON. Malformed JSON and non-objects are 400s; the error says where
 * parsing stopped when the runtime tells.
 */
export function parseJsonText(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    const detail = e instanceof Error ? e.message : 'syntax error';
    return invalidRequest(`request body is not valid JSON (${detail}); send a JSON object`, null, 'invalid_json');
  }
}

function dropNulls(body: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(body)) if (v !== null) out[k] = v;
  return out;
}

function refuseUnsupported(body: Record<string, unknown>, kind: RequestKind): ApiError | null {
  if (kind === 'logits') return null;
  for (const [field, why] of Object.entries(UNSUPPORTED_FIELDS)) {
    if (body[field] !== undefined) return invalidRequest(`\`${field}\` ${why}`, field, 'unsupported_parameter');
  }
  const format = body.response_format;
  if (
    format !== undefined &&
    !(typeof format === 'object' && format !== null && (format as { type?: unknown }).type === 'text')
  ) {
    return invalidRequest(
      '`response_format` supports only {"type": "text"}; remove it or use that',
      'response_format',
      'unsupported_parameter',
    );
  }
  return null;
}

function firstIssue(error: z.ZodError): ApiError {
  const { param, message } = formatIssue(error.issues[0]!);
  return invalidRequest(message, param === '' ? null : param);
}

/**
 * Validates and normalizes a parsed JSON body of the given kind. Returns the typed request with the field its
 * client wrote λ in, or a 400. Normalizations: `control` → `lambda` (folded once, by {@link foldLambdaAlias}),
 * `max_completion_tokens` → `max_tokens`, `stop` → string[], `stream` → boolean, chat content parts → string,
 * logits defaults filled.
 */
export function readRequest<K extends RequestKind>(kind: K, json: unknown): ParsedRequest<K> | ApiError {
  if (json instanceof ApiError) return json;
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    return invalidRequest(`request body must be a JSON object, got ${describeValue(json)}`, null, 'invalid_body');
  }
  const body = dropNulls(json as Record<string, unknown>);
  const refused = refuseUnsupported(body, kind);
  if (refused) return refused;
  if (kind === 'chat') return parseChat(body) as ParsedRequest<K> | ApiError;
  if (kind === 'completions') return parseCompletions(body) as ParsedRequest<K> | ApiError;
  return parseLogits(body) as ParsedRequest<K> | ApiError;
}

/** {@link readRequest} without the λ field: the typed request or a 400. */
export function parseRequest<K extends RequestKind>(kind: K, json: unknown): RequestByKind[K] | ApiError {
  const r = readRequest(kind, json);
  return r instanceof ApiError ? r : r.request;
}

function parseChat(body: Record<string, unknown>): ParsedRequest<'chat'> | ApiError {
  const r = chatRequestSchema.safeParse(body, { reportInput: true });
  if (!r.success) return firstIssue(r.error);
  const { max_completion_tokens, ...raw } = r.data;
  if (max_completion_tokens !== undefined && raw.max_tokens !== undefined && max_completion_tokens !== raw.max_tokens) {
    return invalidRequest(
      `\`max_completion_tokens\` is an alias of \`max_tokens\`; send one of them (got max_tokens=${raw.max_tokens}, max_completion_tokens=${max_completion_tokens})`,
      'max_completion_tokens',
    );
  }
  const tooMany =
    checkMaxTokensBound(raw.max_tokens, 'max_tokens') ?? checkMaxTokensBound(max_completion_tokens, 'max_completion_tokens');
  if (tooMany) return tooMany;
  if (raw.top_logprobs !== undefined && raw.top_logprobs > 0 && raw.logprobs !== true) {
    return invalidRequest('`top_logprobs` requires `logprobs: true`', 'top_logprobs');
  }
  const g = normalizeGeneration(raw);
  if (Array.isArray(g)) return invalidRequest(`\`${g[0]}\` ${g[1]}`, g[0]);
  const out: ChatCompletionRequest = g.fields;
  if (out.max_tokens === undefined && max_completion_tokens !== undefined) out.max_tokens = max_completion_tokens;
  return { request: out, lambdaField: g.lambdaField };
}

function parseCompletions(body: Record<string, unknown>): ParsedRequest<'completions'> | ApiError {
  const r = completionRequestSchema.safeParse(body, { reportInput: true });
  if (!r.success) return firstIssue(r.error);
  const tooMany = checkMaxTokensBound(r.data.max_tokens, 'max_tokens');
  if (tooMany) return tooMany;
  const g = normalizeGeneration(r.data);
  if (Array.isArray(g)) return invalidRequest(`\`${g[0]}\` ${g[1]}`, g[0]);
  return { request: g.fields, lambdaField: g.lambdaField };
}

function parseLogits(body: Record<string, unknown>): ParsedRequest<'logits'> | ApiError {
  const r = logitsRequestSchema.safeParse(body, { reportInput: true });
  if (!r.success) return firstIssue(r.error);
  const { lambda, control, ...d } = r.data;
  const single = foldLambdaAlias(lambda, control);
  if (Array.isArray(single)) return invalidRequest(`\`${single[0]}\` ${single[1]}`, single[0]);
  if (single.value !== undefined) {
    if (d.lambdas !== undefined) return invalidRequest('send either `lambdas` or a single `lambda`, not both', 'lambda');
    d.lambdas = [single.value];
  }
  const inputs = (['prompt', 'messages', 'input_ids'] as const).filter((k) => d[k] !== undefined);
  if (inputs.length !== 1) {
    const got = inputs.length === 0 ? 'none' : inputs.map((k) => `\`${k}\``).join(' and ');
    return invalidRequest(
      `send exactly one of \`prompt\`, \`messages\` or \`input_ids\` (got ${got})`,
      inputs[1] ?? 'prompt',
      'invalid_input',
    );
  }
  const continuing = d.continue_final_message ?? false;
  if (continuing) {
    if (d.messages === undefined) {
      return invalidRequest(
        '`continue_final_message` continues the last of `messages`; send `messages`',
        'continue_final_message',
      );
    }
    if (d.messages.at(-1)!.role !== 'assistant') {
      return invalidRequest(
        "with `continue_final_message` the last message must be the assistant's answer to continue",
        'messages',
      );
    }
    if (d.add_generation_prompt === true) {
      return invalidRequest('`continue_final_message` and `add_generation_prompt` cannot both be true', 'add_generation_prompt');
    }
  }
  const request: LogitsRequest = {
    ...d,
    positions: d.positions ?? 'last',
    top_logprobs: d.top_logprobs ?? DEFAULT_LOGITS_TOP,
    include_branches: d.include_branches ?? false,
    add_generation_prompt: d.add_generation_prompt ?? !continuing,
    continue_final_message: continuing,
  };
  return { request, lambdaField: single.field };
}
