-- Development seed for `wrangler dev` with a LOCAL D1 only (never run it against a deployed database):
-- a tenant "dev" with a fixed, public API key, a permissive λ policy and three presets.
-- The key is: rk_dev_local_only_not_a_secret (stored as its SHA-256, like every key).
-- Models are added by whoever starts the backend, through the admin API:
--   PUT /admin/models/<id> {"default_lambda": 1}   then   PUT /admin/tenants/dev/models/<id>
INSERT OR IGNORE INTO tenants (id, name, requests_per_minute, tokens_per_minute, cache_ttl_seconds, created_at)
  VALUES ('dev', 'Local development', 6000, 10000000, 300, 0);
INSERT OR IGNORE INTO api_keys (id, tenant_id, name, key_hash, prefix, created_at)
  VALUES ('key_dev', 'dev', 'local development key', '9bbdd5deab694aef98be9b3d0f1c4518baae3b0293dd551d7c5dc7419bb6e9d7', 'rk_dev', 0);
INSERT OR IGNORE INTO lambda_policies (tenant_id, model_id, min_lambda, max_lambda, allow_explicit, out_of_range, default_preset, updated_at)
  VALUES ('dev', '*', -1, 2, 1, 'reject', 'balanced', 0);
INSERT OR IGNORE INTO presets (tenant_id, model_id, name, lambda, sampling, updated_at) VALUES
  ('dev', '*', 'fast', 1, '{}', 0),
  ('dev', '*', 'balanced', 0.5, '{}', 0),
  ('dev', '*', 'deep', -0.5, '{"max_tokens": 200}', 0);
