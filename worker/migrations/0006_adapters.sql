-- Several named InRa adapters over one base model (issue 18, the edge).
--
-- The catalogue lists a model's adapters (JSON array of names, the first is the model's default: what a request
-- naming no adapter runs on); NULL: the edge does not know them (a model of one unnamed adapter, or not told).
ALTER TABLE models ADD COLUMN adapters TEXT;
-- Per tenant and model (or '*'): which adapters the tenant may use (JSON array; NULL inherits, no row: all) and
-- each adapter's own λ bounds (JSON {"name": {"min_lambda": x, "max_lambda": y}}, either bound optional; NULL
-- inherits), which override min_lambda / max_lambda for that adapter.
ALTER TABLE lambda_policies ADD COLUMN allowed_adapters TEXT;
ALTER TABLE lambda_policies ADD COLUMN adapter_ranges TEXT;
-- A preset may name the adapter its λ applies to, or a mix (JSON {"name": λ}) in place of its λ.
ALTER TABLE presets ADD COLUMN adapter TEXT;
ALTER TABLE presets ADD COLUMN mix TEXT;
