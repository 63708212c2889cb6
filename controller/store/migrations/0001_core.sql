-- Core tables: agents' persisted state and inbound calls' outcomes.
CREATE TABLE agents (
    agent_id      TEXT PRIMARY KEY,
    interface     TEXT NOT NULL,
    name          TEXT NOT NULL DEFAULT '',
    logged_in     INTEGER NOT NULL DEFAULT 0,
    paused        INTEGER NOT NULL DEFAULT 0,
    pause_reason  TEXT NOT NULL DEFAULT '',
    updated_at    TEXT NOT NULL
);

CREATE TABLE agent_queues (
    agent_id   TEXT NOT NULL REFERENCES agents(agent_id),
    queue      TEXT NOT NULL,
    penalty    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (agent_id, queue)
);

CREATE TABLE inbound_calls (
    call_id       TEXT PRIMARY KEY,
    channel       TEXT NOT NULL,
    did           TEXT NOT NULL,
    caller        TEXT NOT NULL DEFAULT '',
    queue         TEXT,
    arrived_at    TEXT NOT NULL,
    queued_at     TEXT,
    answered_at   TEXT,
    ended_at      TEXT,
    outcome       TEXT,
    agent_id      TEXT,
    rule          TEXT,
    destination   TEXT,
    reason        TEXT
);

CREATE INDEX inbound_calls_arrived ON inbound_calls (arrived_at);
CREATE INDEX inbound_calls_queue_outcome ON inbound_calls (queue, outcome);
