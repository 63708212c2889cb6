-- The controller that owns a pending callback (places its placeholder, dials it: no other does)
-- and until when. The owner renews its lease while it lives; once the lease has run out another
-- controller takes the callback over. Rows from before have no owner and no lease: the first
-- controller to look takes them.
ALTER TABLE callbacks ADD COLUMN owner TEXT NOT NULL DEFAULT '';
ALTER TABLE callbacks ADD COLUMN lease_until TEXT;
CREATE INDEX callbacks_lease ON callbacks (state, lease_until);
