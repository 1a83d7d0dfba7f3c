-- From now on messages are stored sealed (mail::seal) and a delivered one keeps no content.
-- Those delivered before kept their text, verification codes included: drop it. (The old
-- row versions are reclaimed by (auto)vacuum.)
UPDATE outbox SET subject = '', body = '' WHERE sent_at IS NOT NULL;
