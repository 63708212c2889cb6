-- What the agent said a call came to (a key pressed in wrap-up) and what that does to the
-- lead. The disposition and the call's result are two writes that may land in either order,
-- so the lead's part is kept here until both are in (see DialerRepository.record_disposition).
ALTER TABLE attempts ADD COLUMN disposition TEXT;
ALTER TABLE attempts ADD COLUMN disposition_lead TEXT;
ALTER TABLE attempts ADD COLUMN disposition_retry_at TEXT;
ALTER TABLE attempts ADD COLUMN disposed_by TEXT;
ALTER TABLE attempts ADD COLUMN disposed_at TEXT;
