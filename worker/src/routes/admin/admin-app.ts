/** The admin API, mounted at /admin behind the admin token. */
import { Hono } from 'hono';
import type { AppEnv } from '../../app-env.ts';
import { adminAuth } from '../../auth/admin-auth.ts';
import { invalidateReadCache } from '../../db/read-cache.ts';
import { keyRoutes } from './keys.ts';
import { catalogueRoutes, grantRoutes } from './models.ts';
import { policyRoutes, presetRoutes } from './policies.ts';
import { preferenceRoutes } from './preferences.ts';
import { tenantRoutes } from './tenants.ts';
import { usageRoutes } from './usage.ts';

/** All admin routes. Every write (any method but GET/HEAD) empties this isolate's read cache (db/read-cache.ts), before and after it. */
export const adminApp = new Hono<AppEnv>()
  .use('*', adminAuth())
  .use('*', async (c, next) => {
    const write = c.req.method !== 'GET' && c.req.method !== 'HEAD';
    if (write) invalidateReadCache();
    try {
      await next();
    } finally {
      if (write) invalidateReadCache();
    }
  })
  .route('/models', catalogueRoutes)
  .route('/usage', usageRoutes)
  .route('/tenants/:tenant/keys', keyRoutes)
  .route('/tenants/:tenant/models', grantRoutes)
  .route('/tenants/:tenant/policies', policyRoutes)
  .route('/tenants/:tenant/presets', presetRoutes)
  .route('/tenants/:tenant/users', preferenceRoutes)
  .route('/tenants', tenantRoutes);
