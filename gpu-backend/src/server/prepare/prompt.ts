/**
 * Prompts to token ids on the model's tokenizer thread, with the length bound checked before the work: a text whose
 * UTF-8 size alone proves it over the limit (more than limit × the most bytes one token can stand for) is refused
 * without being tokenized, so an oversized prompt costs its sender a 400 and nobody else any time.
 */
import { invalidRequest, serviceUnavailable } from '../../../../shared/src/errors.ts';
import { promptProblem } from '../../engine/prompt-limit.ts';
import { PromptTooLongError } from '../../text/tokenizer-thread.ts';
import { TokenizerError, type ChatMessage, type ChatTemplateOptions } from '../../text/tokenizer.ts';
import type { ServerConfig } from '../config.ts';
import type { ServedModel } from '../registry.ts';

/** The most prompt tokens a request may send to `model`: the server's limit, and one less than the context. */
export function promptTokenLimit(model: ServedModel, limits: ServerConfig['limits']): number {
  return Math.min(limits.max_prompt_tokens, model.engine.info.maxContext - 1);
}

/**
 * The one prompt check of every endpoint (engine/prompt-limit.ts, which the engine's admission asks too): a 400
 * naming `param` when the tokenized prompt is empty (`empty_prompt`) or over {@link promptTokenLimit}
 * (`context_length_exceeded`).
 */
export function checkPrompt(model: ServedModel, ids: readonly number[], param: string, limits: ServerConfig['limits']): void {
  const problem = promptProblem(ids.length, promptTokenLimit(model, limits), `\`${param}\``);
  if (problem) throw invalidRequest(problem.message, param, problem.code);
}

/** The byte size past which a prompt is surely over `limit` tokens, or null when the tokenizer allows no such bound. */
function byteBound(model: ServedModel, limit: number): number | null {
  const perToken = model.tokenizer.maxBytesPerToken;
  return perToken === null ? null : limit * perToken;
}

function tooLong(model: ServedModel, param: string, bytes: number, limit: number): never {
  const perToken = model.tokenizer.maxBytesPerToken!;
  throw invalidRequest(
    `\`${param}\` is ${bytes} bytes; model "${model.config.id}"'s tokens stand for at most ${perToken} bytes each, so it is over the ${limit} tokens this server accepts for it; send a shorter prompt`,
    param,
    'context_length_exceeded',
  );
}

function threadError(err: unknown, param: string): Error {
  if (err instanceof TokenizerError) return invalidRequest(err.message, param, 'invalid_messages');
  return serviceUnavailable(`the tokenizer is unavailable: ${(err as Error).message}`, 5, 'tokenizer_unavailable');
}

/** Token ids of a text prompt; `param` names it in errors. */
export async function encodePrompt(
  model: ServedModel,
  text: string,
  param: string,
  limit: number,
  addSpecialTokens = true,
): Promise<number[]> {
  const bytes = Buffer.byteLength(text, 'utf8');
  const bound = byteBound(model, limit);
  if (bound !== null && bytes > bound) tooLong(model, param, bytes, limit);
  try {
    return await model.encoder.encode(text, { addSpecialTokens });
  } catch (err) {
    throw threadError(err, param);
  }
}

/** Token ids of a chat rendered with the model's template (rendered and checked on the tokenizer thread). */
export async function encodeChatPrompt(
  model: ServedModel,
  messages: readonly ChatMessage[],
  options: ChatTemplateOptions,
  limit: number,
): Promise<number[]> {
  try {
    return await model.encoder.encodeChat(messages, options, byteBound(model, limit));
  } catch (err) {
    if (err instanceof PromptTooLongError) tooLong(model, 'messages', err.bytes, limit);
    throw threadError(err, 'messages');
  }
}
