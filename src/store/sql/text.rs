//! The SQL text both backends run. SQLite and PostgreSQL accept the same `$n` placeholders,
//! `RETURNING`, `ON CONFLICT` and partial indexes, so each statement is written once; the
//! few that differ take the dialect's clause as an argument. Statements that read a row a
//! write transaction decides on take the row lock last (`lock`), so the same text serves the
//! plain read with `""`.

// Accounts.

const ACCOUNT_COLS: &str =
    "icn, company_name, country_code, status, status_reason, created_at, updated_at";

pub(super) fn account_by_icn(lock: &str) -> String {
    format!("SELECT {ACCOUNT_COLS} FROM accounts WHERE icn = $1{lock}")
}

pub(super) fn insert_account() -> String {
    format!("INSERT INTO accounts ({ACCOUNT_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7)")
}

pub(super) const UPDATE_ACCOUNT: &str = "UPDATE accounts \
    SET company_name = $2, status = $3, status_reason = $4, updated_at = $5 \
    WHERE icn = $1";

// Persons.

pub(super) const PERSON_BY_WEB_ID: &str = "SELECT web_id, email, given_name, family_name, \
    email_verified_at, created_at, updated_at \
    FROM persons WHERE web_id = $1";

pub(super) const UPSERT_PERSON: &str = "INSERT INTO persons \
    (web_id, email, given_name, family_name, email_verified_at, created_at, updated_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7) \
    ON CONFLICT (web_id) DO UPDATE SET email = excluded.email, \
    given_name = excluded.given_name, family_name = excluded.family_name, \
    email_verified_at = excluded.email_verified_at, updated_at = excluded.updated_at";

// Memberships.

pub(super) fn membership(lock: &str) -> String {
    format!(
        "SELECT icn, web_id, role, created_at, updated_at, removed_at, expires_at \
         FROM memberships WHERE icn = $1 AND web_id = $2{lock}"
    )
}

pub(super) const UPSERT_MEMBERSHIP: &str = "INSERT INTO memberships \
    (icn, web_id, role, created_at, updated_at, removed_at, expires_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7) \
    ON CONFLICT (icn, web_id) DO UPDATE SET role = excluded.role, \
    created_at = excluded.created_at, updated_at = excluded.updated_at, \
    removed_at = excluded.removed_at, expires_at = excluded.expires_at";

/// Active time-boxed memberships whose end has passed (`$1`), oldest end first: the lapses
/// the sweeper has yet to record.
pub(super) const LAPSED_MEMBERSHIPS: &str = "SELECT icn, web_id FROM memberships \
    WHERE removed_at IS NULL AND expires_at IS NOT NULL AND expires_at <= $1 \
    ORDER BY expires_at, icn, web_id LIMIT $2";

/// The memberships of an account active at `$2`, by Web ID: who a renewal asks about.
pub(super) fn active_memberships() -> String {
    format!(
        "SELECT m.icn, m.web_id, m.role, m.created_at, m.updated_at, m.removed_at, m.expires_at \
         FROM memberships m WHERE m.icn = $1 AND {} ORDER BY m.web_id",
        active_at(2)
    )
}

// Recertification (issue 9).

/// Asks (again) for a member's recertification: a later renewal restarts the question.
pub(super) const ASK_RECERTIFICATION: &str = "INSERT INTO member_recertifications \
    (icn, web_id, asked_at, due_at) VALUES ($1, $2, $3, $4) \
    ON CONFLICT (icn, web_id) DO UPDATE SET asked_at = excluded.asked_at, due_at = excluded.due_at";
pub(super) const RECERTIFICATION: &str = "SELECT asked_at, due_at FROM member_recertifications \
    WHERE icn = $1 AND web_id = $2";
pub(super) const DELETE_RECERTIFICATION: &str =
    "DELETE FROM member_recertifications WHERE icn = $1 AND web_id = $2";
/// Questions past their deadline (`$1`) that still apply: to a membership not removed, not an
/// STC's, asked while it existed. Oldest deadline first.
pub(super) const DUE_RECERTIFICATIONS: &str = "SELECT rc.icn, rc.web_id \
    FROM member_recertifications rc JOIN memberships m ON m.icn = rc.icn AND m.web_id = rc.web_id \
    WHERE rc.due_at <= $1 AND m.removed_at IS NULL AND m.role <> 'SITE_TECHNICAL_CONTACT' \
    AND rc.asked_at >= m.created_at ORDER BY rc.due_at, rc.icn, rc.web_id LIMIT $2";

// Contract-end warnings (issue 9).

/// Active accounts whose last contract not yet ended (at `$1`) ends at or before `$2`, and
/// whose end was not warned of yet: with that end, soonest first. Read from the contracts
/// ending inside the window (`contracts_by_end`), so the per-second sweep does not scan every
/// contract: one with no later contract of its account is the account's last.
pub(super) const DUE_CONTRACT_WARNINGS: &str = "SELECT DISTINCT c.icn, c.ends_at \
    FROM contracts c JOIN accounts a ON a.icn = c.icn \
    WHERE c.ends_at > $1 AND c.ends_at <= $2 AND a.status = 'ACTIVE' \
    AND NOT EXISTS (SELECT 1 FROM contracts l WHERE l.icn = c.icn AND l.ends_at > c.ends_at) \
    AND NOT EXISTS (SELECT 1 FROM contract_end_warnings w \
    WHERE w.icn = c.icn AND w.ends_at = c.ends_at) \
    ORDER BY c.ends_at, c.icn LIMIT $3";
/// Inserts nothing when the end was warned of already: the affected row count says who won.
pub(super) const RECORD_CONTRACT_WARNING: &str = "INSERT INTO contract_end_warnings \
    (icn, ends_at, sent_at) VALUES ($1, $2, $3) ON CONFLICT (icn, ends_at) DO NOTHING";

/// Active at `$n`: not removed, and any end still ahead.
fn active_at(n: u8) -> String {
    format!("m.removed_at IS NULL AND (m.expires_at IS NULL OR m.expires_at > ${n})")
}

pub(super) const COUNT_ACTIVE_STCS: &str = "SELECT COUNT(*) FROM memberships \
    WHERE icn = $1 AND role = 'SITE_TECHNICAL_CONTACT' AND removed_at IS NULL";

/// A membership with its person and account (`MemberViewRow`); callers add the conditions.
/// `recertify_by`: the deadline of a recertification the membership still owes (a question
/// asked while it was active, not of an STC), else NULL.
const MEMBER_VIEW_SELECT: &str = "SELECT m.icn, m.web_id, m.role, m.created_at, \
    m.updated_at, m.removed_at, m.expires_at, p.email, p.given_name, p.family_name, p.email_verified_at, \
    p.created_at AS p_created_at, p.updated_at AS p_updated_at, a.company_name, \
    rc.due_at AS recertify_by \
    FROM memberships m JOIN persons p ON p.web_id = m.web_id JOIN accounts a ON a.icn = m.icn \
    LEFT JOIN member_recertifications rc ON rc.icn = m.icn AND rc.web_id = m.web_id \
    AND rc.asked_at >= m.created_at AND m.removed_at IS NULL \
    AND m.role <> 'SITE_TECHNICAL_CONTACT'";

pub(super) fn administrators() -> String {
    format!(
        "{MEMBER_VIEW_SELECT} WHERE m.icn = $1 AND {} \
         AND m.role IN ('TECHNICAL_CONTACT', 'SITE_TECHNICAL_CONTACT') ORDER BY m.web_id",
        active_at(2)
    )
}

pub(super) fn active_members_page() -> String {
    format!(
        "{MEMBER_VIEW_SELECT} WHERE m.icn = $1 AND {} \
         AND ($2 IS NULL OR m.web_id > $2) ORDER BY m.web_id LIMIT $3",
        active_at(4)
    )
}

pub(super) fn site_technical_contacts() -> String {
    format!(
        "{MEMBER_VIEW_SELECT} WHERE m.icn = $1 AND {} \
         AND m.role = 'SITE_TECHNICAL_CONTACT' ORDER BY m.web_id",
        active_at(2)
    )
}

pub(super) fn memberships_of() -> String {
    format!(
        "{MEMBER_VIEW_SELECT} WHERE m.web_id = $1 AND {} ORDER BY m.icn",
        active_at(2)
    )
}

/// The accounts where `$1` has a membership or a request, by ICN after `$2`, at most `$3`.
pub(super) const ENTITLEMENT_CANDIDATES: &str = "SELECT a.icn, a.company_name FROM accounts a \
    WHERE a.icn IN (SELECT icn FROM memberships WHERE web_id = $1 \
    UNION SELECT icn FROM access_requests WHERE web_id = $1) \
    AND ($2 IS NULL OR a.icn > $2) ORDER BY a.icn LIMIT $3";

// Access requests.

const REQUEST_COLS: &str = "r.id, r.icn, r.web_id, r.country_code, r.requested_role, \
    r.granted_role, r.state, r.decided_by, r.decision_reason, r.created_at, r.updated_at, \
    r.expires_at";

pub(super) fn request_by_id(lock: &str) -> String {
    format!("SELECT {REQUEST_COLS} FROM access_requests r WHERE r.id = $1{lock}")
}

pub(super) const REQUEST_TIMES: &str = "SELECT created_at FROM access_requests \
    WHERE icn = $1 AND web_id = $2 AND created_at > $3";

pub(super) fn pending_request(lock: &str) -> String {
    format!(
        "SELECT {REQUEST_COLS} FROM access_requests r \
         WHERE r.icn = $1 AND r.web_id = $2 AND r.state = 'PENDING'{lock}"
    )
}

pub(super) const INSERT_REQUEST: &str = "INSERT INTO access_requests \
    (id, icn, web_id, country_code, requested_role, granted_role, state, decided_by, \
    decision_reason, created_at, updated_at, expires_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";

pub(super) const UPDATE_REQUEST: &str = "UPDATE access_requests \
    SET granted_role = $2, state = $3, decided_by = $4, decision_reason = $5, updated_at = $6 \
    WHERE id = $1";

/// A request with its requester and account (`RequestViewRow`), either of which may be gone;
/// `conditions` follow the `FROM`.
fn request_view(conditions: &str) -> String {
    format!(
        "SELECT {REQUEST_COLS}, p.email, p.given_name, p.family_name, p.email_verified_at, \
         p.created_at AS p_created_at, p.updated_at AS p_updated_at, a.company_name \
         FROM access_requests r LEFT JOIN persons p ON p.web_id = r.web_id \
         LEFT JOIN accounts a ON a.icn = r.icn {conditions}"
    )
}

pub(super) fn request_view_by_id() -> String {
    request_view("WHERE r.id = $1")
}

pub(super) fn requests_page() -> String {
    request_view(
        "WHERE r.icn = $1 AND ($2 IS NULL OR r.state = $2) AND ($3 IS NULL OR r.id < $3) \
         ORDER BY r.id DESC LIMIT $4",
    )
}

pub(super) fn requests_of() -> String {
    request_view("WHERE r.web_id = $1 ORDER BY r.id DESC LIMIT $2")
}

pub(super) const OVERDUE_REQUESTS: &str = "SELECT id FROM access_requests \
    WHERE state = 'PENDING' AND expires_at <= $1 ORDER BY expires_at LIMIT $2";

pub(super) const DUE_NUDGES: &str = "SELECT r.id FROM access_requests r \
    WHERE r.state = 'PENDING' AND r.created_at <= $2 AND r.expires_at > $3 \
    AND NOT EXISTS (SELECT 1 FROM request_nudges n WHERE n.request_id = r.id AND n.stage = $1) \
    ORDER BY r.created_at LIMIT $4";
/// Inserts nothing when the nudge was recorded already: the affected row count says who won.
pub(super) const RECORD_NUDGE: &str = "INSERT INTO request_nudges (request_id, stage, sent_at) \
    VALUES ($1, $2, $3) ON CONFLICT (request_id, stage) DO NOTHING";
pub(super) const NUDGES_OF: &str =
    "SELECT stage, sent_at FROM request_nudges WHERE request_id = $1 ORDER BY sent_at";

/// Active accounts made at or before $1 with no administrator who can decide at $2 (no active
/// STC or TC with a verified email), not reported yet.
pub(super) const UNREPORTED_ORPHANS: &str = "SELECT a.icn FROM accounts a \
    WHERE a.status = 'ACTIVE' AND a.created_at <= $1 \
    AND NOT EXISTS (SELECT 1 FROM orphan_reports o WHERE o.icn = a.icn) \
    AND NOT EXISTS (SELECT 1 FROM memberships m JOIN persons p ON p.web_id = m.web_id \
        WHERE m.icn = a.icn AND m.removed_at IS NULL AND (m.expires_at IS NULL OR m.expires_at > $2) \
        AND m.role IN ('TECHNICAL_CONTACT', 'SITE_TECHNICAL_CONTACT') AND p.email_verified_at IS NOT NULL) \
    ORDER BY a.icn LIMIT $3";
/// Reported accounts that have an administrator who can decide again, or were suspended.
pub(super) const ADOPTED_ORPHANS: &str = "SELECT o.icn FROM orphan_reports o JOIN accounts a ON a.icn = o.icn \
    WHERE a.status <> 'ACTIVE' OR EXISTS (SELECT 1 FROM memberships m JOIN persons p ON p.web_id = m.web_id \
        WHERE m.icn = o.icn AND m.removed_at IS NULL AND (m.expires_at IS NULL OR m.expires_at > $1) \
        AND m.role IN ('TECHNICAL_CONTACT', 'SITE_TECHNICAL_CONTACT') AND p.email_verified_at IS NOT NULL) \
    ORDER BY o.icn LIMIT $2";
pub(super) const RECORD_ORPHAN: &str = "INSERT INTO orphan_reports (icn, reported_at) VALUES ($1, $2) \
    ON CONFLICT (icn) DO NOTHING";
pub(super) const CLEAR_ORPHAN: &str = "DELETE FROM orphan_reports WHERE icn = $1";
pub(super) const COUNT_ORPHANS: &str = "SELECT COUNT(*) FROM orphan_reports";
// Email-domain policies.

const DOMAIN_RULE_COLS: &str = "icn, domain, action, role, created_by, created_at, updated_at";

pub(super) fn domain_rule() -> String {
    format!("SELECT {DOMAIN_RULE_COLS} FROM email_domain_policies WHERE icn = $1 AND domain = $2")
}
/// A rule set again keeps who made it and when; its action, role and `updated_at` change.
pub(super) fn upsert_domain_rule() -> String {
    format!(
        "INSERT INTO email_domain_policies ({DOMAIN_RULE_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (icn, domain) DO UPDATE SET action = excluded.action, role = excluded.role, \
         updated_at = excluded.updated_at"
    )
}
pub(super) const DELETE_DOMAIN_RULE: &str =
    "DELETE FROM email_domain_policies WHERE icn = $1 AND domain = $2";
pub(super) fn domain_rules_page() -> String {
    format!(
        "SELECT {DOMAIN_RULE_COLS} FROM email_domain_policies \
         WHERE icn = $1 AND ($2 IS NULL OR domain > $2) ORDER BY domain LIMIT $3"
    )
}

// Verification codes.

const VERIFICATION_COLS: &str = "web_id, email, code_hash, salt, created_at, expires_at, \
    wrong_attempts, window_start, sends_in_window";

pub(super) fn verification(lock: &str) -> String {
    format!("SELECT {VERIFICATION_COLS} FROM verification_codes WHERE web_id = $1{lock}")
}

pub(super) fn upsert_verification() -> String {
    format!(
        "INSERT INTO verification_codes ({VERIFICATION_COLS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (web_id) DO UPDATE SET email = excluded.email, \
         code_hash = excluded.code_hash, salt = excluded.salt, \
         created_at = excluded.created_at, expires_at = excluded.expires_at, \
         wrong_attempts = excluded.wrong_attempts, window_start = excluded.window_start, \
         sends_in_window = excluded.sends_in_window"
    )
}

pub(super) const DELETE_VERIFICATION: &str = "DELETE FROM verification_codes WHERE web_id = $1";

// Contracts.

const CONTRACT_COLS: &str =
    "icn, contract_id, product_ids, starts_at, ends_at, includes_24x7, updated_at";

pub(super) fn contracts_of() -> String {
    format!("SELECT {CONTRACT_COLS} FROM contracts WHERE icn = $1 ORDER BY contract_id")
}

pub(super) fn upsert_contract() -> String {
    format!(
        "INSERT INTO contracts ({CONTRACT_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (icn, contract_id) DO UPDATE SET product_ids = excluded.product_ids, \
         starts_at = excluded.starts_at, ends_at = excluded.ends_at, \
         includes_24x7 = excluded.includes_24x7, updated_at = excluded.updated_at"
    )
}

// Decisions.

/// The account's status, the person's verification, their membership and latest request on
/// the account: four independent reads in one round trip.
pub(super) const CHECK_FACTS: &str = "SELECT \
    (SELECT a.status FROM accounts a WHERE a.icn = $1) AS status, \
    (SELECT p.email_verified_at FROM persons p WHERE p.web_id = $2) AS email_verified_at, \
    m.role, m.removed_at, m.expires_at, lr.state AS req_state, lr.updated_at AS req_updated_at, \
    lr.expires_at AS req_expires_at \
    FROM (SELECT 1 AS one) AS base \
    LEFT JOIN memberships m ON m.icn = $1 AND m.web_id = $2 \
    LEFT JOIN (SELECT r.state, r.updated_at, r.expires_at FROM access_requests r \
    WHERE r.web_id = $2 AND r.icn = $1 ORDER BY r.id DESC LIMIT 1) AS lr ON 1 = 1";

// Audit.

pub(super) const INSERT_AUDIT: &str = "INSERT INTO audit_events \
    (at, actor, action, target_type, target_id, icn, before_json, after_json, reason, trace_id) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id";

pub(super) const AUDIT_PAGE: &str = "SELECT id, at, actor, action, target_type, target_id, \
    icn, before_json, after_json, reason, trace_id FROM audit_events \
    WHERE ($1 IS NULL OR icn = $1) AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3";

// Outbox. A row holds its message sealed in `body`, with `to_addr` and `subject` empty (see
// `mail::seal`); rows queued before sealing carry them in clear. Delivered and failed rows
// keep no content.

pub(super) const ENQUEUE_EMAIL: &str = "INSERT INTO outbox \
    (kind, to_addr, subject, body, created_at, next_attempt_at) \
    VALUES ($1, '', '', $2, $3, $3)";

/// Leases due messages; `skip_locked` goes on the subquery that picks them.
pub(super) fn claim_due(skip_locked: &str) -> String {
    format!(
        "UPDATE outbox SET next_attempt_at = $2, attempts = attempts + 1 \
         WHERE id IN (SELECT id FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL \
         AND next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT $3{skip_locked}) \
         RETURNING id, kind, to_addr, subject, body, attempts, created_at"
    )
}

pub(super) const MARK_SENT: &str = "UPDATE outbox \
    SET sent_at = $2, last_error = NULL, subject = '', body = '' WHERE id = $1";

pub(super) const MARK_FAILED: &str = "UPDATE outbox SET next_attempt_at = $2, last_error = $3 \
    WHERE id = $1 AND sent_at IS NULL AND failed_at IS NULL";

/// The recipient goes too: a worker of the previous release, which does not know
/// `failed_at`, may claim the row during a rollout, and must find nobody to send it to.
pub(super) const FAIL_EMAIL: &str = "UPDATE outbox \
    SET failed_at = $2, last_error = $3, to_addr = '', subject = '', body = '' \
    WHERE id = $1 AND sent_at IS NULL AND failed_at IS NULL";

// Change feed.

pub(super) const TAKE_PENDING_KEYS: &str = "DELETE FROM change_pending RETURNING kind, icn, web_id";

pub(super) const NEXT_REVISION: &str =
    "UPDATE feed_head SET revision = revision + 1 WHERE id = 1 RETURNING revision";

pub(super) const INSERT_CHANGE: &str = "INSERT INTO change_log \
    (revision, seq, kind, icn, web_id, at) VALUES ($1, $2, $3, $4, $5, $6)";

pub(super) const CHANGES_SINCE: &str = "SELECT revision, kind, icn, web_id, at FROM change_log \
    WHERE revision > $1 AND revision <= $1 + $2 ORDER BY revision, seq";

pub(super) const DATABASE_ID: &str = "SELECT uid FROM database_identity WHERE id = 1";

pub(super) const FEED_BOUNDS: &str = "SELECT revision, trimmed_through FROM feed_head WHERE id = 1";

pub(super) const LAST_REVISION_BEFORE: &str = "SELECT MAX(revision) FROM change_log WHERE at < $1";

pub(super) const DELETE_CHANGES_THROUGH: &str = "DELETE FROM change_log WHERE revision <= $1";

pub(super) const MARK_TRIMMED_THROUGH: &str =
    "UPDATE feed_head SET trimmed_through = $1 WHERE id = 1 AND trimmed_through < $1";

// Cache snapshot: everything a check reads, loaded by a replica before it serves. Each part
// is capped at what the cache can hold (`$1`).

/// Each account with its contracts, one row per contract (or one with NULLs), in the order
/// `contracts_of` gives, so a loaded entry equals a filled one and nothing is grouped in memory.
pub(super) const SNAPSHOT_ACCOUNTS: &str = "SELECT a.icn, a.status, c.contract_id, \
    c.product_ids, c.starts_at, c.ends_at, c.includes_24x7, c.updated_at \
    FROM (SELECT icn, status FROM accounts ORDER BY icn LIMIT $1) AS a \
    LEFT JOIN contracts c ON c.icn = a.icn \
    ORDER BY a.icn, c.contract_id";

pub(super) const SNAPSHOT_PERSONS: &str = "SELECT web_id, email_verified_at FROM persons LIMIT $1";

/// Every (account, person) pair with a membership or a request: the membership row and the
/// latest request (as `CHECK_FACTS` picks it: highest id), each if present.
pub(super) const SNAPSHOT_MEMBERS: &str = "WITH latest AS (\
    SELECT icn, web_id, state, updated_at, expires_at FROM (\
    SELECT icn, web_id, state, updated_at, expires_at, \
    ROW_NUMBER() OVER (PARTITION BY icn, web_id ORDER BY id DESC) AS rn \
    FROM access_requests) AS numbered WHERE rn = 1) \
    SELECT m.icn, m.web_id, m.role, m.removed_at, m.expires_at, l.state AS req_state, \
    l.updated_at AS req_updated_at, l.expires_at AS req_expires_at \
    FROM memberships m LEFT JOIN latest l ON l.icn = m.icn AND l.web_id = m.web_id \
    UNION ALL \
    SELECT l.icn, l.web_id, NULL, NULL, NULL, l.state, l.updated_at, l.expires_at FROM latest l \
    WHERE NOT EXISTS (SELECT 1 FROM memberships m WHERE m.icn = l.icn AND m.web_id = l.web_id) \
    LIMIT $1";

// Operators' gauges.

pub(super) const OUTBOX_STATS: &str = "SELECT COUNT(*), MIN(next_attempt_at) FROM outbox \
    WHERE sent_at IS NULL AND failed_at IS NULL";

/// Pending requests newer than `$1`, between `$2` and `$1`, and older than `$2`.
pub(super) const PENDING_BY_AGE: &str = "SELECT \
    COALESCE(SUM(CASE WHEN created_at > $1 THEN 1 ELSE 0 END), 0), \
    COALESCE(SUM(CASE WHEN created_at <= $1 AND created_at > $2 THEN 1 ELSE 0 END), 0), \
    COALESCE(SUM(CASE WHEN created_at <= $2 THEN 1 ELSE 0 END), 0) \
    FROM access_requests WHERE state = 'PENDING'";
