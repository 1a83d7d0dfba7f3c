-- Email-domain policies (issue 9): per account, what happens to a request for access from an
-- address in `domain` (lowercase DNS name, matched exactly): AUTO_APPROVE (approved at once by
-- the service with `role`, never above AUTHORIZED_USER), HOLD (for an administrator, the
-- default for unlisted domains) or REFUSE. Not read by checks, so no change-feed trigger.
CREATE TABLE email_domain_policies (
    icn        TEXT NOT NULL REFERENCES accounts (icn),
    domain     TEXT NOT NULL,
    action     TEXT NOT NULL CHECK (action IN ('AUTO_APPROVE', 'HOLD', 'REFUSE')),
    role       TEXT CHECK (role IS NULL OR role = 'AUTHORIZED_USER'),
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (icn, domain),
    CHECK ((action = 'AUTO_APPROVE') = (role IS NOT NULL))
);
