-- Timestamps written with milliseconds (2026-03-14T09:30:02.123+00:00) get the store's one
-- shape, microseconds (2026-03-14T09:30:02.123000+00:00), so no column mixes two widths and
-- text order stays time order. Only values of exactly the millisecond shape change.
-- One statement a column, one a line.
UPDATE agents SET updated_at = substr(updated_at, 1, 23) || '000' || substr(updated_at, 24) WHERE updated_at LIKE '____-__-__T__:__:__.___+__:__';
UPDATE inbound_calls SET arrived_at = substr(arrived_at, 1, 23) || '000' || substr(arrived_at, 24) WHERE arrived_at LIKE '____-__-__T__:__:__.___+__:__';
UPDATE inbound_calls SET queued_at = substr(queued_at, 1, 23) || '000' || substr(queued_at, 24) WHERE queued_at LIKE '____-__-__T__:__:__.___+__:__';
UPDATE inbound_calls SET answered_at = substr(answered_at, 1, 23) || '000' || substr(answered_at, 24) WHERE answered_at LIKE '____-__-__T__:__:__.___+__:__';
UPDATE inbound_calls SET ended_at = substr(ended_at, 1, 23) || '000' || substr(ended_at, 24) WHERE ended_at LIKE '____-__-__T__:__:__.___+__:__';
