/** Validation of admin request bodies and queries: zod schemas, and a reader that turns the first issue into a 400. */
import type { Context, Handler } from 'hono';
import { z } from 'zod';
import { checkAdapterName, checkMix, MAX_MIX_ADAPTERS } from '../../../../shared/src/adapter-mix.ts';
import { invalidRequest, notFound } from '../../../../shared/src/errors.ts';
import { customField, lambdaField, numberField, presetField, PRESET_NAME, stringField } from '../../../../shared/src/fields.ts';
import { formatIssue, paramName } from '../../../../shared/src/parse-request.ts';
import { samplingDefaultsSchema } from '../../../../shared/src/sampling-defaults.ts';
import type { AppEnv } from '../../app-env.ts';
import { getTenant, type TenantRow } from '../../db/tenants.ts';
import { readJson } from '../../http/read-json.ts';

/** Admin bodies are small; this keeps a mistaken upload from being read whole. */
const ADMIN_BODY_LIMIT = 64 * 1024;

/**
 * The alphabets of ids. None admits `..`, a space or a character with a meaning in a URL path or a key
 * (`%`, `?`, `#`, `\\`), so an id names one thing wherever it is written. Tenants: lower case (they name keys,
 * rows and limiters). Models: as backends name them, with at most one `/` (`org/name`, Hugging Face style; a path
 * parameter then carries it as `%2F`). Users: what applications use as ids (also e-mail addresses).
 */
export const ID_PATTERNS = {
  tenant: /^[a-z0-9][a-z0-9._-]{0,63}$/,
  model: /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}(\/[A-Za-z0-9][A-Za-z0-9._-]{0,127})?$/,
  user: /^[A-Za-z0-9][A-Za-z0-9._@+:-]{0,127}$/,
  key: /^[A-Za-z0-9][A-Za-z0-9_]{0,63}$/,
} as const;

/** Which ids a path parameter or field holds. */
export type IdKind = keyof typeof ID_PATTERNS;

const ID_RULES: Record<IdKind, string> = {
  tenant: '1–64 lower-case letters, digits, ".", "_" or "-", starting with a letter or digit, without ".."',
  model: 'letters, digits, ".", "_" or "-" (at most 128, starting with a letter or digit), optionally "org/name", without ".."',
  user: '1–128 letters, digits, ".", "_", "@", "+", ":" or "-", starting with a letter or digit, without ".."',
  key: 'a key id such as key_0123abcd',
};

/** True when `value` is a valid id of `kind`. */
export function isId(kind: IdKind, value: string): boolean {
  return ID_PATTERNS[kind].test(value) && !value.includes('..');
}

const id = (kind: IdKind) => stringField(1, 257).refine((v) => isId(kind, v), { error: () => `must be ${ID_RULES[kind]}` });

/** Key names: a label for listings (letters, digits, spaces and a little punctuation). */
const KEY_NAME = /^[A-Za-z0-9 ._-]{0,64}$/;
const perMinute = () => numberField({ min: 1, integer: true });
const ttl = () =>
  numberField({ min: 0, integer: true }).refine((v) => v === 0 || v >= 60, {
    error: () => 'must be 0 (off) or at least 60 seconds',
  });
/** What a tenant's requests get when the rate limiter cannot be reached: `closed` (503) or `open` (admitted). */
const failMode = () => z.enum(['open', 'closed']);

/** POST /admin/tenants */
export const createTenantSchema = z.strictObject({
  id: id('tenant').optional(),
  name: stringField(1, 200),
  requests_per_minute: perMinute().optional(),
  tokens_per_minute: perMinute().optional(),
  cache_ttl_seconds: ttl().optional(),
  rate_limit_fail_mode: failMode().optional(),
});

/** PATCH /admin/tenants/:tenant */
export const updateTenantSchema = z.strictObject({
  name: stringField(1, 200).optional(),
  requests_per_minute: perMinute().optional(),
  tokens_per_minute: perMinute().optional(),
  cache_ttl_seconds: ttl().optional(),
  rate_limit_fail_mode: failMode().optional(),
});

/** POST /admin/tenants/:tenant/keys */
export const createKeySchema = z.strictObject({
  name: stringField(0, 64)
    .regex(KEY_NAME, { error: () => 'must be at most 64 letters, digits, spaces, ".", "_" or "-"' })
    .optional(),
  requests_per_minute: perMinute().optional(),
  tokens_per_minute: perMinute().optional(),
  /** Binds the key to one end user: requests naming another user are refused, requests naming none act as this one. */
  user: id('user').optional(),
});

/** Adapter names (shared/src/adapter-mix.ts), at most `max`, without repeats. */
const adapterList = (max: number) =>
  z
    .array(customField(checkAdapterName), { error: () => 'must be an array of adapter names' })
    .max(max, { error: () => `must name at most ${max} adapters` })
    .refine((names) => new Set(names).size === names.length, { error: () => 'must not name an adapter twice' });

/** An adapter's own λ bounds: `min_lambda` / `max_lambda` (either may be left to the general range). */
const adapterBounds = z
  .strictObject({ min_lambda: lambdaField().optional(), max_lambda: lambdaField().optional() })
  .refine((b) => b.min_lambda === undefined || b.max_lambda === undefined || b.min_lambda <= b.max_lambda, {
    error: () => '`min_lambda` must not be greater than `max_lambda`',
    path: ['min_lambda'],
  });

/** `{"adapter": {"min_lambda", "max_lambda"}}`. */
const adapterRanges = z
  .record(customField(checkAdapterName), adapterBounds, { error: () => 'must map adapter names to λ bounds' })
  .refine((r) => Object.keys(r).length <= 64, { error: () => 'may name at most 64 adapters' });

/** PUT /admin/models/:model */
export const modelSchema = z.strictObject({
  default_lambda: lambdaField().optional(),
  description: stringField(0, 1000).optional(),
  /** The model's context in tokens, as its backends serve it (their /v1/models says `max_context`). */
  context_length: numberField({ min: 2, max: 1 << 24, integer: true })
    .nullable()
    .optional(),
  /** The model's named adapters as its backends serve them (the first is its default); null: not told. */
  adapters: adapterList(64).nullable().optional(),
});

/** PUT /admin/tenants/:tenant/policies/:model */
export const policySchema = z
  .strictObject({
    min_lambda: lambdaField().nullable().optional(),
    max_lambda: lambdaField().nullable().optional(),
    allow_explicit: z
      .boolean({ error: () => 'must be true or false' })
      .nullable()
      .optional(),
    out_of_range: z
      .enum(['clamp', 'reject'], { error: () => 'must be "clamp" or "reject"' })
      .nullable()
      .optional(),
    default_preset: presetField().nullable().optional(),
    /** The adapters the tenant may use (null: inherit; no row says: all). */
    allowed_adapters: adapterList(64).nullable().optional(),
    /** Each adapter's own λ bounds, over `min_lambda` / `max_lambda` for that adapter (null: inherit). */
    adapter_ranges: adapterRanges.nullable().optional(),
  })
  .refine((p) => p.min_lambda == null || p.max_lambda == null || p.min_lambda <= p.max_lambda, {
    error: () => '`min_lambda` must not be greater than `max_lambda`',
    path: ['min_lambda'],
  });

/** PUT /admin/tenants/:tenant/presets/:name */
export const presetSchema = z
  .strictObject({
    lambda: lambdaField(),
    sampling: samplingDefaultsSchema.optional(),
    model: z.union([z.literal('*'), id('model')]).optional(),
    /** The named adapter its λ applies to. */
    adapter: customField(checkAdapterName).optional(),
    /** λ per named adapter (at most MAX_MIX_ADAPTERS), in place of its λ for generations. */
    mix: customField(checkMix).optional(),
  })
  .refine((p) => p.adapter === undefined || p.mix === undefined, {
    error: () => `send either \`adapter\` or \`mix\` (of at most ${MAX_MIX_ADAPTERS} adapters), not both`,
    path: ['adapter'],
  });

/** PUT /admin/tenants/:tenant/users/:user/preferences */
export const preferenceSchema = z
  .strictObject({
    lambda: lambdaField().nullable().optional(),
    preset: presetField().nullable().optional(),
    model: z.union([z.literal('*'), id('model')]).optional(),
  })
  .refine((p) => p.lambda != null || p.preset != null, { error: () => 'send `lambda` or `preset` (or both)', path: ['lambda'] });

/** GET /admin/usage */
export const usageQuerySchema = z.strictObject({
  tenant: id('tenant').optional(),
  generation: z
    .string()
    .regex(/^[0-9a-f]{32}$/, { error: () => 'must be a tenant generation (32 hex digits)' })
    .optional(),
  key: id('key').optional(),
  since: z.coerce
    .number({ error: () => 'must be Unix milliseconds' })
    .int()
    .nonnegative()
    .optional(),
  until: z.coerce
    .number({ error: () => 'must be Unix milliseconds' })
    .int()
    .nonnegative()
    .optional(),
  group_by: z.enum(['tenant', 'key', 'model', 'day'], { error: () => 'must be "tenant", "key", "model" or "day"' }).optional(),
});

/** Validates `value` with `schema`, or throws a 400 naming the field. */
export function validate<T extends z.ZodType>(schema: T, value: unknown): z.output<T> {
  const r = schema.safeParse(value, { reportInput: true });
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  if (issue.code === 'unrecognized_keys') {
    const names = issue.keys.map((k) => paramName([...issue.path, k]));
    throw invalidRequest(`unknown field(s) ${names.map((n) => `\`${n}\``).join(', ')}; remove them`, names[0] ?? null);
  }
  const { param, message } = formatIssue(issue);
  throw invalidRequest(message, param === '' ? null : param);
}

/** The request body validated by `schema`. */
export async function body<T extends z.ZodType>(c: Context<AppEnv>, schema: T): Promise<z.output<T>> {
  return validate(schema, await readJson(c.req.raw, ADMIN_BODY_LIMIT));
}

/** The id alphabet before migration 0002 (tenants created then may use it): deleting such a tenant stays possible. */
export const LEGACY_TENANT_ID = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/;

/**
 * A path parameter that must be an id of `kind` (or `*` where allowed); the parameter's name is its kind's.
 * `legacy` also admits a tenant id of the older alphabet (never with `..`), for deleting such a tenant.
 */
export function pathId(c: Context<AppEnv>, name: IdKind, allowStar = false, legacy = false): string {
  const value = c.req.param(name) ?? '';
  if ((allowStar && value === '*') || isId(name, value)) return value;
  if (legacy && name === 'tenant' && LEGACY_TENANT_ID.test(value) && !value.includes('..')) return value;
  throw invalidRequest(`path parameter \`${name}\` must be ${ID_RULES[name]}`, name);
}

/** A model id from the query (`?model=`, `*` by default), checked like a path id. */
export function queryModel(c: Context<AppEnv>): string {
  const value = c.req.query('model') ?? '*';
  if (value === '*' || isId('model', value)) return value;
  throw invalidRequest(`query parameter \`model\` must be "*" or ${ID_RULES.model}`, 'model');
}

/** A preset name from the path (no `..`, starting with a letter or digit). */
export function pathPresetName(c: Context<AppEnv>): string {
  const value = c.req.param('name') ?? '';
  if (PRESET_NAME.test(value) && /^[A-Za-z0-9]/.test(value) && !value.includes('..')) return value;
  throw invalidRequest(
    'path parameter `name` must be 1–64 letters, digits, "_", "-" or ".", starting with a letter or digit, without ".."',
    'name',
  );
}

/** The tenant named in the path, or a 404. */
export async function requireTenant(c: Context<AppEnv>): Promise<TenantRow> {
  const tenantId = pathId(c, 'tenant');
  const tenant = await getTenant(c.env.DB, tenantId);
  if (tenant === null) throw notFound(`tenant \`${tenantId}\` does not exist`, 'tenant_not_found', 'tenant');
  return tenant;
}

/** A `GET` handler listing `load`'s rows for the tenant in the path as `{"object": "list", "data"}` (404 without it). */
export function tenantList(load: (db: D1Database, tenantId: string) => Promise<unknown[]>): Handler<AppEnv> {
  return async (c) => {
    const tenant = await requireTenant(c);
    return c.json({ object: 'list', data: await load(c.env.DB, tenant.id) });
  };
}
