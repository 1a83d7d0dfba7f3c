-- From now on messages are stored sealed (mail::seal) and a delivered one keeps no content.
-- Those delivered before kept their text, verification codes included: drop it. (The
-- connection runs with secure_delete, so the old text is overwritten, not left in free pages.)
UPDATE outbox SET subject = '', body = '' WHERE sent_at IS NOT NULL;
