-- Recycling gives finished leads a fresh set of attempts (``callctl campaign recycle``) while
-- ``attempts`` keeps counting every call the lead ever had, so attempt numbers never repeat:
-- the campaign's max_attempts counts the attempts made since the lead's last recycle.
ALTER TABLE leads ADD COLUMN recycled_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE leads ADD COLUMN recycled_at TEXT;
