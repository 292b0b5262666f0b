/**
 * Hostile values for fuzzing the HTTP APIs: JSON values a schema must refuse (wrong types, NaN-like strings,
 * extreme numbers, huge or odd strings, deep nesting, prototype keys), and text/byte-level corruptions of a JSON
 * body (truncation, stray characters, non-JSON number literals, invalid UTF-8, nesting bombs). Plain fast-check:
 * usable from Node and from inside workerd.
 */
import fc from 'fast-check';

/** Strings a lenient parser might read as numbers, booleans or markup. */
const TRICKY_STRINGS = [
  'NaN',
  'Infinity',
  '-Infinity',
  '1e999',
  '0.5',
  '-1',
  '0x10',
  'true',
  'null',
  '',
  ' ',
  '\u0000',
  '\u202e',
  '%00',
  '<script>',
  '${x}',
  '[DONE]',
  'data: x\n\n',
  '\r\n\r\n',
];

/** Numbers at the edges of JSON and of the fields' ranges. */
const EXTREME_NUMBERS = [
  0,
  -0,
  1,
  -1,
  0.5,
  2,
  2.0000001,
  100,
  101,
  -101,
  1e-320,
  5e-324,
  1e308,
  -1e308,
  2 ** 31,
  2 ** 53,
  2 ** 53 + 2,
  -(2 ** 53),
  1.5,
  0.999999,
  4096,
  1e6,
];

/** A string of visible or odd characters, sometimes long. */
export function oddString(): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 4, arbitrary: fc.string({ maxLength: 20 }) },
    { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 20 }) },
    { weight: 2, arbitrary: fc.constantFrom(...TRICKY_STRINGS) },
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.constantFrom('a', '🙂', 'ж', '\u0000', '\ud800'), fc.integer({ min: 100, max: 5000 }))
        .map(([s, n]) => s.repeat(n)),
    },
  );
}

/** A JSON value that a typed field will mostly refuse. */
export function nastyValue(): fc.Arbitrary<unknown> {
  return fc.oneof(
    { weight: 3, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
    { weight: 3, arbitrary: oddString() },
    { weight: 3, arbitrary: fc.constantFrom(...EXTREME_NUMBERS) },
    { weight: 2, arbitrary: fc.double() },
    { weight: 1, arbitrary: fc.constantFrom(null, true, false, [], {}, [null], [[]], { text: 'x' }, { type: 'text' }) },
    { weight: 1, arbitrary: fc.integer({ min: 1, max: 300 }).map((n) => nest(n, 'x')) },
    { weight: 1, arbitrary: fc.array(fc.integer({ min: -5, max: 1_000_000 }), { maxLength: 50 }) },
    {
      weight: 1,
      arbitrary: fc.constant(
        JSON.parse('{"__proto__": {"polluted": true}, "constructor": {"prototype": {"polluted": true}}}') as unknown,
      ),
    },
  );
}

/** `value` wrapped in `depth` arrays. */
export function nest(depth: number, value: unknown): unknown {
  let out = value;
  for (let i = 0; i < depth; i++) out = [out];
  return out;
}

/** How a body's JSON text is corrupted before sending. */
export type TextCorruption =
  | { kind: 'truncate'; at: number }
  | { kind: 'insert'; at: number; text: string }
  | { kind: 'literal'; literal: string }
  | { kind: 'duplicate-key'; key: string; value: string }
  | { kind: 'prefix'; text: string }
  | { kind: 'suffix'; text: string }
  | { kind: 'bomb'; depth: number; open: '[' | '{"a":' };

/** One text-level corruption (positions are fractions of the length, so they fit any body). */
export function textCorruption(): fc.Arbitrary<TextCorruption> {
  return fc.oneof(
    fc.record({ kind: fc.constant('truncate' as const), at: fc.double({ min: 0, max: 1, noNaN: true }) }),
    fc.record({
      kind: fc.constant('insert' as const),
      at: fc.double({ min: 0, max: 1, noNaN: true }),
      text: fc.constantFrom('"', ',', '}', ']', '\\', '\u0000', ':', 'x', '\n', '{', '\ud800'),
    }),
    fc.record({
      kind: fc.constant('literal' as const),
      literal: fc.constantFrom('NaN', 'Infinity', '-Infinity', '1e999', '-1e999', '01', '.5', '+1', '0x1F', 'undefined', "'x'"),
    }),
    fc.record({
      kind: fc.constant('duplicate-key' as const),
      key: fc.constantFrom('model', 'messages', 'prompt', 'lambda', 'stream', 'max_tokens', 'n'),
      value: fc.constantFrom('1', '"x"', 'null', '[]', 'true', '1e999'),
    }),
    fc.record({ kind: fc.constant('prefix' as const), text: fc.constantFrom('\ufeff', ' \n\t', ")]}'\n", 'data: ') }),
    fc.record({ kind: fc.constant('suffix' as const), text: fc.constantFrom('x', ',', '}', '\u0000', ' {}', '\n\n') }),
    fc.record({
      kind: fc.constant('bomb' as const),
      depth: fc.integer({ min: 1_000, max: 20_000 }),
      open: fc.constantFrom('[' as const, '{"a":' as const),
    }),
  );
}

/** Applies a corruption to JSON text. */
export function corruptText(text: string, c: TextCorruption): string {
  const pos = (f: number) => Math.floor(f * text.length);
  switch (c.kind) {
    case 'truncate':
      return text.slice(0, pos(c.at));
    case 'insert':
      return text.slice(0, pos(c.at)) + c.text + text.slice(pos(c.at));
    case 'literal': {
      // the first number (or, failing that, the first value after a colon) becomes a non-JSON literal
      const m = /-?\d+(\.\d+)?([eE][+-]?\d+)?/.exec(text);
      if (m) return text.slice(0, m.index) + c.literal + text.slice(m.index + m[0].length);
      return text.replace(/:/, `:${c.literal},"_":`);
    }
    case 'duplicate-key':
      return text.endsWith('}') ? `${text.slice(0, -1)}${text.length > 2 ? ',' : ''}"${c.key}":${c.value}}` : text;
    case 'prefix':
      return c.text + text;
    case 'suffix':
      return text + c.text;
    case 'bomb': {
      const close = c.open === '[' ? ']' : '}';
      const bomb = c.open.repeat(c.depth) + '1' + close.repeat(c.depth);
      return text.endsWith('}') ? `${text.slice(0, -1)}${text.length > 2 ? ',' : ''}"nested":${bomb}}` : bomb;
    }
  }
}

/** How the bytes of a body are corrupted (after UTF-8 encoding). */
export type ByteCorruption =
  | { kind: 'invalid-utf8'; at: number; bytes: readonly number[] }
  | { kind: 'utf16' }
  | { kind: 'random'; bytes: Uint8Array<ArrayBuffer> };

/** One byte-level corruption. */
export function byteCorruption(): fc.Arbitrary<ByteCorruption> {
  const invalid = fc.constantFrom(
    [0xff],
    [0xc0, 0x80],
    [0xed, 0xa0, 0x80],
    [0xe2, 0x82],
    [0xf4, 0x90, 0x80, 0x80],
    [0x80],
    [0xfe, 0xff],
  );
  return fc.oneof(
    {
      weight: 3,
      arbitrary: fc.record({
        kind: fc.constant('invalid-utf8' as const),
        at: fc.double({ min: 0, max: 1, noNaN: true }),
        bytes: invalid,
      }),
    },
    { weight: 1, arbitrary: fc.constant({ kind: 'utf16' as const }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('random' as const), bytes: fc.uint8Array({ maxLength: 256 }) }) },
  );
}

/** The body's bytes with the corruption applied. */
export function corruptBytes(text: string, c: ByteCorruption): Uint8Array<ArrayBuffer> {
  if (c.kind === 'random') return c.bytes;
  if (c.kind === 'utf16') {
    const out = new Uint8Array(2 + text.length * 2);
    out.set([0xff, 0xfe]);
    for (let i = 0; i < text.length; i++) {
      out[2 + 2 * i] = text.charCodeAt(i) & 0xff;
      out[3 + 2 * i] = text.charCodeAt(i) >> 8;
    }
    return out;
  }
  const bytes = new TextEncoder().encode(text);
  const at = Math.floor(c.at * bytes.length);
  const out = new Uint8Array(bytes.length + c.bytes.length);
  out.set(bytes.subarray(0, at));
  out.set(c.bytes, at);
  out.set(bytes.subarray(at), at + c.bytes.length);
  return out;
}
