-- The change feed. Every write transaction that changes what a check may answer takes the
-- next revision from feed_head (an UPDATE, so the row stays locked until commit) and logs
-- which keys it touched. Because the head row is locked until commit, revisions are handed out
-- in commit order: a reader that sees revision N has every revision below N already committed.
CREATE TABLE feed_head (
    id                BIGINT PRIMARY KEY CHECK (id = 1),
    revision          BIGINT NOT NULL,
    -- Revisions at or below this were trimmed from change_log.
    trimmed_through   BIGINT NOT NULL
);
INSERT INTO feed_head (id, revision, trimmed_through) VALUES (1, 0, 0);

CREATE TABLE change_log (
    revision  BIGINT NOT NULL,
    seq       BIGINT NOT NULL,
    -- ACCOUNT (status or contracts of icn), MEMBER (web_id on icn), PERSON (web_id everywhere)
    kind      TEXT NOT NULL CHECK (kind IN ('ACCOUNT', 'MEMBER', 'PERSON')),
    icn       TEXT,
    web_id    TEXT,
    at        BIGINT NOT NULL,
    PRIMARY KEY (revision, seq)
);
