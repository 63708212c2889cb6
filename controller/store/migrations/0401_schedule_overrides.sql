-- A supervisor's override of a schedule (open or closed now, whatever its hours say), until
-- it is lifted (the row deleted). One row per overridden schedule.
CREATE TABLE schedule_overrides (
    schedule  TEXT PRIMARY KEY,
    state     TEXT NOT NULL,
    set_by    TEXT NOT NULL DEFAULT '',
    set_at    TEXT NOT NULL
);
