-- The version (agents.updated_at) of each agent's position that a node's members last matched:
-- a controller that restarts tells from it whether an agent's position changed while it was
-- down (the store wins: its node's members follow) or a member it does not know was added at
-- its Asterisk behind its back (adopted, as on one node).
CREATE TABLE agent_follows (
    node      TEXT NOT NULL,
    agent_id  TEXT NOT NULL,
    version   TEXT NOT NULL,
    PRIMARY KEY (node, agent_id)
);
