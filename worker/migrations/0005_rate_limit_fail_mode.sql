-- The edge at scale (issue 20). What a tenant's requests get when its rate limiter (a Durable Object) cannot be
-- reached: 'closed' (the default) refuses them with 503 and Retry-After, 'open' admits them unmetered.
ALTER TABLE tenants ADD COLUMN rate_limit_fail_mode TEXT NOT NULL DEFAULT 'closed' CHECK (rate_limit_fail_mode IN ('open', 'closed'));
