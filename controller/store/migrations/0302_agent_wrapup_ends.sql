-- When an agent ended its wrap-up early (*47): the stats cut a call's wrap-up there, not at the
-- queue's wrapup.
CREATE TABLE agent_wrapup_ends (
    agent_id  TEXT NOT NULL,
    ended_at  TEXT NOT NULL,
    PRIMARY KEY (agent_id, ended_at)
);
