-- Which agent took a connected dialer call and when, written at the connect (so a call still
-- going on counts, as an inbound one does): `callctl agent stats` and the agent gauges count
-- outbound calls beside inbound ones. Rows written before this migration name no agent.
ALTER TABLE attempts ADD COLUMN agent_id TEXT;
ALTER TABLE attempts ADD COLUMN connected_at TEXT;
CREATE INDEX attempts_connected ON attempts (connected_at);
