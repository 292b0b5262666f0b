-- The model's context length in the catalogue (optional; issue 13 item 2): with it the edge refuses a `max_tokens`
-- that can never fit before charging anything, and caps what a request is charged by what the context allows.
ALTER TABLE models ADD COLUMN context_length INTEGER CHECK (context_length IS NULL OR context_length >= 2);
