/**
 * From a validated chat or completions request to engine jobs: λ checked against the model's hard range, the cheap
 * bounds (n, max_tokens, stop, logit_bias, choices) before any tokenization, the prompt tokens (chat template for
 * messages) through the one prompt check, max_tokens against the context, sampling parameters filled.
 */
import type { ChatCompletionRequest } from '../../../../shared/src/chat-request.ts';
import type { CompletionRequest } from '../../../../shared/src/completion-request.ts';
import { invalidRequest } from '../../../../shared/src/errors.ts';
import type { GenerationParams } from '../../../../shared/src/generation-fields.ts';
import type { GenerateJob } from '../../engine/protocol.ts';
import { samplingParams, type SamplingParams } from '../../sampling/params.ts';
import type { ServerConfig } from '../config.ts';
import type { ServedModel } from '../registry.ts';
import { checkAdapters } from './adapters.ts';
import { checkLambda } from './lambda.ts';
import { checkPrompt, encodeChatPrompt, encodePrompt, promptTokenLimit } from './prompt.ts';

type Kind = 'chat' | 'completions';
type Limits = ServerConfig['limits'];
type GenerationRequest = (ChatCompletionRequest | CompletionRequest) & GenerationParams;

/** One prompt of a request, tokenized. */
export interface PreparedPrompt {
  ids: number[];
}

/** Everything needed to run a generation request. */
export interface PreparedGeneration {
  lambda: number;
  prompts: PreparedPrompt[];
  n: number;
  /** jobs in choice order: prompt p, choice i → index p·n + i */
  jobs: Omit<GenerateJob, 'id'>[];
  topLogprobs: number;
  logprobs: boolean;
  /** the field the prompt came in, for errors about it (`messages` or `prompt`) */
  promptParam: 'messages' | 'prompt';
}

function checkTokenIds(ids: number[], param: string, vocab: number): PreparedPrompt {
  const bad = ids.findIndex((t) => t >= vocab);
  if (bad >= 0)
    throw invalidRequest(
      `\`${param}[${bad}]\` is token id ${ids[bad]}, but the vocabulary has ${vocab} tokens`,
      `${param}[${bad}]`,
      'invalid_token_id',
    );
  return { ids };
}

/**
 * Tokens of a chat request (its template) or of each prompt of a completions request, on the model's tokenizer
 * thread; a prompt whose size alone puts it over `limit` tokens is refused without being tokenized.
 */
export async function tokenizePrompts(
  model: ServedModel,
  req: ChatCompletionRequest | CompletionRequest,
  kind: Kind,
  limit: number,
): Promise<PreparedPrompt[]> {
  if (kind === 'chat') {
    if (!model.tokenizer.hasChatTemplate)
      throw invalidRequest(
        `model "${model.config.id}" has no chat template; use /v1/completions with a prompt`,
        'messages',
        'no_chat_template',
      );
    return [{ ids: await encodeChatPrompt(model, (req as ChatCompletionRequest).messages, {}, limit) }];
  }
  const prompt = (req as CompletionRequest).prompt;
  const vocab = model.engine.info.vocabSize;
  if (typeof prompt === 'string') return [{ ids: await encodePrompt(model, prompt, 'prompt', limit) }];
  if (prompt.length > 0 && typeof prompt[0] === 'number') return [checkTokenIds(prompt as number[], 'prompt', vocab)];
  const out: PreparedPrompt[] = [];
  // one after another: a request's prompts queue behind each other, not ahead of other requests' prompts
  for (const [i, p] of (prompt as (string | number[])[]).entries())
    out.push(
      typeof p === 'string'
        ? { ids: await encodePrompt(model, p, `prompt[${i}]`, limit) }
        : checkTokenIds(p, `prompt[${i}]`, vocab),
    );
  return out;
}

/** The bounds that cost no tokenization; returns the stop token ids the model can produce. */
function checkCheapBounds(model: ServedModel, req: GenerationRequest, kind: Kind, limits: Limits, n: number): number[] {
  if (n > limits.max_n) throw invalidRequest(`\`n\` must be at most ${limits.max_n}, got ${n}`, 'n', 'n_too_large');
  if (req.max_tokens !== undefined && req.max_tokens > limits.max_tokens)
    throw invalidRequest(
      `\`max_tokens\` must be at most ${limits.max_tokens}, got ${req.max_tokens}`,
      'max_tokens',
      'max_tokens_too_large',
    );
  const stop = req.stop ?? [];
  if (stop.length > limits.max_stop)
    throw invalidRequest(`\`stop\` may hold at most ${limits.max_stop} strings, got ${stop.length}`, 'stop', 'too_many_stops');
  const vocab = model.engine.info.vocabSize;
  for (const key of Object.keys(req.logit_bias ?? {})) {
    if (Number(key) >= vocab)
      throw invalidRequest(
        `\`logit_bias\` names token id ${key}, but the vocabulary has ${vocab} tokens`,
        'logit_bias',
        'invalid_token_id',
      );
  }
  const sent = kind === 'chat' ? null : (req as CompletionRequest).prompt;
  const promptCount = Array.isArray(sent) && sent.length > 0 && typeof sent[0] !== 'number' ? sent.length : 1;
  if (promptCount * n > limits.max_n * 4)
    throw invalidRequest(
      `${promptCount} prompts × n=${n} is too many choices; send at most ${limits.max_n * 4}`,
      'prompt',
      'too_many_choices',
    );
  // a stop id outside the vocabulary can never be generated: accepted and dropped (as vLLM does), so a client
  // written for another model (e.g. Qwen's 151643) works unchanged
  return (req.stop_token_ids ?? []).filter((id) => id < vocab);
}

/** Every prompt through the one prompt check, and `max_tokens` against the context left by the longest. */
function checkPrompts(model: ServedModel, req: GenerationRequest, kind: Kind, prompts: PreparedPrompt[], limits: Limits): void {
  const param = kind === 'chat' ? 'messages' : 'prompt';
  for (const p of prompts) checkPrompt(model, p.ids, param, limits);
  const context = model.engine.info.maxContext;
  const longest = Math.max(...prompts.map((p) => p.ids.length));
  if (req.max_tokens !== undefined && longest + req.max_tokens > context) {
    throw invalidRequest(
      `\`max_tokens\` is ${req.max_tokens} but the prompt already has ${longest} of the model's ${context} tokens of context; lower max_tokens to ${context - longest}`,
      'max_tokens',
      'context_length_exceeded',
    );
  }
}

/** The sampling parameters of every choice, and what logprobs the answer reports. */
export function samplingOf(
  req: GenerationRequest,
  kind: Kind,
): { params: SamplingParams; logprobs: boolean; topLogprobs: number } {
  const chat = kind === 'chat' ? (req as ChatCompletionRequest) : null;
  const logprobs = chat ? chat.logprobs === true : (req as CompletionRequest).logprobs !== undefined;
  const topLogprobs = chat ? (chat.top_logprobs ?? 0) : ((req as CompletionRequest).logprobs ?? 0);
  const params = samplingParams({
    temperature: req.temperature,
    top_p: req.top_p,
    top_k: req.top_k,
    min_p: req.min_p,
    repetition_penalty: req.repetition_penalty,
    presence_penalty: req.presence_penalty,
    frequency_penalty: req.frequency_penalty,
    logit_bias: req.logit_bias,
    seed: req.seed ?? null,
    logprobs,
    top_logprobs: topLogprobs,
  });
  return { params, logprobs, topLogprobs };
}

/** Builds the engine jobs of a generation request, enforcing the limits; `lambdaParam` is the λ field the client sent. */
export async function prepareGeneration(
  model: ServedModel,
  req: GenerationRequest,
  kind: Kind,
  limits: Limits,
  lambdaParam: 'lambda' | 'control' = 'lambda',
): Promise<PreparedGeneration> {
  const { lambda, mix } = checkAdapters(model, req, lambdaParam, checkLambda(model, req.lambda, lambdaParam));
  const n = req.n ?? 1;
  // the cheap bounds first: a request refused for them costs no tokenization
  const stopTokenIds = checkCheapBounds(model, req, kind, limits, n);
  const prompts = await tokenizePrompts(model, req, kind, promptTokenLimit(model, limits));
  checkPrompts(model, req, kind, prompts, limits);
  // one parameter set for every choice (each job is copied when it is posted to the engine's worker)
  const { params, logprobs, topLogprobs } = samplingOf(req, kind);
  const context = model.engine.info.maxContext;
  const jobs: Omit<GenerateJob, 'id'>[] = [];
  for (const p of prompts) {
    const maxTokens = Math.min(req.max_tokens ?? limits.default_max_tokens, context - p.ids.length);
    for (let i = 0; i < n; i++) {
      jobs.push({
        promptIds: p.ids,
        lambda,
        ...(mix ? { mix } : {}),
        params,
        maxTokens,
        stop: req.stop ?? [],
        stopTokenIds,
        ignoreEos: false,
        skipSpecialTokens: req.skip_special_tokens ?? true,
        stream: i,
      });
    }
  }
  return { lambda, prompts, n, jobs, topLogprobs, logprobs, promptParam: kind === 'chat' ? 'messages' : 'prompt' };
}
