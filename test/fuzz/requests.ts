/**
 * Fuzz cases for realign's HTTP APIs: valid requests of each kind (small, so that the ones that stay valid are
 * cheap to serve), mutated at the field level (removed, retyped, nasty values, nested faults, unknown fields), at
 * the text level (broken JSON, non-JSON literals, duplicate keys, nesting bombs) and at the byte level (invalid
 * UTF-8, UTF-16), with random headers, query strings, methods and paths. Plain fast-check (Node and workerd).
 */
import fc from 'fast-check';
import { byteCorruption, corruptBytes, corruptText, nastyValue, oddString, textCorruption } from './values.ts';

/** A generation or logits request kind. */
export type Kind = 'chat' | 'completions' | 'logits';

/** How a case authenticates; the runner turns this into headers for its side (edge key, admin token, HMAC …). */
export type AuthMode = 'valid' | 'none' | 'wrong' | 'malformed' | 'alt';

/** One HTTP request to send. */
export interface FuzzCase {
  method: string;
  /** path with query string */
  path: string;
  headers: Record<string, string>;
  body: string | Uint8Array<ArrayBuffer> | null;
  auth: AuthMode;
  /** what was done to it, for reports */
  note: string;
}

/** A route of the API under test with a generator of valid bodies for it (null for GET routes). */
export interface Route {
  method: string;
  path: string;
  body: fc.Arbitrary<Record<string, unknown>> | null;
}

/** Field names of the generation and logits requests (and some that are not). */
export const FIELD_NAMES = [
  'model',
  'messages',
  'prompt',
  'max_tokens',
  'max_completion_tokens',
  'temperature',
  'top_p',
  'n',
  'stop',
  'stream',
  'stream_options',
  'seed',
  'logit_bias',
  'presence_penalty',
  'frequency_penalty',
  'user',
  'lambda',
  'control',
  'preset',
  'top_k',
  'min_p',
  'repetition_penalty',
  'stop_token_ids',
  'skip_special_tokens',
  'logprobs',
  'top_logprobs',
  'lambdas',
  'input_ids',
  'positions',
  'include_branches',
  'add_generation_prompt',
  'tools',
  'functions',
  'response_format',
  'echo',
  'best_of',
  'suffix',
  'unknown_field',
  '__proto__',
  '',
];

const opt = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined, freq: 2 });

/** Drops undefined entries (fast-check records give them for absent options). */
function defined(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

/** Options of the valid-request generators. */
export interface ValidOptions {
  models: string[];
  /** largest max_tokens a valid request asks for (keep tiny: valid requests are served for real) */
  maxTokens: number;
  /** λ values a valid request may carry */
  lambda: fc.Arbitrary<number>;
  presets?: string[];
}

const word = fc.constantFrom('hello', 'hi there', 'Grüße 世界 🙂', 'a', 'why?', '   ', '\n', 'x'.repeat(40));

function sharedFields(o: ValidOptions) {
  return {
    model: fc.constantFrom(...o.models),
    max_tokens: opt(fc.integer({ min: 1, max: o.maxTokens })),
    temperature: opt(fc.oneof(fc.constant(0), fc.double({ min: 0, max: 2, noNaN: true }))),
    top_p: opt(fc.double({ min: 0.01, max: 1, noNaN: true })),
    n: opt(fc.integer({ min: 1, max: 2 })),
    stop: opt(
      fc.oneof(fc.constantFrom('.', '\n', 'stop'), fc.array(fc.constantFrom('a', 'b', '世'), { minLength: 1, maxLength: 3 })),
    ),
    stream: opt(fc.boolean()),
    stream_options: opt(fc.record({ include_usage: fc.boolean() })),
    seed: opt(fc.integer({ min: 0, max: 2 ** 31 })),
    logit_bias: opt(
      fc.dictionary(fc.integer({ min: 0, max: 50 }).map(String), fc.integer({ min: -100, max: 100 }), { maxKeys: 3 }),
    ),
    presence_penalty: opt(fc.double({ min: -2, max: 2, noNaN: true })),
    frequency_penalty: opt(fc.double({ min: -2, max: 2, noNaN: true })),
    user: opt(fc.constantFrom('alice', 'user-42')),
    lambda: opt(o.lambda),
    preset: o.presets && o.presets.length > 0 ? opt(fc.constantFrom(...o.presets)) : fc.constant(undefined),
    top_k: opt(fc.integer({ min: -1, max: 20 })),
    min_p: opt(fc.double({ min: 0, max: 1, noNaN: true })),
    repetition_penalty: opt(fc.double({ min: 0.5, max: 2, noNaN: true })),
    stop_token_ids: opt(fc.array(fc.integer({ min: 0, max: 50 }), { maxLength: 3 })),
    skip_special_tokens: opt(fc.boolean()),
  };
}

const message = fc.record({
  role: fc.constantFrom('system', 'developer', 'user', 'assistant'),
  content: fc.oneof(word, fc.array(fc.record({ type: fc.constant('text'), text: word }), { minLength: 1, maxLength: 2 })),
});
const messages = fc
  .tuple(fc.array(message, { maxLength: 2 }), fc.record({ role: fc.constant('user'), content: word }))
  .map(([head, last]) => [...head, last]);
const tokenIds = fc.array(fc.integer({ min: 0, max: 60 }), { minLength: 1, maxLength: 8 });

/** Valid bodies of a generation or logits request. */
export function validBody(kind: Kind, o: ValidOptions): fc.Arbitrary<Record<string, unknown>> {
  if (kind === 'chat') {
    const chat = { ...sharedFields(o), messages, logprobs: opt(fc.boolean()) };
    return fc
      .record(chat)
      .chain((b) =>
        b.logprobs
          ? fc.record({ top_logprobs: opt(fc.integer({ min: 0, max: 3 })) }).map((t) => ({ ...b, ...t }))
          : fc.constant(b),
      )
      .map(defined);
  }
  if (kind === 'completions') {
    return fc
      .record({
        ...sharedFields(o),
        prompt: fc.oneof(word, tokenIds, fc.array(word, { minLength: 1, maxLength: 2 })),
        logprobs: opt(fc.integer({ min: 0, max: 3 })),
      })
      .map(defined);
  }
  const input = fc.oneof(
    fc.record({ prompt: word.filter((w) => w.trim() !== '') }),
    fc.record({ messages }),
    fc.record({ input_ids: tokenIds }),
  );
  const rest = fc.record({
    model: fc.constantFrom(...o.models),
    lambdas: opt(fc.array(o.lambda, { minLength: 1, maxLength: 3 })),
    positions: opt(fc.constantFrom('last', 'all')),
    top_logprobs: opt(fc.integer({ min: 1, max: 5 })),
    include_branches: opt(fc.boolean()),
  });
  return fc.tuple(input, rest).map(([i, r]) => defined({ ...i, ...r }));
}

/** A field-level mutation of a request object. */
type FieldMutation =
  | { kind: 'delete'; pick: number }
  | { kind: 'set'; field: string; value: unknown }
  | { kind: 'nested'; pick: number; path: string; value: unknown }
  | { kind: 'replace'; value: unknown };

const fieldMutation: fc.Arbitrary<FieldMutation> = fc.oneof(
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), pick: fc.nat() }) },
  {
    weight: 6,
    arbitrary: fc.record({ kind: fc.constant('set' as const), field: fc.constantFrom(...FIELD_NAMES), value: nastyValue() }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('nested' as const),
      pick: fc.nat(),
      path: fc.constantFrom('0', 'role', 'content', 'text', 'type', 'include_usage', '7', 'name', '-1', 'length'),
      value: nastyValue(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('replace' as const), value: nastyValue() }) },
);

function mutateFields(body: Record<string, unknown>, m: FieldMutation): unknown {
  const keys = Object.keys(body);
  if (m.kind === 'replace') return m.value;
  if (m.kind === 'delete') {
    if (keys.length === 0) return body;
    const { [keys[m.pick % keys.length]!]: _gone, ...rest } = body;
    return rest;
  }
  if (m.kind === 'set') return { ...body, [m.field]: m.value };
  // nested: change something inside an object or array field (messages[i].content, stream_options.x, …)
  const containers = keys.filter((k) => typeof body[k] === 'object' && body[k] !== null);
  if (containers.length === 0) return { ...body, [keys[m.pick % Math.max(1, keys.length)] ?? 'model']: m.value };
  const key = containers[m.pick % containers.length]!;
  const copy = structuredClone(body[key]) as Record<string, unknown> | unknown[];
  const target =
    Array.isArray(copy) && typeof copy[0] === 'object' && copy[0] !== null && !/^\d+$/.test(m.path)
      ? (copy[0] as Record<string, unknown>)
      : (copy as Record<string, unknown>);
  // an array's `length` cannot take arbitrary values; write its first element instead
  target[Array.isArray(target) && m.path === 'length' ? '0' : m.path] = m.value;
  return { ...body, [key]: copy };
}

/** How a body is encoded after its fields were mutated. */
type Encoding =
  | { kind: 'json' }
  | { kind: 'text'; corruption: Parameters<typeof corruptText>[1] }
  | { kind: 'bytes'; corruption: Parameters<typeof corruptBytes>[1] };

const encoding: fc.Arbitrary<Encoding> = fc.oneof(
  { weight: 6, arbitrary: fc.constant({ kind: 'json' as const }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('text' as const), corruption: textCorruption() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('bytes' as const), corruption: byteCorruption() }) },
);

function encode(value: unknown, e: Encoding): string | Uint8Array<ArrayBuffer> {
  const text = JSON.stringify(value) ?? 'null';
  if (e.kind === 'json') return text;
  if (e.kind === 'text') return corruptText(text, e.corruption);
  return corruptBytes(text, e.corruption);
}

/** Most bodies get one or more field mutations; about one in ten stays valid (valid requests are the costly ones). */
const mutationCount = fc.oneof(
  { weight: 1, arbitrary: fc.constant(0) },
  { weight: 4, arbitrary: fc.constant(1) },
  { weight: 3, arbitrary: fc.constant(2) },
  { weight: 2, arbitrary: fc.constant(3) },
);

/** A body for a route: valid (sometimes), or mutated in fields, then perhaps corrupted in text or bytes. */
export function fuzzedBody(
  valid: fc.Arbitrary<Record<string, unknown>>,
): fc.Arbitrary<{ body: string | Uint8Array<ArrayBuffer>; note: string }> {
  return fc
    .tuple(
      valid,
      mutationCount.chain((n) => fc.array(fieldMutation, { minLength: n, maxLength: n })),
      encoding,
    )
    .map(([body, mutations, enc]) => {
      const mutated = mutations.reduce<unknown>(
        (b, m) => (typeof b === 'object' && b !== null && !Array.isArray(b) ? mutateFields(b as Record<string, unknown>, m) : b),
        body,
      );
      const note = [
        ...mutations.map((m) => (m.kind === 'set' ? `set ${m.field}` : m.kind === 'nested' ? `nested ${m.path}` : m.kind)),
        enc.kind === 'json' ? '' : `${enc.kind}:${enc.corruption.kind}`,
      ]
        .filter(Boolean)
        .join(', ');
      return { body: encode(mutated, enc), note: note || 'valid' };
    });
}

/** Header values a fetch client can send: visible Latin-1, no CR/LF. */
const headerValue = fc.oneof(
  fc.string({ unit: fc.constantFrom(...'abcXYZ019 ;=,-_./:*"\'\t()<>@?{}[]\\'.split('')), maxLength: 40 }),
  fc.constantFrom(
    '',
    ' ',
    'null',
    'undefined',
    '0',
    '-1',
    '99999999999999999999',
    'application/json',
    'text/plain',
    'gzip',
    'chunked',
    'no-cache',
    '*/*',
    'x'.repeat(8000),
  ),
);

/** Extra headers: sometimes odd content types, encodings, request ids, user ids, cache control, signatures. */
export const fuzzHeaders: fc.Arbitrary<Record<string, string>> = fc
  .array(
    fc.tuple(
      fc.constantFrom(
        'content-type',
        'content-encoding',
        'accept',
        'accept-encoding',
        'x-request-id',
        'x-realign-user',
        'cache-control',
        'origin',
        'x-realign-timestamp',
        'x-realign-nonce',
        'x-realign-signature',
        'x-forwarded-for',
        'transfer-encoding',
        'expect',
        'range',
        'if-none-match',
        'x-http-method-override',
      ),
      headerValue,
    ),
    { maxLength: 3 },
  )
  .map((pairs) => Object.fromEntries(pairs.filter(([k]) => !(k === 'transfer-encoding' || k === 'expect'))));

/** `s` with lone surrogates replaced (encodeURIComponent refuses them). */
function wellFormed(s: string): string {
  return s.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd');
}

/** A query string, usually empty. */
export const fuzzQuery: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: fc.constant('') },
  {
    weight: 3,
    arbitrary: fc
      .array(
        fc.tuple(
          fc.constantFrom('model', 'stream', 'lambda', 'tenant', 'key', 'since', 'until', 'group_by', 'api-version', 'x', ''),
          oddString(),
        ),
        { minLength: 1, maxLength: 3 },
      )
      .map((ps) => '?' + ps.map(([k, v]) => `${k}=${encodeURIComponent(wellFormed(v))}`).join('&')),
  },
  { weight: 1, arbitrary: fc.constantFrom('?', '?&&', '?a', '?%', '?%zz', '?a=%ff', '?' + 'a=1&'.repeat(500), '#frag') },
);

const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'];

/** A path that is close to a real one, or not. */
function oddPath(routes: Route[]): fc.Arbitrary<string> {
  return fc.oneof(
    fc.constantFrom(...routes.map((r) => r.path)).map((p) => p + '/'),
    fc.constantFrom(...routes.map((r) => r.path)).map((p) => p.toUpperCase()),
    fc.constantFrom(...routes.map((r) => r.path)).map((p) => p.replace('/v1/', '/v1//')),
    fc.constantFrom(
      '/',
      '/v1',
      '/v2/chat/completions',
      '/v1/../admin',
      '/v1/%2e%2e/admin/tenants',
      '/%00',
      '/v1/chat/completions%00',
      '/admin/../v1/models',
      '/' + 'a'.repeat(3000),
      '/v1/models/x',
      '/metrics/',
      '/favicon.ico',
    ),
  );
}

/** Options of {@link fuzzCase}. */
export interface CaseOptions {
  routes: Route[];
  /** ways of authenticating, with weights (the runner knows what each means) */
  auth?: fc.Arbitrary<AuthMode>;
}

/**
 * One fuzz case: mostly a route's own method with a fuzzed body, sometimes a wrong method or an odd path, with
 * random extra headers and query strings.
 */
export function fuzzCase(o: CaseOptions): fc.Arbitrary<FuzzCase> {
  const auth = o.auth ?? fc.constantFrom<AuthMode>('valid', 'valid', 'valid', 'valid', 'none', 'wrong', 'malformed');
  const onRoute = fc.constantFrom(...o.routes).chain((r) =>
    fc.record({
      route: fc.constant(r),
      body: r.body
        ? fuzzedBody(r.body)
        : fc.option(
            fc.record({
              body: fc.string({ maxLength: 50 }) as fc.Arbitrary<string | Uint8Array<ArrayBuffer>>,
              note: fc.constant('body on GET'),
            }),
            { nil: null, freq: 4 },
          ),
      method: fc.oneof({ weight: 9, arbitrary: fc.constant(r.method) }, { weight: 1, arbitrary: fc.constantFrom(...METHODS) }),
    }),
  );
  const offRoute = fc.record({
    path: oddPath(o.routes),
    method: fc.constantFrom(...METHODS),
    body: fc.option(
      fc.record({
        body: fc.string({ maxLength: 50 }) as fc.Arbitrary<string | Uint8Array<ArrayBuffer>>,
        note: fc.constant('odd path'),
      }),
      { nil: null },
    ),
  });
  return fc
    .tuple(
      fc.oneof(
        { weight: 9, arbitrary: onRoute.map((x) => ({ path: x.route.path, method: x.method, body: x.body })) },
        { weight: 1, arbitrary: offRoute },
      ),
      fuzzHeaders,
      fuzzQuery,
      auth,
    )
    .map(([target, headers, query, authMode]) => {
      // GET and HEAD requests cannot carry a body in fetch
      const body = target.method === 'GET' || target.method === 'HEAD' ? null : (target.body?.body ?? null);
      return {
        method: target.method,
        path: target.path + query,
        headers: { ...(body !== null && !('content-type' in headers) ? { 'content-type': 'application/json' } : {}), ...headers },
        body,
        auth: authMode,
        note: target.body?.note ?? 'no body',
      };
    });
}
