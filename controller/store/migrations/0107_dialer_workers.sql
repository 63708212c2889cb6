-- Each dialer worker's lease on being alive, with the agents its `dialer.agents` names (a JSON
-- list; empty: every agent of a campaign). A worker renews its row while it runs; the agents of
-- a worker whose lease ran out are seated by the live workers until it renews again.
CREATE TABLE dialer_workers (
    worker      TEXT PRIMARY KEY,
    agents      TEXT NOT NULL,
    lease_until TEXT NOT NULL
);
