-- Tenant generations, key-bound users, edge-made usage ids and model contexts (issue 13 items 5 and 11).
--
-- A tenant id can be deleted and created again. Everything outside D1's cascades (cached answers in KV, the rate
-- limiter's Durable Object, usage rows) is keyed by `generation`, a random id given to each creation, so a new
-- tenant of an old id starts with nothing of its predecessor.
ALTER TABLE tenants ADD COLUMN generation TEXT;
UPDATE tenants SET generation = lower(hex(randomblob(16))) WHERE generation IS NULL;
-- Rows inserted without one (the dev seed, hand-written SQL) get one too; the worker always sets it itself.
CREATE TRIGGER tenants_generation AFTER INSERT ON tenants WHEN NEW.generation IS NULL
BEGIN
  UPDATE tenants SET generation = lower(hex(randomblob(16))) WHERE id = NEW.id;
END;
CREATE UNIQUE INDEX tenants_generation_unique ON tenants(generation);

-- Optional: the one end user a key may act as (OpenAI's `user` field or x-realign-user). NULL: any user.
ALTER TABLE api_keys ADD COLUMN user_id TEXT;

-- Usage rows name the tenant generation they belong to; `request_id` is the edge's own id, and the id a client
-- sent in x-request-id (or x-client-request-id) is kept beside it, untrusted.
ALTER TABLE usage ADD COLUMN tenant_generation TEXT NOT NULL DEFAULT '';
ALTER TABLE usage ADD COLUMN client_request_id TEXT;
UPDATE usage SET tenant_generation = COALESCE((SELECT generation FROM tenants WHERE tenants.id = usage.tenant_id), '');
CREATE INDEX usage_generation_time ON usage(tenant_generation, created_at);
