-- Every controller reads, each second, the calls that ended on the other nodes within a
-- wrap-up: their agents' wrap-up runs there, and it holds those agents on its own node.
CREATE INDEX inbound_calls_ended ON inbound_calls (ended_at);
