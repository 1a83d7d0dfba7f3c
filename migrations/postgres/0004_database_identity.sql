-- Which database this is: consistency tokens carry it, so a token from another database
-- (another deployment, or a restore that took another's place) is refused, not misread.
CREATE TABLE database_identity (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    uid TEXT NOT NULL
);
INSERT INTO database_identity (id, uid)
    VALUES (1, substr(md5(random()::text || clock_timestamp()::text), 1, 16));
