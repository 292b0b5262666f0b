/**
 * `/admin/*` authentication with the ADMIN_TOKEN secret: no credentials → 401, a wrong token → 403 (compared in
 * constant time). Without a configured token the admin API is closed (403), never open.
 */
import type { MiddlewareHandler } from 'hono';
import { authenticationError, permissionDenied } from '../../../shared/src/errors.ts';
import type { AppEnv } from '../app-env.ts';
import { bearerToken } from './bearer.ts';
import { secretsEqual } from './secrets.ts';

/** Middleware guarding the admin API. */
export function adminAuth(): MiddlewareHandler<AppEnv> {
  return async function adminAuthMiddleware(c, next) {
    const token = bearerToken(c.req.header('authorization'));
    if (token === null) throw authenticationError('admin API: send "Authorization: Bearer <ADMIN_TOKEN>"', 'missing_admin_token');
    const expected = c.env.ADMIN_TOKEN;
    if (!expected) throw permissionDenied('admin API is disabled: the ADMIN_TOKEN secret is not set', 'admin_disabled');
    if (!(await secretsEqual(token, expected)))
      throw permissionDenied('admin API: the token is not the admin token', 'invalid_admin_token');
    await next();
  };
}
