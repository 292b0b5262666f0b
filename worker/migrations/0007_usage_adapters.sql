-- Usage per named adapter (issue 18, the edge). A request on a model of several adapters (`adapter` or `mix`)
-- reports the mix it ran (`usage.realign.mix`) and the tokens each adapter's branch computed
-- (`usage.realign.adapters`); the row keeps them: `mix` as canonical text ("name=λ,…", names sorted, zero λ
-- dropped: shared/src/adapter-mix.ts mixKey) and `adapter_tokens` as JSON {"name": {"prompt_tokens",
-- "completion_tokens"}}. NULL: the request named no adapter (or the backend reported none). Written by the same
-- idempotent statement as the other counts (usage/usage-queue.ts), keyed by dispatch id.
ALTER TABLE usage ADD COLUMN mix TEXT;
ALTER TABLE usage ADD COLUMN adapter_tokens TEXT;
