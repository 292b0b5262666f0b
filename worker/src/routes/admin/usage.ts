/** Admin: the usage report, summed per tenant, key, model or day (`GET /admin/usage?tenant=&key=&since=&until=&group_by=`). */
import { Hono } from 'hono';
import type { AppEnv } from '../../app-env.ts';
import { usageReport } from '../../db/usage.ts';
import { usageQuerySchema, validate } from './admin-input.ts';

/** Routes under /admin/usage. */
export const usageRoutes = new Hono<AppEnv>().get('/', async (c) => {
  const q = validate(usageQuerySchema, c.req.query());
  const groupBy = q.group_by ?? 'tenant';
  const data = await usageReport(c.env.DB, { tenantId: q.tenant, keyId: q.key, since: q.since, until: q.until, groupBy });
  return c.json({ object: 'usage_report', group_by: groupBy, data });
});
