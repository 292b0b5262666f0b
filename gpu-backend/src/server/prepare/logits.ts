/**
 * From a validated /v1/logits request to an engine logits job: the λ list checked against the model's hard range,
 * the input (token ids, a chat through the template, or a prompt) tokenized through the one prompt check, and the
 * answer's size bounded before the forward pass.
 */
import type { LambdaField } from '../../../../shared/src/generation-fields.ts';
import { invalidRequest } from '../../../../shared/src/errors.ts';
import { checkLogitsAnswerSize, logitsPositionCount } from '../../../../shared/src/logits-bounds.ts';
import type { LogitsRequest } from '../../../../shared/src/logits-request.ts';
import type { LogitsJob } from '../../engine/protocol.ts';
import type { ServerConfig } from '../config.ts';
import type { ServedModel } from '../registry.ts';
import { logitsMixes } from './adapters.ts';
import { checkLambda } from './lambda.ts';
import { checkPrompt, encodeChatPrompt, encodePrompt, promptTokenLimit } from './prompt.ts';

/** A logits request ready for the engine. */
export interface PreparedLogits {
  job: Omit<LogitsJob, 'id'>;
  /** The λ values, checked (the model's default when the request named none). */
  lambdas: number[];
  /** The input's token ids. */
  ids: number[];
  /** the field the input came in, for errors about it */
  inputParam: 'input_ids' | 'messages' | 'prompt';
}

async function inputIds(model: ServedModel, req: LogitsRequest, limits: ServerConfig['limits']): Promise<number[]> {
  const vocab = model.engine.info.vocabSize;
  if (req.input_ids) {
    const bad = req.input_ids.findIndex((t) => t >= vocab);
    if (bad >= 0)
      throw invalidRequest(
        `\`input_ids[${bad}]\` is ${req.input_ids[bad]}, but the vocabulary has ${vocab} tokens`,
        `input_ids[${bad}]`,
        'invalid_token_id',
      );
    return req.input_ids;
  }
  const limit = promptTokenLimit(model, limits);
  if (!req.messages) return encodePrompt(model, req.prompt!, 'prompt', limit);
  if (!model.tokenizer.hasChatTemplate)
    throw invalidRequest(
      `model "${model.config.id}" has no chat template; send \`prompt\` or \`input_ids\``,
      'messages',
      'no_chat_template',
    );
  const options = { addGenerationPrompt: req.add_generation_prompt, continueFinalMessage: req.continue_final_message };
  return encodeChatPrompt(model, req.messages, options, limit);
}

/** Prepares a logits request; `lambdaField` is the single field the client wrote λ in (null: `lambdas` or none). */
export async function prepareLogits(
  model: ServedModel,
  req: LogitsRequest,
  lambdaField: LambdaField | null,
  limits: ServerConfig['limits'],
): Promise<PreparedLogits> {
  const lambdas = (req.lambdas ?? [model.config.default_lambda]).map((l, i) =>
    checkLambda(model, l, lambdaField ?? (req.lambdas ? `lambdas[${i}]` : 'lambdas')),
  );
  // named adapters: λ values on `adapter`, and `mix`, as the engine's mixes (checked before any tokenization)
  const named = logitsMixes(model, req, lambdas);
  const ids = await inputIds(model, req, limits);
  const inputParam = req.input_ids ? 'input_ids' : req.messages ? 'messages' : 'prompt';
  checkPrompt(model, ids, inputParam, limits);
  const includeBranches = req.include_branches && model.config.mode !== 'single';
  // the answer's size is known before the forward pass: refuse what would exceed the bound
  const shape = {
    positions: logitsPositionCount(req.positions, ids.length),
    lambdas: named ? named.lambdas.length + named.mixes.length : lambdas.length,
    topLogprobs: Math.min(req.top_logprobs, model.engine.info.vocabSize),
    includeBranches,
  };
  const tooLarge = checkLogitsAnswerSize(shape, limits.max_logits_entries);
  if (tooLarge) throw tooLarge;
  const job: Omit<LogitsJob, 'id'> = {
    inputIds: ids,
    lambdas: named ? named.lambdas : lambdas,
    ...(named && named.mixes.length > 0 ? { mixes: named.mixes } : {}),
    positions: req.positions,
    topLogprobs: req.top_logprobs,
    includeBranches,
  };
  return { job, lambdas, ids, inputParam };
}
