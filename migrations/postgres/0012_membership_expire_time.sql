-- Time-boxed grants (issue 9): an approval or a role change may give a membership an end.
-- From `expires_at` (milliseconds since the epoch, exclusive like a contract's end) checks
-- answer ACCESS_REVOKED; the sweeper then records the lapse once, setting `removed_at` to
-- that instant. NULL: no end.
ALTER TABLE memberships ADD COLUMN expires_at BIGINT;
-- What the sweeper looks for: active memberships with an end.
CREATE INDEX memberships_expiring ON memberships (expires_at)
    WHERE expires_at IS NOT NULL AND removed_at IS NULL;
