-- What the agent said a queue call came to (the disposition feature code and a key), who said
-- it and when. The agent and the answer are written when the call is answered, not only at its
-- end, so a key right after the hang-up finds this call and not the one before.
ALTER TABLE inbound_calls ADD COLUMN disposition TEXT;
ALTER TABLE inbound_calls ADD COLUMN disposed_by TEXT;
ALTER TABLE inbound_calls ADD COLUMN disposed_at TEXT;
