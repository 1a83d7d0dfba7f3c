-- AIP-155 request ids: a mutation called with a request_id writes its claim in the same
-- transaction as its change, so a change that commits always leaves one and a duplicate
-- cannot commit too (the key is unique). The answer is saved after the commit and sent again
-- to a retry. The fingerprint (SHA-256 of the request without its request_id, hex) tells a
-- retry from another request reusing the id. Claims older than --request-id-ttl are ignored
-- and swept.
CREATE TABLE request_id_claims (
    web_id      TEXT NOT NULL,
    method      TEXT NOT NULL,
    request_id  TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    answer      BYTEA,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (web_id, method, request_id)
);
CREATE INDEX request_id_claims_created_at ON request_id_claims (created_at);
