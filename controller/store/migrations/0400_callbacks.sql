-- Queue callbacks: one row per booking, committed before the caller hears it is booked.
-- state: booked, queued, dialing, retry (pending) or answered, unreached, expired, cancelled.
-- At most one pending callback per (queue, phone): the partial unique index refuses a second.
-- attempts counts attempts dialed; the current attempt's channel id is cb-<id>-<attempts>.
CREATE TABLE callbacks (
    callback_id  TEXT PRIMARY KEY,
    queue        TEXT NOT NULL,
    phone        TEXT NOT NULL,
    call_id      TEXT NOT NULL DEFAULT '',
    arrived_at   TEXT NOT NULL,
    booked_at    TEXT NOT NULL,
    state        TEXT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    not_before   TEXT,
    agent_id     TEXT NOT NULL DEFAULT '',
    updated_at   TEXT NOT NULL
);

CREATE UNIQUE INDEX callbacks_one_pending ON callbacks (queue, phone)
    WHERE state IN ('booked', 'queued', 'dialing', 'retry');
CREATE INDEX callbacks_state ON callbacks (state);
