/**
 * From validated requests to engine jobs: the prompt tokens (chat template for messages), λ checked against the
 * model's hard range, max_tokens checked against the context and the server's limits, sampling parameters filled.
 */
import type { ChatCompletionRequest } from '../../../shared/src/chat-request.ts';
import type { CompletionRequest } from '../../../shared/src/completion-request.ts';
import { invalidRequest } from '../../../shared/src/errors.ts';
import type { GenerationParams } from '../../../shared/src/generation-fields.ts';
import type { GenerateJob } from '../engine/protocol.ts';
import { samplingParams } from '../sampling/params.ts';
import type { ServerConfig } from './config.ts';
import { encodeChatPrompt, encodePrompt, promptTokenLimit } from './prompt-tokens.ts';
import type { ServedModel } from './registry.ts';

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
}

/** λ of a request: the request's, else the model's default; must lie in the model's hard range. */
export function checkLambda(model: ServedModel, lambda: number | undefined, param = 'lambda'): number {
  const m = model.config;
  const value = lambda ?? m.default_lambda;
  if (m.mode === 'single' && value !== 1 && lambda !== undefined) {
    throw invalidRequest(
      `model "${m.id}" serves a single checkpoint and has no λ; remove \`${param}\` or set it to 1`,
      param,
      'lambda_not_supported',
    );
  }
  const [lo, hi] = m.lambda_range;
  if (value < lo || value > hi) {
    throw invalidRequest(
      `\`${param}\` must be in [${lo}, ${hi}] for model "${m.id}", got ${value}`,
      param,
      'lambda_out_of_range',
    );
  }
  return m.mode === 'single' ? 1 : value;
}

/**
 * Tokens of a chat request (its template) or of each prompt of a completions request, on the model's tokenizer
 * thread; a prompt whose size alone puts it over `limit` tokens is refused without being tokenized.
 */
export async function tokenizePrompts(
  model: ServedModel,
  req: ChatCompletionRequest | CompletionRequest,
  kind: 'chat' | 'completions',
  limit: number,
): Promise<PreparedPrompt[]> {
  const tok = model.tokenizer;
  if (kind === 'chat') {
    if (!tok.hasChatTemplate)
      throw invalidRequest(
        `model "${model.config.id}" has no chat template; use /v1/completions with a prompt`,
        'messages',
        'no_chat_template',
      );
    return [{ ids: await encodeChatPrompt(model, (req as ChatCompletionRequest).messages, {}, limit) }];
  }
  const prompt = (req as CompletionRequest).prompt;
  const vocab = model.engine.info.vocabSize;
  const fromIds = (ids: number[], param: string): PreparedPrompt => {
    const bad = ids.findIndex((t) => t >= vocab);
    if (bad >= 0)
      throw invalidRequest(
        `\`${param}[${bad}]\` is token id ${ids[bad]}, but the vocabulary has ${vocab} tokens`,
        `${param}[${bad}]`,
        'invalid_token_id',
      );
    return { ids };
  };
  if (typeof prompt === 'string') return [{ ids: await encodePrompt(model, prompt, 'prompt', limit) }];
  if (prompt.length > 0 && typeof prompt[0] === 'number') return [fromIds(prompt as number[], 'prompt')];
  const out: PreparedPrompt[] = [];
  // one after another: a request's prompts queue behind each other, not ahead of other requests' prompts
  for (const [i, p] of (prompt as (string | number[])[]).entries())
    out.push(typeof p === 'string' ? { ids: await encodePrompt(model, p, `prompt[${i}]`, limit) } : fromIds(p, `prompt[${i}]`));
  return out;
}

/** Builds the engine jobs of a generation request, enforcing the limits; `lambdaParam` is the λ field the client sent. */
export async function prepareGeneration(
  model: ServedModel,
  req: (ChatCompletionRequest | CompletionRequest) & GenerationParams,
  kind: 'chat' | 'completions',
  limits: ServerConfig['limits'],
  lambdaParam: 'lambda' | 'control' = 'lambda',
): Promise<PreparedGeneration> {
  const lambda = checkLambda(model, req.lambda, lambdaParam);
  // the cheap bounds first: a request refused for them costs no tokenization
  const n = req.n ?? 1;
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
  for (const [key] of Object.entries(req.logit_bias ?? {})) {
    if (Number(key) >= vocab)
      throw invalidRequest(
        `\`logit_bias\` names token id ${key}, but the vocabulary has ${vocab} tokens`,
        'logit_bias',
        'invalid_token_id',
      );
  }
  // a stop id outside the vocabulary can never be generated: accepted and dropped (as vLLM does), so a client
  // written for another model (e.g. Qwen's 151643) works unchanged
  const stopTokenIds = (req.stop_token_ids ?? []).filter((id) => id < vocab);
  const sent = kind === 'chat' ? null : (req as CompletionRequest).prompt;
  const promptCount = Array.isArray(sent) && sent.length > 0 && typeof sent[0] !== 'number' ? sent.length : 1;
  if (promptCount * n > limits.max_n * 4)
    throw invalidRequest(
      `${promptCount} prompts × n=${n} is too many choices; send at most ${limits.max_n * 4}`,
      'prompt',
      'too_many_choices',
    );
  const prompts = await tokenizePrompts(model, req, kind, promptTokenLimit(model, limits));
  const context = model.engine.info.maxContext;
  const param = kind === 'chat' ? 'messages' : 'prompt';
  for (const p of prompts) {
    if (p.ids.length === 0) throw invalidRequest(`\`${param}\` encodes to no tokens; send some text`, param, 'empty_prompt');
    if (p.ids.length > limits.max_prompt_tokens)
      throw invalidRequest(
        `\`${param}\` has ${p.ids.length} tokens; this server accepts at most ${limits.max_prompt_tokens}`,
        param,
        'prompt_too_long',
      );
    if (p.ids.length >= context)
      throw invalidRequest(
        `\`${param}\` has ${p.ids.length} tokens but model "${model.config.id}" has a context of ${context}`,
        param,
        'context_length_exceeded',
      );
  }
  const longest = Math.max(...prompts.map((p) => p.ids.length));
  if (req.max_tokens !== undefined) {
    if (longest + req.max_tokens > context) {
      throw invalidRequest(
        `\`max_tokens\` is ${req.max_tokens} but the prompt already has ${longest} of the model's ${context} tokens of context; lower max_tokens to ${context - longest}`,
        'max_tokens',
        'context_length_exceeded',
      );
    }
  }
  const chat = kind === 'chat' ? (req as ChatCompletionRequest) : null;
  const logprobs = chat ? chat.logprobs === true : (req as CompletionRequest).logprobs !== undefined;
  const topLogprobs = chat ? (chat.top_logprobs ?? 0) : ((req as CompletionRequest).logprobs ?? 0);
  // one parameter set for every choice (each job is copied when it is posted to the engine's worker)
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
  const jobs: Omit<GenerateJob, 'id'>[] = [];
  prompts.forEach((p) => {
    const maxTokens = Math.min(req.max_tokens ?? limits.default_max_tokens, context - p.ids.length);
    for (let i = 0; i < n; i++) {
      jobs.push({
        promptIds: p.ids,
        lambda,
        params,
        maxTokens,
        stop,
        stopTokenIds,
        ignoreEos: false,
        skipSpecialTokens: req.skip_special_tokens ?? true,
        stream: i,
      });
    }
  });
  return { lambda, prompts, n, jobs, topLogprobs, logprobs };
}
