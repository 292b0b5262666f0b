/**
 * `POST /v1/chat/completions` request: OpenAI's fields (text only), realign's λ fields and the vLLM extras.
 * Messages are normalized at the boundary: text parts joined into one string, `developer` read as `system`.
 */
import { z } from 'zod';
import { booleanField, customField, describeValue, numberField, type CheckResult } from './fields.ts';
import { generationShape, type GenerationParams } from './generation-fields.ts';

/** Roles a chat template sees after normalization. */
export type ChatRole = 'system' | 'user' | 'assistant';

/** One message after normalization: content is always a string. */
export interface ChatMessage {
  role: ChatRole;
  content: string;
  name?: string;
}

/** Most messages in one request. */
export const MAX_MESSAGES = 2048;

const ROLE_ALIASES: Record<string, ChatRole> = { system: 'system', developer: 'system', user: 'user', assistant: 'assistant' };

/** Content as a string or an array of `{type: "text", text}` parts; parts are joined with "\n" (as vLLM does). */
function checkContent(value: unknown, index: number): CheckResult<string> {
  if (typeof value === 'string') return { ok: true, value };
  if (!Array.isArray(value)) {
    return {
      ok: false,
      message: `must be a string or an array of {"type": "text", "text": ...} parts, got ${describeValue(value)}`,
      path: [index, 'content'],
    };
  }
  const texts: string[] = [];
  for (const [j, part] of value.entries()) {
    const at = [index, 'content', j];
    if (typeof part !== 'object' || part === null)
      return {
        ok: false,
        message: `must be an object like {"type": "text", "text": "..."}, got ${describeValue(part)}`,
        path: at,
      };
    const { type, text } = part as { type?: unknown; text?: unknown };
    if (type !== 'text')
      return { ok: false, message: `has type ${describeValue(type)}; realign accepts only "text" parts`, path: [...at, 'type'] };
    if (typeof text !== 'string')
      return { ok: false, message: `must be a string, got ${describeValue(text)}`, path: [...at, 'text'] };
    texts.push(text);
  }
  return { ok: true, value: texts.join('\n') };
}

/** `messages`: a non-empty array of {role, content, name?}. */
export function checkMessages(value: unknown): CheckResult<ChatMessage[]> {
  if (value === undefined) return { ok: false, message: 'is required: send an array of {"role", "content"} messages' };
  if (!Array.isArray(value))
    return { ok: false, message: `must be an array of {"role", "content"} messages, got ${describeValue(value)}` };
  if (value.length === 0) return { ok: false, message: 'must contain at least one message' };
  if (value.length > MAX_MESSAGES)
    return { ok: false, message: `must contain at most ${MAX_MESSAGES} messages, got ${value.length}` };
  const out: ChatMessage[] = [];
  for (const [i, m] of value.entries()) {
    if (typeof m !== 'object' || m === null || Array.isArray(m))
      return {
        ok: false,
        message: `must be an object like {"role": "user", "content": "..."}, got ${describeValue(m)}`,
        path: [i],
      };
    const { role, content, name } = m as { role?: unknown; content?: unknown; name?: unknown };
    const normalized = typeof role === 'string' ? ROLE_ALIASES[role] : undefined;
    if (normalized === undefined) {
      return {
        ok: false,
        message: `must be one of "system", "developer", "user", "assistant" (tools are not supported), got ${describeValue(role)}`,
        path: [i, 'role'],
      };
    }
    const text = checkContent(content, i);
    if (!text.ok) return text;
    const msg: ChatMessage = { role: normalized, content: text.value };
    if (name !== undefined && name !== null) {
      if (typeof name !== 'string' || name.length === 0 || name.length > 64)
        return { ok: false, message: `must be a string of 1–64 characters, got ${describeValue(name)}`, path: [i, 'name'] };
      msg.name = name;
    }
    out.push(msg);
  }
  return { ok: true, value: out };
}

/** zod schema of the raw chat request (before cross-field normalization, see `parseRequest`). */
export const chatRequestSchema = z.object({
  ...generationShape,
  messages: customField(checkMessages),
  max_completion_tokens: numberField({ min: 1, integer: true }).optional(),
  logprobs: booleanField().optional(),
  top_logprobs: numberField({ min: 0, max: 20, integer: true }).optional(),
});

/** A validated, normalized chat completion request. */
export interface ChatCompletionRequest extends GenerationParams {
  messages: ChatMessage[];
  /** Return the sampled tokens' log-probabilities (of the blended distribution after temperature). */
  logprobs?: boolean;
  /** Alternatives per position, 0–20; requires `logprobs: true`. */
  top_logprobs?: number;
}
