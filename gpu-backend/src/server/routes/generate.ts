/**
 * POST /v1/chat/completions and /v1/completions: one engine generation per choice, answered as one JSON object or
 * streamed as server-sent events. The status is chosen only after every choice was admitted (its first event
 * arrived), so a full queue is a 429 and never a broken stream; a client that goes away cancels its choices.
 */
import type { Context } from 'hono';
import {
  ApiError,
  rateLimited,
  serverError,
  serviceUnavailable,
  invalidRequest,
  errorBody,
} from '../../../../shared/src/errors.ts';
import { lambdaFieldOf } from '../../../../shared/src/backend-request.ts';
import { HEADERS } from '../../../../shared/src/headers.ts';
import { parseJsonText, readRequest } from '../../../../shared/src/parse-request.ts';
import type {
  ChatCompletion,
  ChatCompletionChunk,
  CompletionLogprobs,
  TextCompletion,
} from '../../../../shared/src/responses.ts';
import { SSE_CONTENT_TYPE, SSE_DONE, sseErrorEvent, sseEvent } from '../../../../shared/src/sse.ts';
import { EngineRejection, type Generation } from '../../engine/engine.ts';
import type { GenerateEvent } from '../../engine/protocol.ts';
import type { ServerConfig } from '../config.ts';
import { appendCompletionLogprobs, chatLogprobs, completionId, completionLogprobs, usageOf, wireFinish } from '../format.ts';
import type { BackendEnv } from '../http-types.ts';
import { prepareGeneration } from '../jobs.ts';
import type { BackendMetrics } from '../metrics.ts';
import type { ModelRegistry, ServedModel } from '../registry.ts';
import { DISPATCH_HEADER, DISPATCH_ID, type LedgerTicket, type UsageLedger } from '../usage-ledger.ts';

/** What the generation routes need. */
export interface GenerateDeps {
  registry: ModelRegistry;
  config: ServerConfig;
  metrics: BackendMetrics;
  /** every generation's token count, however it ends (and the token metrics) */
  ledger: UsageLedger;
}

type Kind = 'chat' | 'completions';

/** Maps an engine refusal to the HTTP error a client should see. */
export function rejectionError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof EngineRejection) {
    if (err.code === 'queue_full') return rateLimited(err.message, 1, 'queue_full');
    // broken weights (NaN/∞ logits) fail the same way on every retry: a server error, not "unavailable, retry"
    if (err.code === 'non_finite_logits') return serverError(err.message, err.code);
    if (err.code === 'request_too_large' || err.code === 'context_length_exceeded' || err.code === 'empty_prompt')
      return invalidRequest(err.message, 'max_tokens', err.code);
    return serviceUnavailable(err.message, 1, err.code);
  }
  return serviceUnavailable(`the engine is unavailable: ${(err as Error).message}`, 5, 'engine_unavailable');
}

/** One choice's event stream with its first event already read (so admission is known). */
interface Started {
  index: number;
  it: AsyncIterator<GenerateEvent>;
  first: GenerateEvent;
  gen: Generation;
}

/** Starts every job and waits for each one's first event; on any refusal cancels the rest and throws. */
async function startAll(
  model: ServedModel,
  jobs: Parameters<ServedModel['engine']['generate']>[0][],
  signal: AbortSignal,
): Promise<Started[]> {
  const gens = jobs.map((j) => model.engine.generate(j));
  const its = gens.map((g) => g.events[Symbol.asyncIterator]());
  const cancelAll = () => gens.forEach((g) => g.cancel());
  signal.addEventListener('abort', cancelAll, { once: true });
  const firsts = await Promise.allSettled(its.map((it) => it.next()));
  const failed = firsts.find((f) => f.status === 'rejected');
  if (failed) {
    cancelAll();
    await Promise.allSettled(its.map((it) => it.return?.()));
    throw rejectionError((failed as PromiseRejectedResult).reason);
  }
  return its.map((it, index) => ({
    index,
    it,
    gen: gens[index],
    first: (firsts[index] as PromiseFulfilledResult<IteratorResult<GenerateEvent>>).value.value as GenerateEvent,
  }));
}

/** Every event of every choice, in arrival order; `ticket` sees each one even after the consumer stopped reading. */
async function* merged(started: Started[], ticket: LedgerTicket): AsyncGenerator<{ index: number; ev: GenerateEvent }> {
  const queue: { index: number; ev?: GenerateEvent; error?: unknown; end?: boolean }[] = [];
  let wake: (() => void) | null = null;
  const push = (x: (typeof queue)[number]) => {
    queue.push(x);
    wake?.();
  };
  for (const s of started) {
    void (async () => {
      ticket.event(s.index, s.first);
      push({ index: s.index, ev: s.first });
      if (s.first.finish) return push({ index: s.index, end: true });
      try {
        for (;;) {
          const r = await s.it.next();
          if (r.done) break;
          ticket.event(s.index, r.value);
          push({ index: s.index, ev: r.value });
          if (r.value.finish) break;
        }
      } catch (error) {
        ticket.broken(s.index);
        push({ index: s.index, error });
      }
      push({ index: s.index, end: true });
    })();
  }
  let open = started.length;
  while (open > 0) {
    while (queue.length === 0) await new Promise<void>((r) => (wake = r));
    wake = null;
    const x = queue.shift()!;
    if (x.end) open--;
    else if (x.error) throw x.error;
    else yield { index: x.index, ev: x.ev! };
  }
}

/** The error a failed choice gives the whole request. */
function failureOf(ev: GenerateEvent): ApiError {
  if (ev.finish === 'error') return serverError(ev.error?.message ?? 'generation failed', ev.error?.code ?? 'generation_failed');
  return serviceUnavailable('the engine stopped this request (the server is shutting down); retry', 1, 'cancelled');
}

/** The route handler for `kind`. */
export function generationRoute(kind: Kind, deps: GenerateDeps) {
  return async function generationHandler(c: Context<BackendEnv>): Promise<Response> {
    const parsed = readRequest(kind, parseJsonText(c.get('body')));
    if (parsed instanceof ApiError) throw parsed;
    const req = parsed.request;
    const model = deps.registry.get(req.model);
    if (model instanceof ApiError) throw model;
    // errors about λ name the field the client wrote it in (the edge says which, else the request itself)
    const lambdaField = lambdaFieldOf(c.req.header(HEADERS.lambdaField), parsed.lambdaField);
    const prep = await prepareGeneration(model, req, kind, deps.config.limits, lambdaField ?? 'lambda');
    c.header(HEADERS.lambda, String(prep.lambda));
    const started = await startAll(model, prep.jobs, c.req.raw.signal);
    const id = completionId(kind === 'chat' ? 'chatcmpl' : 'cmpl');
    const created = Math.floor(Date.now() / 1000);
    const promptsOnce = prep.prompts.reduce((s, p) => s + p.ids.length, 0);
    const log = c.get('log');
    // the edge's id for this request, to ask for its usage if the answer never reaches it (direct callers get their own)
    const given = c.req.header(DISPATCH_HEADER);
    const dispatchId = given !== undefined && DISPATCH_ID.test(given) ? given : `direct-${crypto.randomUUID()}`;
    const ticket = deps.ledger.open(
      dispatchId,
      { id: model.config.id, mode: model.config.mode },
      prep.lambda,
      prep.jobs.map((j) => j.promptIds.length),
      promptsOnce,
    );
    // prompt and completion text reach the logs only when the operator asked for it (log_prompts)
    const textFields = (texts: string[]) =>
      deps.config.log_prompts
        ? {
            prompt: kind === 'chat' ? (req as { messages: unknown }).messages : (req as { prompt: unknown }).prompt,
            completions: texts,
          }
        : {};
    const record = (finals: GenerateEvent[], texts: string[]) => {
      // the token metrics are counted by the ledger, for every ending
      const usage = usageOf(finals, promptsOnce, prep.lambda);
      log.info(
        {
          model: model.config.id,
          lambda: prep.lambda,
          choices: started.length,
          prompt_tokens: usage.prompt_tokens,
          completion_tokens: usage.completion_tokens,
          stream: req.stream,
          ...textFields(texts),
        },
        'generation done',
      );
      return usage;
    };
    const tok = model.tokenizer;
    if (!req.stream) {
      const texts = started.map(() => '');
      const finals: GenerateEvent[] = [];
      const chatLp = started.map(() => [] as ReturnType<typeof chatLogprobs>);
      const compLp = started.map((): CompletionLogprobs => ({
        tokens: [],
        token_logprobs: [],
        top_logprobs: prep.topLogprobs > 0 ? [] : null,
        text_offset: [],
      }));
      for await (const { index, ev } of merged(started, ticket)) {
        if (prep.logprobs) {
          if (kind === 'chat') chatLp[index].push(...chatLogprobs(tok, ev.tokens));
          else
            appendCompletionLogprobs(
              compLp[index],
              completionLogprobs(tok, ev.tokens, texts[index].length, prep.topLogprobs > 0),
            );
        }
        texts[index] += ev.text;
        if (ev.finish) {
          if (ev.finish === 'error' || ev.finish === 'cancelled') throw failureOf(ev);
          finals[index] = ev;
        }
      }
      const usage = record(finals, texts);
      if (kind === 'chat') {
        const body: ChatCompletion = {
          id,
          object: 'chat.completion',
          created,
          model: model.config.id,
          lambda: prep.lambda,
          choices: started.map((s) => ({
            index: s.index,
            message: { role: 'assistant', content: texts[s.index] },
            logprobs: prep.logprobs ? { content: chatLp[s.index] } : null,
            finish_reason: wireFinish(finals[s.index]),
          })),
          usage,
        };
        return c.json(body);
      }
      const body: TextCompletion = {
        id,
        object: 'text_completion',
        created,
        model: model.config.id,
        lambda: prep.lambda,
        choices: started.map((s) => ({
          index: s.index,
          text: texts[s.index],
          logprobs: prep.logprobs ? compLp[s.index] : null,
          finish_reason: wireFinish(finals[s.index]),
        })),
        usage,
      };
      return c.json(body);
    }

    const includeUsage = req.stream_options?.include_usage === true;
    const encoder = new TextEncoder();
    const offsets = started.map(() => 0);
    const streamedTexts = started.map(() => '');
    const base = { id, created, model: model.config.id, lambda: prep.lambda };
    const chatChunk = (choices: ChatCompletionChunk['choices']): ChatCompletionChunk => ({
      ...base,
      object: 'chat.completion.chunk',
      choices,
      ...(includeUsage ? { usage: null } : {}),
    });
    const textChunk = (choices: TextCompletion['choices']): TextCompletion => ({
      ...base,
      object: 'text_completion',
      choices,
      ...(includeUsage ? { usage: null } : {}),
    });
    let cancelled = false;
    const cancel = () => {
      cancelled = true;
      started.forEach((s) => s.gen.cancel());
    };
    const body = new ReadableStream<Uint8Array>({
      async start(controller) {
        const send = (s: string) => {
          if (!cancelled) controller.enqueue(encoder.encode(s));
        };
        const finals: GenerateEvent[] = [];
        try {
          if (kind === 'chat')
            for (const s of started)
              send(
                sseEvent(
                  chatChunk([{ index: s.index, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }]),
                ),
              );
          for await (const { index, ev } of merged(started, ticket)) {
            if (cancelled) break;
            if (ev.finish === 'error' || ev.finish === 'cancelled') {
              const e = failureOf(ev);
              send(sseErrorEvent(errorBody(e.message, e.type, null, e.code)));
              cancel();
              break;
            }
            const hasTokens = ev.text !== '' || (prep.logprobs && ev.tokens.length > 0);
            if (hasTokens) {
              if (kind === 'chat') {
                send(
                  sseEvent(
                    chatChunk([
                      {
                        index,
                        delta: { content: ev.text },
                        logprobs: prep.logprobs ? { content: chatLogprobs(tok, ev.tokens) } : null,
                        finish_reason: null,
                      },
                    ]),
                  ),
                );
              } else {
                const lp = prep.logprobs ? completionLogprobs(tok, ev.tokens, offsets[index], prep.topLogprobs > 0) : null;
                send(sseEvent(textChunk([{ index, text: ev.text, logprobs: lp, finish_reason: null }])));
              }
              offsets[index] += ev.text.length;
              if (deps.config.log_prompts) streamedTexts[index] += ev.text;
            }
            if (ev.finish) {
              finals[index] = ev;
              if (kind === 'chat')
                send(sseEvent(chatChunk([{ index, delta: {}, logprobs: null, finish_reason: wireFinish(ev) }])));
              else send(sseEvent(textChunk([{ index, text: '', logprobs: null, finish_reason: wireFinish(ev) }])));
            }
          }
          if (!cancelled) {
            const usage = record(finals, streamedTexts);
            if (includeUsage) send(sseEvent(kind === 'chat' ? { ...chatChunk([]), usage } : { ...textChunk([]), usage }));
            send(SSE_DONE);
          }
        } catch (err) {
          const e = rejectionError(err);
          send(sseErrorEvent(errorBody(e.message, e.type, null, e.code)));
        } finally {
          if (cancelled) log.info({ model: model.config.id }, 'client went away; generation cancelled');
          try {
            controller.close();
          } catch {
            // already closed by a cancelled reader
          }
        }
      },
      cancel,
    });
    c.req.raw.signal.addEventListener('abort', cancel, { once: true });
    return new Response(body, {
      headers: {
        'content-type': SSE_CONTENT_TYPE,
        'cache-control': 'no-cache',
        [HEADERS.lambda]: String(prep.lambda),
        [HEADERS.requestId]: c.get('requestId'),
      },
    });
  };
}
