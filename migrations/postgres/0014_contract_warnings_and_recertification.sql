-- Access that follows the contract (issue 9).
--
-- Contract-end warnings: one row per account and end instant warned of. The primary key makes
-- "each end is warned of once" the database's to keep across replicas; a contract extended to
-- a later end gets a row (and a warning) of its own. No column a check reads is touched, so
-- there is no change-feed entry either.
CREATE TABLE contract_end_warnings (
    icn       TEXT NOT NULL REFERENCES accounts (icn),
    ends_at   BIGINT NOT NULL,
    sent_at   BIGINT NOT NULL,
    PRIMARY KEY (icn, ends_at)
);
-- What the sweeper looks for: contracts ending within the warning window.
CREATE INDEX contracts_by_end ON contracts (ends_at);

-- Recertification at renewal: a renewed contract asks the account's administrators to confirm
-- each member (other than its STCs) by due_at; confirming deletes the row. The row applies to
-- the membership that was active when it was asked (asked_at >= the membership's created_at):
-- a member removed and approved again later is not held to an old question.
CREATE TABLE member_recertifications (
    icn       TEXT NOT NULL REFERENCES accounts (icn),
    web_id    TEXT NOT NULL REFERENCES persons (web_id),
    asked_at  BIGINT NOT NULL,
    due_at    BIGINT NOT NULL,
    PRIMARY KEY (icn, web_id)
);
-- What the sweeper looks for: questions whose deadline passed.
CREATE INDEX member_recertifications_due ON member_recertifications (due_at);
