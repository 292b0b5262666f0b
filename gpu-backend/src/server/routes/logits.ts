/** POST /v1/logits: one forward pass, the blended next-token distributions at several λ (the TrRa teacher signal). */
import type { Context } from 'hono';
import { ApiError, invalidRequest } from '../../../../shared/src/errors.ts';
import { checkLogitsAnswerSize, logitsPositionCount } from '../../../../shared/src/logits-bounds.ts';
import { lambdaFieldOf } from '../../../../shared/src/backend-request.ts';
import { HEADERS } from '../../../../shared/src/headers.ts';
import { parseJsonText, readRequest } from '../../../../shared/src/parse-request.ts';
import type { LogitsResponse, PositionLogprobs } from '../../../../shared/src/responses.ts';
import type { TopEntry } from '../../engine/protocol.ts';
import { completionId } from '../format.ts';
import { jsonArrayPieces, piecesStream } from '../json-stream.ts';
import type { BackendEnv } from '../http-types.ts';
import { checkLambda } from '../jobs.ts';
import { encodeChatPrompt, encodePrompt, promptTokenLimit } from '../prompt-tokens.ts';
import { rejectionError, type GenerateDeps } from './generate.ts';

/** The route handler. */
export function logitsRoute(deps: GenerateDeps) {
  return async function logitsHandler(c: Context<BackendEnv>): Promise<Response> {
    const parsed = readRequest('logits', parseJsonText(c.get('body')));
    if (parsed instanceof ApiError) throw parsed;
    const req = parsed.request;
    const model = deps.registry.get(req.model);
    if (model instanceof ApiError) throw model;
    // a single `lambda` (or its alias `control`) is read as `lambdas: [x]`; errors name the field the client wrote
    const single = lambdaFieldOf(c.req.header(HEADERS.lambdaField), parsed.lambdaField);
    const lambdas = (req.lambdas ?? [model.config.default_lambda]).map((l, i) =>
      checkLambda(model, l, single ?? (req.lambdas ? `lambdas[${i}]` : 'lambdas')),
    );
    const tok = model.tokenizer;
    const vocab = model.engine.info.vocabSize;
    let ids: number[];
    if (req.input_ids) {
      const bad = req.input_ids.findIndex((t) => t >= vocab);
      if (bad >= 0)
        throw invalidRequest(
          `\`input_ids[${bad}]\` is ${req.input_ids[bad]}, but the vocabulary has ${vocab} tokens`,
          `input_ids[${bad}]`,
          'invalid_token_id',
        );
      ids = req.input_ids;
    } else if (req.messages) {
      if (!tok.hasChatTemplate)
        throw invalidRequest(
          `model "${model.config.id}" has no chat template; send \`prompt\` or \`input_ids\``,
          'messages',
          'no_chat_template',
        );
      ids = await encodeChatPrompt(
        model,
        req.messages,
        { addGenerationPrompt: req.add_generation_prompt, continueFinalMessage: req.continue_final_message },
        promptTokenLimit(model, deps.config.limits),
      );
    } else {
      ids = await encodePrompt(model, req.prompt!, 'prompt', promptTokenLimit(model, deps.config.limits));
    }
    const param = req.input_ids ? 'input_ids' : req.messages ? 'messages' : 'prompt';
    if (ids.length === 0) throw invalidRequest(`\`${param}\` encodes to no tokens`, param, 'empty_prompt');
    if (ids.length > deps.config.limits.max_prompt_tokens || ids.length >= model.engine.info.maxContext) {
      throw invalidRequest(
        `\`${param}\` has ${ids.length} tokens; model "${model.config.id}" accepts at most ${Math.min(deps.config.limits.max_prompt_tokens, model.engine.info.maxContext - 1)}`,
        param,
        'context_length_exceeded',
      );
    }
    const includeBranches = req.include_branches && model.config.mode !== 'single';
    // the answer's size is known before the forward pass: refuse what would exceed the bound
    const shape = {
      positions: logitsPositionCount(req.positions, ids.length),
      lambdas: lambdas.length,
      topLogprobs: Math.min(req.top_logprobs, vocab),
      includeBranches,
    };
    const tooLarge = checkLogitsAnswerSize(shape, deps.config.limits.max_logits_entries);
    if (tooLarge) throw tooLarge;
    let result;
    try {
      result = await model.engine.logits({
        inputIds: ids,
        lambdas,
        positions: req.positions,
        topLogprobs: req.top_logprobs,
        includeBranches,
      });
    } catch (err) {
      throw rejectionError(err);
    }
    const positions = result.positions;
    const wire = (tops: TopEntry[][]) =>
      jsonArrayPieces(tops.keys(), (k): PositionLogprobs => ({
        position: positions[k],
        top_logprobs: tops[k].map((t) => ({ token_id: t.token, token: tok.tokenString(t.token), logprob: t.logprob })),
      }));
    const branchTokens = (on: boolean) => ({ prompt_tokens: on ? ids.length : 0, completion_tokens: 0 });
    const needsAligned = includeBranches || lambdas.some((l) => l !== 0);
    const needsReference = model.config.mode !== 'single' && (includeBranches || lambdas.some((l) => l !== 1));
    const head: Omit<LogitsResponse, 'results' | 'branches' | 'usage'> = {
      id: completionId('logits'),
      object: 'logits',
      created: Math.floor(Date.now() / 1000),
      model: model.config.id,
      lambdas,
      input_ids: ids,
      positions: req.positions,
    };
    const usage: LogitsResponse['usage'] = {
      prompt_tokens: ids.length,
      completion_tokens: 0,
      total_tokens: ids.length,
      realign: { lambda: lambdas, branches: { aligned: branchTokens(needsAligned), reference: branchTokens(needsReference) } },
    };
    const blends = result.blends;
    const branches = result.branches;
    // the LogitsResponse as JSON, one position at a time (an answer of max_logits_entries is megabytes)
    function* pieces(): Generator<string> {
      yield JSON.stringify(head).slice(0, -1) + ',"results":[';
      for (const [i, b] of blends.entries()) {
        yield `${i === 0 ? '' : ','}{"lambda":${JSON.stringify(b.lambda)},"positions":`;
        yield* wire(b.top);
        yield '}';
      }
      yield ']';
      if (branches) {
        yield ',"branches":{"aligned":';
        yield* wire(branches.aligned);
        yield ',"reference":';
        yield* wire(branches.reference);
        yield '}';
      }
      yield `,"usage":${JSON.stringify(usage)}}`;
    }
    return c.body(piecesStream(pieces()), 200, { 'content-type': 'application/json', [HEADERS.lambda]: lambdas.join(',') });
  };
}
