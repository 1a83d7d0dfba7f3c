-- Accounts found with no administrator who can decide (no active STC or TC with a verified
-- email), reported once to the operators; the row goes when an administrator appears, so a
-- later orphaning is reported again.
CREATE TABLE orphan_reports (
    icn         TEXT PRIMARY KEY NOT NULL REFERENCES accounts (icn),
    reported_at INTEGER NOT NULL
);
