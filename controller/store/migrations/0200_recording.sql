-- Call recordings: one row per recorded call (the id is the call id), its pause intervals.
-- status: recording (Asterisk is writing), complete (listed), failed, purged (file deleted).
-- path is relative to the recordings root, so the root can move without rewriting rows.
CREATE TABLE recordings (
    call_id           TEXT PRIMARY KEY,
    direction         TEXT NOT NULL,
    queue             TEXT,
    campaign          TEXT,
    agent_id          TEXT,
    caller            TEXT NOT NULL DEFAULT '',
    callee            TEXT NOT NULL DEFAULT '',
    policy            TEXT NOT NULL,
    stereo            INTEGER NOT NULL DEFAULT 0,
    retention_days    INTEGER,
    consent_played    INTEGER NOT NULL DEFAULT 0,
    status            TEXT NOT NULL,
    path              TEXT NOT NULL,
    started_at        TEXT NOT NULL,
    ended_at          TEXT,
    duration_seconds  DOUBLE PRECISION,
    size_bytes        BIGINT,
    sha256            TEXT,
    error             TEXT,
    purged_at         TEXT
);

CREATE INDEX recordings_status_started ON recordings (status, started_at);
CREATE INDEX recordings_queue ON recordings (queue);
CREATE INDEX recordings_campaign ON recordings (campaign);
CREATE INDEX recordings_agent ON recordings (agent_id);

CREATE TABLE recording_pauses (
    call_id     TEXT NOT NULL REFERENCES recordings(call_id),
    started_at  TEXT NOT NULL,
    ended_at    TEXT,
    PRIMARY KEY (call_id, started_at)
);
