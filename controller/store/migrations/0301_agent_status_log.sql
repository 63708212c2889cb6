-- Every status an agent was in and for how long: logged in (available), paused with a reason,
-- logged out. One row per interval, ended_at NULL while it lasts; what agent stats sum.
CREATE TABLE agent_status_log (
    agent_id    TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    status      TEXT NOT NULL,
    reason      TEXT NOT NULL DEFAULT '',
    ended_at    TEXT,
    PRIMARY KEY (agent_id, started_at)
);

CREATE INDEX agent_status_log_ended ON agent_status_log (ended_at);
CREATE INDEX inbound_calls_agent_answered ON inbound_calls (agent_id, answered_at);
