-- realign edge: tenants, API keys, model catalogue and grants, λ policies, presets, user preferences, usage.
-- Times are Unix milliseconds. `model_id = '*'` in policies, presets and preferences means "every model of the
-- tenant"; a row for a specific model overrides it.

CREATE TABLE tenants (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  requests_per_minute INTEGER NOT NULL DEFAULT 600 CHECK (requests_per_minute > 0),
  tokens_per_minute INTEGER NOT NULL DEFAULT 1000000 CHECK (tokens_per_minute > 0),
  -- 0 disables the response cache for the tenant; KV needs at least 60 s otherwise.
  cache_ttl_seconds INTEGER NOT NULL DEFAULT 3600 CHECK (cache_ttl_seconds = 0 OR cache_ttl_seconds >= 60),
  created_at INTEGER NOT NULL
);

-- The secret itself is never stored: `key_hash` is the hex SHA-256 of the full key, `prefix` its first characters
-- (to tell keys apart in listings).
CREATE TABLE api_keys (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  name TEXT NOT NULL DEFAULT '',
  key_hash TEXT NOT NULL UNIQUE,
  prefix TEXT NOT NULL,
  -- NULL: only the tenant's limits apply to this key.
  requests_per_minute INTEGER CHECK (requests_per_minute IS NULL OR requests_per_minute > 0),
  tokens_per_minute INTEGER CHECK (tokens_per_minute IS NULL OR tokens_per_minute > 0),
  created_at INTEGER NOT NULL,
  revoked_at INTEGER
);
CREATE INDEX api_keys_tenant ON api_keys(tenant_id);

-- The model catalogue: ids as the backends serve them, with the default λ (source 5 of the resolution).
CREATE TABLE models (
  id TEXT PRIMARY KEY,
  default_lambda REAL NOT NULL DEFAULT 1,
  description TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL
);

-- Which models a tenant may use (and see in /v1/models).
CREATE TABLE tenant_models (
  tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  model_id TEXT NOT NULL REFERENCES models(id) ON DELETE CASCADE,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, model_id)
);

-- λ policy per tenant and model; NULL columns inherit from the tenant's '*' row, then from built-in defaults
-- (range [0, 1], explicit λ allowed, reject out of range, no default preset).
CREATE TABLE lambda_policies (
  tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  model_id TEXT NOT NULL DEFAULT '*',
  min_lambda REAL,
  max_lambda REAL,
  allow_explicit INTEGER CHECK (allow_explicit IS NULL OR allow_explicit IN (0, 1)),
  out_of_range TEXT CHECK (out_of_range IS NULL OR out_of_range IN ('clamp', 'reject')),
  default_preset TEXT,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, model_id)
);

-- Named presets: a λ and optional sampling defaults (JSON of shared/src/sampling-defaults.ts).
CREATE TABLE presets (
  tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  model_id TEXT NOT NULL DEFAULT '*',
  name TEXT NOT NULL,
  lambda REAL NOT NULL,
  sampling TEXT NOT NULL DEFAULT '{}',
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, model_id, name)
);

-- An end user's preference (OpenAI `user` field or x-realign-user header): a λ or a preset.
CREATE TABLE user_preferences (
  tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  user_id TEXT NOT NULL,
  model_id TEXT NOT NULL DEFAULT '*',
  lambda REAL,
  preset TEXT,
  updated_at INTEGER NOT NULL,
  CHECK (lambda IS NOT NULL OR preset IS NOT NULL),
  PRIMARY KEY (tenant_id, user_id, model_id)
);

-- One row per answered request (cache hits included, with cached = 1).
CREATE TABLE usage (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  request_id TEXT NOT NULL,
  tenant_id TEXT NOT NULL,
  key_id TEXT NOT NULL,
  model_id TEXT NOT NULL,
  endpoint TEXT NOT NULL,
  status INTEGER NOT NULL,
  stream INTEGER NOT NULL DEFAULT 0,
  cached INTEGER NOT NULL DEFAULT 0,
  lambda REAL,
  preset TEXT,
  prompt_tokens INTEGER NOT NULL DEFAULT 0,
  completion_tokens INTEGER NOT NULL DEFAULT 0,
  aligned_prompt_tokens INTEGER NOT NULL DEFAULT 0,
  aligned_completion_tokens INTEGER NOT NULL DEFAULT 0,
  reference_prompt_tokens INTEGER NOT NULL DEFAULT 0,
  reference_completion_tokens INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL
);
CREATE INDEX usage_tenant_time ON usage(tenant_id, created_at);
CREATE INDEX usage_key_time ON usage(key_id, created_at);
