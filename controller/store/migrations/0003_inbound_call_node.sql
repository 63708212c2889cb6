-- Each inbound call names the node (Asterisk and its controller) it is on, and each node's
-- controller holds a lease it renews while it lives: when a node is lost, its controller, or
-- once that controller's lease has run out a survivor, ends the node's open calls `node_lost`.
-- Rows written before this migration have no node: nobody settles them.
ALTER TABLE inbound_calls ADD COLUMN node TEXT;
CREATE INDEX inbound_calls_node_open ON inbound_calls (node, ended_at);
CREATE TABLE node_leases (
    node         TEXT PRIMARY KEY,
    lease_until  TEXT NOT NULL
);
