/**
 * A 405 instead of a 404 for a known path asked with the wrong method, for both halves (both are Hono apps): the
 * methods other routes answer on the same path, for the `Allow` header and the OpenAI error body.
 */
import { ApiError } from './errors.ts';

/** A route as Hono lists it in `app.routes` (middleware is registered with method `ALL`). */
export interface RouteEntry {
  method: string;
  path: string;
}

const patterns = new Map<string, RegExp>();

/** Hono's path syntax as a regular expression over a whole path: `:name` one segment, `:name{re}` what `re` matches, `*` the rest. */
function pathPattern(path: string): RegExp {
  let re = patterns.get(path);
  if (re === undefined) {
    const src = path
      .split('/')
      .map((seg) => {
        if (seg === '*') return '.*';
        if (!seg.startsWith(':')) return seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
        const custom = /^:\w+\{(.+)\}$/.exec(seg);
        return custom ? `(?:${custom[1]})` : '[^/]+';
      })
      .join('/');
    patterns.set(path, (re = new RegExp(`^${src}$`)));
  }
  return re;
}

/** The methods of the routes (not middleware) whose path matches `path`, in registration order; empty for none. */
export function allowedMethods(routes: readonly RouteEntry[], path: string): string[] {
  const out = new Set<string>();
  for (const r of routes) if (r.method !== 'ALL' && pathPattern(r.path).test(path)) out.add(r.method);
  return [...out];
}

/** The 405 for `method` on `path`, whose routes answer `allowed` (send `allowed.join(', ')` as `Allow`). */
export function methodNotAllowed(method: string, path: string, allowed: readonly string[]): ApiError {
  return new ApiError(405, `${method} is not allowed on ${path}; use ${allowed.join(' or ')}`, {
    type: 'invalid_request_error',
    code: 'method_not_allowed',
  });
}
