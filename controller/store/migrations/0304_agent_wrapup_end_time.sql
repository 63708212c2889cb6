-- Every controller reads, each second, the ends of wrap-up stored since its last look: by
-- time, which the primary key (agent first) does not serve.
CREATE INDEX agent_wrapup_ends_time ON agent_wrapup_ends (ended_at);
