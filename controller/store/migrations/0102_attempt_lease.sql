-- A claim's lease: the worker that owns an open attempt renews it while it lives; once it has
-- run out, another worker may settle the attempt (its owner is gone).
ALTER TABLE attempts ADD COLUMN lease_until TEXT;
CREATE INDEX attempts_lease ON attempts (state, lease_until);
