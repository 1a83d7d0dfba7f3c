-- Times are Unix milliseconds (INTEGER) in both backends, so one code path reads both.
CREATE TABLE accounts (
    icn            TEXT PRIMARY KEY NOT NULL,
    company_name   TEXT NOT NULL,
    country_code   TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('ACTIVE', 'SUSPENDED')),
    status_reason  TEXT NOT NULL DEFAULT '',
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);

CREATE TABLE persons (
    web_id             TEXT PRIMARY KEY NOT NULL,
    email              TEXT NOT NULL,
    given_name         TEXT NOT NULL DEFAULT '',
    family_name        TEXT NOT NULL DEFAULT '',
    email_verified_at  INTEGER,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL
);

CREATE TABLE memberships (
    icn         TEXT NOT NULL REFERENCES accounts (icn),
    web_id      TEXT NOT NULL REFERENCES persons (web_id),
    role        TEXT NOT NULL CHECK (role IN ('AUTHORIZED_USER', 'TECHNICAL_CONTACT', 'SITE_TECHNICAL_CONTACT')),
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    removed_at  INTEGER,
    PRIMARY KEY (icn, web_id)
);
CREATE INDEX memberships_by_person ON memberships (web_id);

CREATE TABLE access_requests (
    id               TEXT PRIMARY KEY NOT NULL,
    icn              TEXT NOT NULL REFERENCES accounts (icn),
    web_id           TEXT NOT NULL REFERENCES persons (web_id),
    country_code     TEXT NOT NULL,
    requested_role   TEXT NOT NULL,
    granted_role     TEXT,
    state            TEXT NOT NULL CHECK (state IN ('PENDING', 'APPROVED', 'DENIED', 'WITHDRAWN', 'EXPIRED')),
    decided_by       TEXT,
    decision_reason  TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL
);
-- One pending request per person and account: the database, not a read-then-write, keeps it so.
CREATE UNIQUE INDEX access_requests_one_pending ON access_requests (icn, web_id) WHERE state = 'PENDING';
CREATE INDEX access_requests_by_account ON access_requests (icn, id);
CREATE INDEX access_requests_by_person ON access_requests (web_id, icn, id);
CREATE INDEX access_requests_due ON access_requests (expires_at) WHERE state = 'PENDING';

CREATE TABLE contracts (
    icn            TEXT NOT NULL REFERENCES accounts (icn),
    contract_id    TEXT NOT NULL,
    product_ids    TEXT NOT NULL,
    starts_at      INTEGER NOT NULL,
    ends_at        INTEGER NOT NULL,
    includes_24x7  INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    PRIMARY KEY (icn, contract_id)
);

CREATE TABLE verification_codes (
    web_id           TEXT PRIMARY KEY NOT NULL REFERENCES persons (web_id),
    email            TEXT NOT NULL,
    code_hash        TEXT NOT NULL,
    salt             TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    wrong_attempts   INTEGER NOT NULL,
    window_start     INTEGER NOT NULL,
    sends_in_window  INTEGER NOT NULL
);

CREATE TABLE audit_events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    at           INTEGER NOT NULL,
    actor        TEXT NOT NULL,
    action       TEXT NOT NULL,
    target_type  TEXT NOT NULL,
    target_id    TEXT NOT NULL,
    icn          TEXT,
    before_json  TEXT,
    after_json   TEXT,
    reason       TEXT,
    trace_id     TEXT
);
CREATE INDEX audit_events_by_account ON audit_events (icn, id);

CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    kind             TEXT NOT NULL,
    to_addr          TEXT NOT NULL,
    subject          TEXT NOT NULL,
    body             TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    next_attempt_at  INTEGER NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT,
    sent_at          INTEGER
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE sent_at IS NULL;
