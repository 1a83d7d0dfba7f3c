-- Reminders and escalations of pending requests (issue: requests that never rot). One row per
-- request and stage: the primary key makes "each is sent once" the database's to keep, across
-- replicas, with no column of access_requests touched (so no change-feed entry either: a
-- reminder changes no check's answer).
CREATE TABLE request_nudges (
    request_id TEXT NOT NULL REFERENCES access_requests (id),
    stage      TEXT NOT NULL CHECK (stage IN ('REMIND', 'ESCALATE')),
    sent_at    BIGINT NOT NULL,
    PRIMARY KEY (request_id, stage)
);
-- The sweep looks for pending requests by age.
CREATE INDEX access_requests_pending_by_age ON access_requests (created_at) WHERE state = 'PENDING';
