/**
 * POST /v1/chat/completions and /v1/completions: read and prepare the request (server/prepare/), run one engine
 * generation per choice (server/generation/), answer as one JSON object or as server-sent events (server/wire/).
 */
import type { Context } from 'hono';
import { lambdaFieldOf } from '../../../../shared/src/backend-request.ts';
import { ApiError } from '../../../../shared/src/errors.ts';
import type { AdapterMix } from '../../../../shared/src/adapter-mix.ts';
import { HEADERS, mixHeaderValue } from '../../../../shared/src/headers.ts';
import { parseJsonText, readRequest } from '../../../../shared/src/parse-request.ts';
import { SSE_CONTENT_TYPE } from '../../../../shared/src/sse.ts';
import { ChoiceRun } from '../generation/choices.ts';
import { streamAnswer } from '../generation/stream.ts';
import type { BackendEnv } from '../http-types.ts';
import { prepareGeneration } from '../prepare/generation.ts';
import type { RouteDeps } from '../route-deps.ts';
import { DISPATCH_ID } from '../usage-ledger.ts';
import { answerMeta, ChunkWriter, CompletionCollector } from '../wire/completion.ts';

/** What a generation runs with, as headers: its mix (`name=λ,…`) when it sent one, else its λ (headers.ts). */
function blendHeadersOf(mix: AdapterMix | undefined, lambda: number): Record<string, string> {
  return mix === undefined ? { [HEADERS.lambda]: String(lambda) } : { [HEADERS.mix]: mixHeaderValue(mix) };
}

/** The route handler for `kind`. */

export function generationRoute(kind: 'chat' | 'completions', deps: RouteDeps) {
  return async function generationHandler(c: Context<BackendEnv>): Promise<Response> {
    const parsed = readRequest(kind, parseJsonText(c.get('body')));
    if (parsed instanceof ApiError) throw parsed;
    const req = parsed.request;
    const model = deps.registry.get(req.model);
    if (model instanceof ApiError) throw model;
    // errors about λ name the field the client wrote it in (the edge says which, else the request itself)
    const lambdaField = lambdaFieldOf(c.req.header(HEADERS.lambdaField), parsed.lambdaField) ?? 'lambda';
    const prep = await prepareGeneration(model, req, kind, deps.config.limits, lambdaField);
    const blendHeaders = blendHeadersOf(req.mix, prep.lambda);
    for (const [k, v] of Object.entries(blendHeaders)) c.header(k, v);
    // the edge's id for this request, to ask for its usage if the answer never reaches it (direct callers get their own)
    const given = c.req.header(HEADERS.dispatchId);
    const dispatchId = given !== undefined && DISPATCH_ID.test(given) ? given : `direct-${crypto.randomUUID()}`;
    const log = c.get('log');
    const prompt = !deps.config.log_prompts ? undefined : 'messages' in req ? req.messages : req.prompt;
    const signal = c.req.raw.signal;
    const run = await ChoiceRun.start(
      model,
      prep,
      signal,
      { ledger: deps.ledger, dispatchId },
      { log, stream: req.stream, prompt },
    );
    const meta = answerMeta(kind, model, prep);
    if (!req.stream) {
      const collector = new CompletionCollector(meta, run.choices);
      const finals = await run.collect((index, ev) => collector.add(index, ev));
      return c.json(collector.body(finals, run.record(finals, collector.texts)));
    }
    const includeUsage = req.stream_options?.include_usage === true;
    const writer = new ChunkWriter(meta, run.choices, includeUsage);
    const options = { writer, includeUsage, keepTexts: deps.config.log_prompts, log, model: model.config.id };
    return new Response(streamAnswer(run, signal, options), {
      headers: {
        'content-type': SSE_CONTENT_TYPE,
        'cache-control': 'no-cache',
        ...blendHeaders,
        [HEADERS.requestId]: c.get('requestId'),
      },
    });
  };
}
