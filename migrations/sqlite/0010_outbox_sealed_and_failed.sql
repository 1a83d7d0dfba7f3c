-- Email the worker gave up on (refused for good, or still failing at the maximum age or
-- attempts) ends here instead of being retried forever; it is never claimed again.
ALTER TABLE outbox ADD COLUMN failed_at INTEGER;
DROP INDEX outbox_due;
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE sent_at IS NULL AND failed_at IS NULL;

-- From now on messages are stored sealed (mail::seal) and a delivered one keeps no content.
-- Those delivered before kept their text, verification codes included: drop it. (The
-- connection runs with secure_delete, so the old text is overwritten, not left in free pages.)
UPDATE outbox SET subject = '', body = '' WHERE sent_at IS NOT NULL;
