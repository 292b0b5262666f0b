/** POST /v1/logits: one forward pass, the blended next-token distributions at several λ (the TrRa teacher signal). */
import type { Context } from 'hono';
import { ApiError, invalidRequest } from '../../../../shared/src/errors.ts';
import { parseJsonText, parseRequest } from '../../../../shared/src/parse-request.ts';
import type { LogitsResponse, PositionLogprobs } from '../../../../shared/src/responses.ts';
import type { TopEntry } from '../../engine/protocol.ts';
import { TokenizerError } from '../../text/tokenizer.ts';
import { completionId } from '../format.ts';
import type { BackendEnv } from '../http-types.ts';
import { checkLambda } from '../jobs.ts';
import { rejectionError, type GenerateDeps } from './generate.ts';

/** The route handler. */
export function logitsRoute(deps: GenerateDeps) {
  return async function logitsHandler(c: Context<BackendEnv>): Promise<Response> {
    const json = parseJsonText(c.get('body'));
    const req = parseRequest('logits', json);
    if (req instanceof ApiError) throw req;
    const model = deps.registry.get(req.model);
    if (model instanceof ApiError) throw model;
    // parseRequest reads a single `lambda` (or its alias `control`) as `lambdas: [x]`; errors name the field sent
    const sent = json as { lambdas?: unknown; lambda?: unknown; control?: unknown };
    const single = sent.lambdas != null ? null : sent.lambda != null ? 'lambda' : sent.control != null ? 'control' : null;
    const lambdas = (req.lambdas ?? [model.config.default_lambda]).map((l, i) => checkLambda(model, l, single ?? (req.lambdas ? `lambdas[${i}]` : 'lambdas')));
    const tok = model.tokenizer;
    const vocab = model.engine.info.vocabSize;
    let ids: number[];
    if (req.input_ids) {
      const bad = req.input_ids.findIndex((t) => t >= vocab);
      if (bad >= 0) throw invalidRequest(`\`input_ids[${bad}]\` is ${req.input_ids[bad]}, but the vocabulary has ${vocab} tokens`, `input_ids[${bad}]`, 'invalid_token_id');
      ids = req.input_ids;
    } else if (req.messages) {
      if (!tok.hasChatTemplate) throw invalidRequest(`model "${model.config.id}" has no chat template; send \`prompt\` or \`input_ids\``, 'messages', 'no_chat_template');
      try {
        ids = tok.encodeChat(req.messages, { addGenerationPrompt: req.add_generation_prompt, continueFinalMessage: req.continue_final_message });
      } catch (err) {
        if (err instanceof TokenizerError) throw invalidRequest(err.message, 'messages', 'invalid_messages');
        throw err;
      }
    } else {
      ids = tok.encode(req.prompt!);
    }
    const param = req.input_ids ? 'input_ids' : req.messages ? 'messages' : 'prompt';
    if (ids.length === 0) throw invalidRequest(`\`${param}\` encodes to no tokens`, param, 'empty_prompt');
    if (ids.length > deps.config.limits.max_prompt_tokens || ids.length >= model.engine.info.maxContext) {
      throw invalidRequest(`\`${param}\` has ${ids.length} tokens; model "${model.config.id}" accepts at most ${Math.min(deps.config.limits.max_prompt_tokens, model.engine.info.maxContext - 1)}`, param, 'context_length_exceeded');
    }
    const includeBranches = req.include_branches && model.config.mode !== 'single';
    let result;
    try {
      result = await model.engine.logits({ inputIds: ids, lambdas, positions: req.positions, topLogprobs: req.top_logprobs, includeBranches });
    } catch (err) {
      throw rejectionError(err);
    }
    const wire = (tops: TopEntry[][]): PositionLogprobs[] =>
      tops.map((top, k) => ({ position: result.positions[k], top_logprobs: top.map((t) => ({ token_id: t.token, token: tok.tokenString(t.token), logprob: t.logprob })) }));
    const branchTokens = (on: boolean) => ({ prompt_tokens: on ? ids.length : 0, completion_tokens: 0 });
    const needsAligned = includeBranches || lambdas.some((l) => l !== 0);
    const needsReference = model.config.mode !== 'single' && (includeBranches || lambdas.some((l) => l !== 1));
    const body: LogitsResponse = {
      id: completionId('logits'),
      object: 'logits',
      created: Math.floor(Date.now() / 1000),
      model: model.config.id,
      lambdas,
      input_ids: ids,
      positions: req.positions,
      results: result.blends.map((b) => ({ lambda: b.lambda, positions: wire(b.top) })),
      ...(result.branches ? { branches: { aligned: wire(result.branches.aligned), reference: wire(result.branches.reference) } } : {}),
      usage: {
        prompt_tokens: ids.length,
        completion_tokens: 0,
        total_tokens: ids.length,
        realign: { lambda: lambdas, branches: { aligned: branchTokens(needsAligned), reference: branchTokens(needsReference) } },
      },
    };
    c.header('x-realign-lambda', lambdas.join(','));
    return c.json(body);
  };
}
