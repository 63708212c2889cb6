-- Supervision sessions (listen, whisper, barge): who supervised whom, how, from when to when.
-- The id is the supervisor's channel id (its Asterisk uniqueid); ended_at is set when that
-- channel hangs up. A refused attempt is kept too, with its reason and ended_at = started_at.
CREATE TABLE supervision_sessions (
    session_id     TEXT PRIMARY KEY,
    supervisor     TEXT NOT NULL,
    agent_id       TEXT NOT NULL,
    mode           TEXT NOT NULL,
    spied_channel  TEXT NOT NULL DEFAULT '',
    refused        TEXT,
    started_at     TEXT NOT NULL,
    ended_at       TEXT
);

CREATE INDEX supervision_sessions_agent ON supervision_sessions (agent_id, started_at);
