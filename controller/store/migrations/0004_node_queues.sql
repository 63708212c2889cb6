-- Each node's view of each queue (controller.nodes.queue_views), written by its controller
-- once a second while its Asterisk is in sight: callers waiting there, the oldest one's
-- arrival, each member's state (JSON: interface -> state). Any controller merges the fresh rows
-- of all nodes into the site's queue status; a row not refreshed for a few seconds is a node
-- out of sight and is not read.
CREATE TABLE node_queues (
    node              TEXT NOT NULL,
    queue             TEXT NOT NULL,
    callers           INTEGER NOT NULL,
    oldest_joined_at  DOUBLE PRECISION,
    agents            TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    PRIMARY KEY (node, queue)
);
