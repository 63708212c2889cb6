-- What pacing learns from, kept so a restarted dialer paces on today's history at once:
-- answered_at: when the answered call was handed over for an agent (after AMD); NULL when
-- it never needed one. talk_seconds: agent talk time of a connected call.
ALTER TABLE attempts ADD COLUMN answered_at TEXT;
ALTER TABLE attempts ADD COLUMN talk_seconds DOUBLE PRECISION;
