-- A campaign's settings may change while it runs (callctl campaign update); each change bumps
-- the revision, which the runner reads on every tick to pick the new settings up.
ALTER TABLE campaigns ADD COLUMN settings_revision INTEGER NOT NULL DEFAULT 1;
