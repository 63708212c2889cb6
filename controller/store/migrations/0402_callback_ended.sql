-- When a callback got its outcome (answered: the customer was reached and bridged). The queue's
-- service level and waits count an ended callback from the caller's first arrival (arrived_at)
-- to this moment. Rows ended before this column existed were last written when they ended.
ALTER TABLE callbacks ADD COLUMN ended_at TEXT;
UPDATE callbacks SET ended_at = updated_at
    WHERE state IN ('answered', 'unreached', 'expired', 'cancelled');
CREATE INDEX callbacks_ended ON callbacks (ended_at);
