/**
 * Admin: the usage report, summed per tenant, key, model or day
 * (`GET /admin/usage?tenant=&generation=&key=&since=&until=&group_by=`). `tenant` alone reports the tenant's current
 * generation (a tenant created again under a deleted one's id does not inherit its rows); `generation` selects one
 * explicitly, e.g. a deleted tenant's, whose rows are kept for billing.
 */
import { Hono } from 'hono';
import type { AppEnv } from '../../app-env.ts';
import { getTenant } from '../../db/tenants.ts';
import { usageReport } from '../../db/usage.ts';
import { usageQuerySchema, validate } from './admin-input.ts';

/** Routes under /admin/usage. */
export const usageRoutes = new Hono<AppEnv>().get('/', async (c) => {
  const q = validate(usageQuerySchema, c.req.query());
  const groupBy = q.group_by ?? 'tenant';
  let generation = q.generation;
  if (generation === undefined && q.tenant !== undefined) generation = (await getTenant(c.env.DB, q.tenant))?.generation;
  const data = await usageReport(c.env.DB, {
    tenantId: q.tenant,
    tenantGeneration: generation,
    keyId: q.key,
    since: q.since,
    until: q.until,
    groupBy,
  });
  return c.json({ object: 'usage_report', group_by: groupBy, ...(generation === undefined ? {} : { generation }), data });
});
