/**
 * Building blocks of the request schemas: zod fields whose errors say what was received and what is allowed.
 * Messages here omit the field name; {@link formatIssue} in `parse-request.ts` puts "`field` " in front.
 */
import { z } from 'zod';

/** A received value as an error message shows it: `string "0.5"`, `NaN`, `null`, `an array`, `1.5`. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (typeof value === 'string') return `string ${JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value)}`;
  if (typeof value === 'number') return Number.isNaN(value) ? 'NaN' : String(value);
  if (typeof value === 'boolean') return `boolean ${value}`;
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  return typeof value;
}

/** Bounds of a numeric field; a missing bound is open (±∞). */
export interface NumberRule {
  min?: number;
  max?: number;
  /** `min` itself is not allowed: (min, …. */
  minExclusive?: boolean;
  /** `max` itself is not allowed: …, max). */
  maxExclusive?: boolean;
  integer?: boolean;
}

/** The allowed set of a {@link NumberRule} in words: `in (0, 1]`, `≥ 1`, `an integer in [1, 128]`. */
export function ruleText(rule: NumberRule): string {
  const kind = rule.integer ? 'an integer' : 'a number';
  const lo = rule.min !== undefined;
  const hi = rule.max !== undefined;
  if (lo && hi) return `${kind} in ${rule.minExclusive ? '(' : '['}${rule.min}, ${rule.max}${rule.maxExclusive ? ')' : ']'}`;
  if (lo) return `${kind} ${rule.minExclusive ? '>' : '≥'} ${rule.min}`;
  if (hi) return `${kind} ${rule.maxExclusive ? '<' : '≤'} ${rule.max}`;
  return rule.integer ? 'an integer' : 'a finite number';
}

/** True when `value` satisfies `rule` (finite, integer if asked, inside the bounds). */
export function satisfies(value: number, rule: NumberRule): boolean {
  if (!Number.isFinite(value)) return false;
  if (rule.integer && !Number.isSafeInteger(value)) return false;
  if (rule.min !== undefined && (rule.minExclusive ? value <= rule.min : value < rule.min)) return false;
  if (rule.max !== undefined && (rule.maxExclusive ? value >= rule.max : value > rule.max)) return false;
  return true;
}

/**
 * A JSON number field with bounds. Strings such as "0.5" or "Infinity", NaN and ±∞ are rejected:
 * JSON carries numbers as numbers, and a lenient parse here would let a typo choose λ.
 */
export function numberField(rule: NumberRule = {}) {
  const text = ruleText(rule);
  return z
    .number({ error: (iss) => `must be ${text}, got ${describeValue(iss.input)}` })
    .refine((v) => satisfies(v, rule), { error: (iss) => `must be ${text}, got ${describeValue(iss.input)}` });
}

/** A boolean field (`true`/`false` only, not "true" or 1). */
export function booleanField() {
  return z.boolean({ error: (iss) => `must be true or false, got ${describeValue(iss.input)}` });
}

/** A string field with a length range. */
export function stringField(minLength: number, maxLength: number) {
  return z
    .string({ error: (iss) => `must be a string, got ${describeValue(iss.input)}` })
    .refine((s) => s.length >= minLength, {
      error: () => (minLength === 1 ? 'must not be empty' : `must have at least ${minLength} characters`),
    })
    .refine((s) => s.length <= maxLength, {
      error: (iss) => `must have at most ${maxLength} characters, got ${(iss.input as string).length}`,
    });
}

/** An array of items with a length range. */
export function arrayField<T extends z.ZodType>(item: T, minItems: number, maxItems: number, what = 'items') {
  return z
    .array(item, { error: (iss) => `must be an array of ${what}, got ${describeValue(iss.input)}` })
    .refine((a) => a.length >= minItems, {
      error: () => (minItems === 1 ? `must contain at least one of ${what}` : `must contain at least ${minItems} ${what}`),
    })
    .refine((a) => a.length <= maxItems, {
      error: (iss) => `must contain at most ${maxItems} ${what}, got ${(iss.input as unknown[]).length}`,
    });
}

/** λ (or an element of `lambdas`): any finite JSON number; policy bounds are applied later, by the edge and the backend. */
export function lambdaField() {
  return z.number({ error: (iss) => `must be a finite number (λ), got ${describeValue(iss.input)}` }).refine(Number.isFinite, {
    error: (iss) => `must be a finite number (λ), got ${describeValue(iss.input)}`,
  });
}

/** A preset name: letters, digits, `_`, `-`, `.`; at most 64 characters. */
export const PRESET_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

/** The `preset` field. */
export function presetField() {
  return z
    .string({ error: (iss) => `must be a preset name (string), got ${describeValue(iss.input)}` })
    .regex(PRESET_NAME, { error: (iss) => `must be 1–64 letters, digits, "_", "-" or ".", got ${describeValue(iss.input)}` });
}

/** A token id (non-negative integer). */
export function tokenIdField() {
  return numberField({ min: 0, integer: true });
}

/**
 * What a {@link customField} check returns: the normalized value, or a message (without the field name)
 * and optionally where inside the field the fault is (`[0, 'content']` for `messages[0].content`).
 */
export type CheckResult<T> = { ok: true; value: T } | { ok: false; message: string; path?: (string | number)[] };

/**
 * A field checked by a plain function, for shapes where zod's union messages would be vague
 * (e.g. `stop` as a string or a list, `prompt` as text or token ids). Optional fields never see `undefined`.
 */
export function customField<T>(check: (value: unknown) => CheckResult<T>) {
  return z.unknown().transform((value, ctx) => {
    const result = check(value);
    if (result.ok) return result.value;
    ctx.addIssue({ code: 'custom', message: result.message, input: value, path: result.path ?? [] });
    return z.NEVER;
  });
}
