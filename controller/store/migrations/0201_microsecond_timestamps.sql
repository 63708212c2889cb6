-- Timestamps written with milliseconds (2026-03-14T09:30:02.123+00:00) get the store's one
-- shape, microseconds (2026-03-14T09:30:02.123000+00:00), so no column mixes two widths and
-- text order stays time order. Only values of exactly the millisecond shape change.
-- One statement a column, one a line.
UPDATE recordings SET started_at = substr(started_at, 1, 23) || '000' || substr(started_at, 24) WHERE started_at LIKE '____-__-__T__:__:__.___+__:__';
UPDATE recordings SET ended_at = substr(ended_at, 1, 23) || '000' || substr(ended_at, 24) WHERE ended_at LIKE '____-__-__T__:__:__.___+__:__';
UPDATE recordings SET purged_at = substr(purged_at, 1, 23) || '000' || substr(purged_at, 24) WHERE purged_at LIKE '____-__-__T__:__:__.___+__:__';
UPDATE recording_pauses SET started_at = substr(started_at, 1, 23) || '000' || substr(started_at, 24) WHERE started_at LIKE '____-__-__T__:__:__.___+__:__';
UPDATE recording_pauses SET ended_at = substr(ended_at, 1, 23) || '000' || substr(ended_at, 24) WHERE ended_at LIKE '____-__-__T__:__:__.___+__:__';
