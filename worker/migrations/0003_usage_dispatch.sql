-- Usage of requests that reached a backend survives every ending (issue 13 item 7).
--
-- A request sent to a backend gets its row before it is sent (status 0: in flight), keyed by `dispatch_id`, the id
-- the backends know it by (header x-realign-dispatch-id, their usage ledger). The row is completed when the request
-- ends; if the edge died first, a later edge completes it from the backends' ledgers. `usage_source` says where
-- the token counts came from: 'backend' (its answer), 'ledger' (its ledger after an early end), 'relayed' (what the
-- edge passed on before the backend died), 'reconciled' (a ledger, by a later edge), 'lost' (nobody knew).
ALTER TABLE usage ADD COLUMN dispatch_id TEXT;
ALTER TABLE usage ADD COLUMN usage_source TEXT;
ALTER TABLE usage ADD COLUMN updated_at INTEGER;
CREATE UNIQUE INDEX usage_dispatch ON usage(dispatch_id);
CREATE INDEX usage_in_flight ON usage(created_at) WHERE status = 0;
