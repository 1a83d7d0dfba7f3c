//! Email verification codes: random from the OS, kept only as salted hashes, single-use,
//! expiring, and dead after too many wrong tries. The rules here are pure; the store keeps
//! the attempt counter so it survives restarts.

use rand::RngCore;
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::ids::{Email, WebId};
use crate::clock::Millis;

/// No 0/O or 1/I: codes are read from an email and typed by hand.
const ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
pub const CODE_LEN: usize = 8;
pub const MAX_WRONG_ATTEMPTS: i64 = 5;

/// How often codes may be sent. The counts are the person's (Web ID), not an address's: a
/// person whose address changes keeps their history, or alternating two addresses would
/// send without limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendPolicy {
    pub code_ttl_ms: Millis,
    /// Least time between two sends to the same person.
    pub min_interval_ms: Millis,
    pub max_sends_per_window: i64,
    pub window_ms: Millis,
}

impl Default for SendPolicy {
    fn default() -> Self {
        Self {
            code_ttl_ms: 24 * 3600 * 1000,
            min_interval_ms: 60 * 1000,
            max_sends_per_window: 5,
            window_ms: 3600 * 1000,
        }
    }
}

/// The one live code of a person; issuing a new one replaces it, so earlier codes stop working.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerificationCode {
    pub web_id: WebId,
    /// The address the code was sent to: proving this code proves this address only.
    pub email: Email,
    pub code_hash: String,
    pub salt: String,
    pub created_at: Millis,
    pub expires_at: Millis,
    pub wrong_attempts: i64,
    pub window_start: Millis,
    pub sends_in_window: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeCheck {
    Valid,
    Wrong { attempts_left: i64 },
    Expired,
    Locked,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hash(salt: &str, code: &str) -> String {
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    h.update([0u8]);
    h.update(code.as_bytes());
    hex(&h.finalize())
}

/// Users paste codes with spaces, dashes or in lower case; none of that should cost a try.
pub fn normalize(input: &str) -> String {
    input
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// Rejected sends: when the caller may try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub Millis);

impl VerificationCode {
    /// Issues a new code for `email`, enforcing the send rate against the person's previous
    /// code row, whichever address that one went to.
    /// Returns the row to store and the plaintext code to email (never stored).
    pub fn issue(
        web_id: WebId,
        email: Email,
        previous: Option<&VerificationCode>,
        policy: &SendPolicy,
        now: Millis,
    ) -> Result<(Self, String), RetryAfter> {
        let (window_start, sends) = match previous {
            Some(p) if now - p.window_start < policy.window_ms => {
                let since_last = now - p.created_at;
                if since_last < policy.min_interval_ms {
                    return Err(RetryAfter(policy.min_interval_ms - since_last));
                }
                if p.sends_in_window >= policy.max_sends_per_window {
                    return Err(RetryAfter(p.window_start + policy.window_ms - now));
                }
                (p.window_start, p.sends_in_window + 1)
            }
            _ => (now, 1),
        };
        let mut rng = OsRng;
        let mut raw = [0u8; CODE_LEN];
        rng.fill_bytes(&mut raw);
        // 32 symbols: the low five bits of each byte pick one with no bias.
        let code: String = raw
            .iter()
            .map(|b| ALPHABET[(b & 31) as usize] as char)
            .collect();
        let mut salt = [0u8; 16];
        rng.fill_bytes(&mut salt);
        let salt = hex(&salt);
        let row = Self {
            web_id,
            email,
            code_hash: hash(&salt, &code),
            salt,
            created_at: now,
            expires_at: now.saturating_add(policy.code_ttl_ms),
            wrong_attempts: 0,
            window_start,
            sends_in_window: sends,
        };
        Ok((row, code))
    }

    /// Checks a typed code. The caller must persist `wrong_attempts` after a Wrong answer.
    pub fn check(&mut self, input: &str, now: Millis) -> CodeCheck {
        if self.wrong_attempts >= MAX_WRONG_ATTEMPTS {
            return CodeCheck::Locked;
        }
        if now >= self.expires_at {
            return CodeCheck::Expired;
        }
        let candidate = hash(&self.salt, &normalize(input));
        if bool::from(candidate.as_bytes().ct_eq(self.code_hash.as_bytes())) {
            CodeCheck::Valid
        } else {
            self.wrong_attempts += 1;
            CodeCheck::Wrong {
                attempts_left: MAX_WRONG_ATTEMPTS - self.wrong_attempts,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issue(
        prev: Option<&VerificationCode>,
        now: Millis,
    ) -> Result<(VerificationCode, String), RetryAfter> {
        VerificationCode::issue(
            WebId::from_trusted("ana".into()),
            Email::from_trusted("ana@example.com".into()),
            prev,
            &SendPolicy::default(),
            now,
        )
    }

    #[test]
    fn code_is_random_hashed_and_checks() {
        let (mut row, code) = issue(None, 0).unwrap();
        let (_, other) = issue(None, 0).unwrap();
        assert_ne!(code, other);
        assert_eq!(code.len(), CODE_LEN);
        assert!(!row.code_hash.contains(&code));
        assert_eq!(row.check(&code.to_lowercase(), 10), CodeCheck::Valid);
    }

    #[test]
    fn five_wrong_tries_kill_the_code() {
        let (mut row, code) = issue(None, 0).unwrap();
        for left in (0..5).rev() {
            assert_eq!(
                row.check("WRONGCOD", 1),
                CodeCheck::Wrong {
                    attempts_left: left
                }
            );
        }
        assert_eq!(row.check(&code, 1), CodeCheck::Locked);
    }

    #[test]
    fn codes_expire() {
        let (mut row, code) = issue(None, 0).unwrap();
        assert_eq!(
            row.check(&code, SendPolicy::default().code_ttl_ms),
            CodeCheck::Expired
        );
    }

    #[test]
    fn resends_are_rate_limited() {
        // A real instant, not 0: differences of times must be differences.
        let t0: Millis = 1_764_633_600_000;
        let (first, _) = issue(None, t0).unwrap();
        assert_eq!(
            issue(Some(&first), t0 + 1_000).unwrap_err(),
            RetryAfter(59_000)
        );
        let mut prev = first;
        for i in 1..5 {
            let (row, _) = issue(Some(&prev), t0 + i * 60_000).unwrap();
            prev = row;
        }
        assert_eq!(prev.sends_in_window, 5);
        assert_eq!(
            issue(Some(&prev), t0 + 5 * 60_000).unwrap_err(),
            RetryAfter(3_600_000 - 5 * 60_000)
        );
        // A new window opens an hour after the first send.
        let (row, _) = issue(Some(&prev), t0 + 3_600_000).unwrap();
        assert_eq!((row.window_start, row.sends_in_window), (t0 + 3_600_000, 1));
    }

    #[test]
    fn a_new_address_does_not_reset_the_send_history() {
        let t0: Millis = 1_764_633_600_000;
        let (first, _) = issue(None, t0).unwrap();
        let (moved, _) = VerificationCode::issue(
            WebId::from_trusted("ana".into()),
            Email::from_trusted("ana@new.example".into()),
            Some(&first),
            &SendPolicy::default(),
            t0 + 60_000,
        )
        .unwrap();
        assert_eq!(moved.email.as_str(), "ana@new.example");
        assert_eq!((moved.window_start, moved.sends_in_window), (t0, 2));
    }

    #[test]
    fn pasted_codes_may_carry_spaces_dashes_and_lower_case() {
        let (mut row, code) = issue(None, 0).unwrap();
        let pasted = format!(" {}-{} ", &code[..4], &code[4..]).to_lowercase();
        assert_eq!(normalize(&pasted), code);
        assert_eq!(row.check(&pasted, 10), CodeCheck::Valid);
    }
}
