-- Dialer: campaigns, their leads, every call attempt, and the do-not-call lists.
-- Keys are natural (campaign name, E.164 phone, attempt uuid) so no auto-increment syntax is
-- needed and the file runs unchanged on PostgreSQL.
CREATE TABLE campaigns (
    name           TEXT PRIMARY KEY,
    state          TEXT NOT NULL DEFAULT 'created',
    settings_json  TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);

-- state: ready (may be claimed when due), dialing (claimed by a worker), done (no more calls).
CREATE TABLE leads (
    campaign           TEXT NOT NULL REFERENCES campaigns(name),
    phone              TEXT NOT NULL,
    name               TEXT NOT NULL DEFAULT '',
    timezone           TEXT,
    custom_json        TEXT NOT NULL DEFAULT '{}',
    state              TEXT NOT NULL DEFAULT 'ready',
    attempts           INTEGER NOT NULL DEFAULT 0,
    last_result        TEXT,
    last_result_at     TEXT,
    last_abandoned_at  TEXT,
    next_attempt_at    TEXT NOT NULL DEFAULT '',
    claim_token        TEXT,
    imported_at        TEXT NOT NULL,
    PRIMARY KEY (campaign, phone)
);

CREATE INDEX leads_due ON leads (campaign, state, next_attempt_at);

-- state: dialing (written before the originate), done (result recorded).
CREATE TABLE attempts (
    attempt_id   TEXT PRIMARY KEY,
    campaign     TEXT NOT NULL,
    phone        TEXT NOT NULL,
    attempt_no   INTEGER NOT NULL,
    worker       TEXT NOT NULL,
    state        TEXT NOT NULL DEFAULT 'dialing',
    started_at   TEXT NOT NULL,
    ended_at     TEXT,
    result       TEXT,
    cause        INTEGER,
    channel      TEXT,
    FOREIGN KEY (campaign, phone) REFERENCES leads(campaign, phone)
);

CREATE INDEX attempts_lead ON attempts (campaign, phone);
CREATE INDEX attempts_state ON attempts (state);
CREATE INDEX attempts_result_time ON attempts (campaign, ended_at);

-- scope: '*' for the global list, else the campaign name.
CREATE TABLE dnc (
    scope     TEXT NOT NULL,
    phone     TEXT NOT NULL,
    added_at  TEXT NOT NULL,
    source    TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (scope, phone)
);

CREATE INDEX dnc_phone ON dnc (phone);
