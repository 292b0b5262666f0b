/**
 * What the stub backend (stub-server.ts) answers with: the bodies of a completion, its stream events and a logits
 * answer, and their usage, each a pure function of the request body and the tag's request serial, so tests can
 * predict them. The server decides which one a behaviour sends.
 */
import { SSE_DONE, sseEvent } from '../../../../shared/src/sse.ts';

/** The context of the `ctx256` behaviour. */
export const STUB_CONTEXT = 256;

export function stubPromptTokens(body: Record<string, unknown>): number {
  const messages = body.messages as { content?: unknown }[] | undefined;
  const text = messages ? messages.map((m) => String(m.content ?? '')).join(' ') : String(body.prompt ?? '');
  return Math.max(1, Math.ceil(text.length / 4));
}

export function usageFor(lambda: number, prompt = 5, completion = 3, mix?: Record<string, number>) {
  const tokens = { prompt_tokens: prompt, completion_tokens: completion };
  const none = { prompt_tokens: 0, completion_tokens: 0 };
  const base = { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
  if (mix === undefined)
    return {
      ...base,
      realign: { lambda, branches: { aligned: lambda === 0 ? none : tokens, reference: lambda === 1 ? none : tokens } },
    };
  // like the backend's usage ledger: each adapter with λ ≠ 0 runs a branch; the reference runs unless one adapter at 1
  const used = Object.entries(mix).filter(([, l]) => l !== 0);
  const reference = used.length === 1 && used[0]![1] === 1 ? none : tokens;
  const adapters = Object.fromEntries(used.map(([name]) => [name, { ...tokens }]));
  return { ...base, realign: { lambda, branches: { aligned: used.length ? tokens : none, reference }, mix, adapters } };
}

/**
 * The blend a request asks for, as a backend serving a model of several adapters reads it: `mix`, or `adapter`
 * with `lambda` (a mix of one); λ is the mix's sum. Without either, `lambda` (default 1) and no mix.
 */
export function blendOf(body: Record<string, unknown>): { lambda: number; mix?: Record<string, number> } {
  const lambda = typeof body.lambda === 'number' ? body.lambda : 1;
  const mix =
    typeof body.mix === 'object' && body.mix !== null
      ? (body.mix as Record<string, number>)
      : typeof body.adapter === 'string'
        ? { [body.adapter]: lambda }
        : undefined;
  return mix === undefined ? { lambda } : { lambda: Object.values(mix).reduce((a, b) => a + b, 0), mix };
}

/** The words a stub completion consists of; the serial makes two uncached answers differ. */
export function words(body: Record<string, unknown>, serial: number): string[] {
  return [
    'answer',
    ` #${serial}`,
    ` λ=${String(body.lambda)}`,
    ` temp=${String(body.temperature ?? 'unset')}`,
    ` max=${String(body.max_tokens ?? 'unset')}`,
  ];
}

export function completionObject(kind: 'chat' | 'completions', body: Record<string, unknown>, serial: number) {
  const { lambda, mix } = blendOf(body);
  const text = words(body, serial).join('');
  const usage = usageFor(lambda, 5, 3, mix);
  const base = { id: `cmpl-stub-${serial}`, created: 1_800_000_000, model: String(body.model), lambda, usage };
  return kind === 'chat'
    ? {
        ...base,
        object: 'chat.completion',
        choices: [{ index: 0, message: { role: 'assistant', content: text }, logprobs: null, finish_reason: 'stop' }],
      }
    : { ...base, object: 'text_completion', choices: [{ index: 0, text, logprobs: null, finish_reason: 'stop' }] };
}

export function chunkEvents(kind: 'chat' | 'completions', body: Record<string, unknown>, serial: number): string[] {
  const { lambda, mix } = blendOf(body);
  const includeUsage = (body.stream_options as { include_usage?: boolean } | undefined)?.include_usage === true;
  const extra = includeUsage ? { usage: null } : {};
  const base = { id: `cmpl-stub-${serial}`, created: 1_800_000_000, model: String(body.model), lambda, ...extra };
  const object = kind === 'chat' ? 'chat.completion.chunk' : 'text_completion';
  const piece = (text: string, first: boolean) =>
    kind === 'chat'
      ? {
          ...base,
          object,
          choices: [
            {
              index: 0,
              delta: first ? { role: 'assistant', content: text } : { content: text },
              logprobs: null,
              finish_reason: null,
            },
          ],
        }
      : { ...base, object, choices: [{ index: 0, text, logprobs: null, finish_reason: null }] };
  const events = words(body, serial).map((w, i) => sseEvent(piece(w, i === 0)));
  const last =
    kind === 'chat'
      ? { index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }
      : { index: 0, text: '', logprobs: null, finish_reason: 'stop' };
  events.push(sseEvent({ ...base, object, choices: [last] }));
  if (includeUsage) events.push(sseEvent({ ...base, object, choices: [], usage: usageFor(lambda, 5, 3, mix) }));
  events.push(SSE_DONE);
  return events;
}

export function logitsObject(body: Record<string, unknown>, serial: number) {
  const lambdas = body.lambdas as number[];
  return {
    id: `logits-stub-${serial}`,
    object: 'logits',
    created: 1_800_000_000,
    model: String(body.model),
    lambdas,
    input_ids: [1, 2, 3],
    positions: 'last',
    results: lambdas.map((lambda) => ({
      lambda,
      positions: [{ position: 2, top_logprobs: [{ token_id: 7, token: 'x', logprob: -0.1 * (1 + lambda) }] }],
    })),
    usage: {
      prompt_tokens: 3,
      completion_tokens: 0,
      total_tokens: 3,
      realign: {
        lambda: lambdas,
        branches: { aligned: { prompt_tokens: 3, completion_tokens: 0 }, reference: { prompt_tokens: 3, completion_tokens: 0 } },
      },
    },
  };
}
