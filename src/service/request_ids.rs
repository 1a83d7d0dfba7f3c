//! AIP-155 request ids: a mutation called again with the same `request_id` by the same caller
//! changes nothing twice and is answered as the first time.
//!
//! The claim of (caller, method, request id) is written by the one write path in the same
//! transaction as the change ([`super::write`]), so a change that commits always leaves its
//! claim, and of two concurrent duplicates only one commits: the other fails on the claim's
//! unique key (on PostgreSQL after waiting for the first to commit) and rolls back. After the
//! commit the transport saves the encoded answer on the claim; a retry is sent those bytes.
//! A call that failed left no claim (its transaction rolled back, or it committed only what a
//! refusal keeps, without the claim), so its retry runs again, as AIP-155 allows.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::{Caller, ServiceError, ServiceResult, Services};
use crate::clock::Millis;
use crate::domain::Reason;
use crate::store::RequestKey;

/// How long a retry waits for the first call's answer when its change is committed but the
/// answer not saved yet (the first call is finishing).
const ANSWER_WAIT: Duration = Duration::from_secs(2);
const ANSWER_POLL: Duration = Duration::from_millis(20);

/// One call's request id: its key, the fingerprint of its request, and whether this call's
/// transaction committed the claim.
#[derive(Debug)]
pub struct RequestTicket {
    pub(super) key: RequestKey,
    pub(super) fingerprint: String,
    claimed: AtomicBool,
}

impl RequestTicket {
    /// True once this call's change committed with the claim: its answer is the first.
    pub fn claimed(&self) -> bool {
        self.claimed.load(Ordering::Acquire)
    }

    pub(super) fn set_claimed(&self) {
        self.claimed.store(true, Ordering::Release);
    }
}

impl Caller {
    /// This call carries an AIP-155 request id (validated, lowercase) for `method`, and
    /// `fingerprint` identifies its request without the id.
    pub fn with_request_id(
        mut self,
        method: &str,
        request_id: String,
        fingerprint: String,
    ) -> Self {
        self.ticket = Some(Arc::new(RequestTicket {
            key: RequestKey {
                web_id: self.web_id.clone(),
                method: method.to_owned(),
                request_id,
            },
            fingerprint,
            claimed: AtomicBool::new(false),
        }));
        self
    }

    pub fn ticket(&self) -> Option<&Arc<RequestTicket>> {
        self.ticket.as_ref()
    }
}

impl Services {
    /// The first answer to the caller's request id: None when no live claim holds it (the
    /// call runs). A claim of another request is refused; a claim whose answer does not come
    /// within a short wait is answered with REQUEST_ALREADY_APPLIED, never applied again.
    pub async fn first_answer(&self, caller: &Caller) -> ServiceResult<Option<Vec<u8>>> {
        let Some(t) = caller.ticket() else {
            return Ok(None);
        };
        let deadline = Instant::now() + ANSWER_WAIT;
        loop {
            let since = self.request_ids_since();
            let Some(claim) = self.store().request_claim(&t.key, since).await? else {
                return Ok(None);
            };
            if claim.fingerprint != t.fingerprint {
                return Err(ServiceError::precondition(
                    Reason::RequestIdReused,
                    format!(
                        "request_id {} was already used for a different {} request; use a new UUID for every distinct request",
                        t.key.request_id, t.key.method
                    ),
                ));
            }
            if let Some(answer) = claim.answer {
                return Ok(Some(answer));
            }
            if Instant::now() >= deadline {
                return Err(ServiceError::Aborted {
                    reason: Reason::RequestAlreadyApplied,
                    message: format!(
                        "the {} call with request_id {} was applied, but its answer is not available; do not apply it again: read the current state",
                        t.key.method, t.key.request_id
                    ),
                });
            }
            tokio::time::sleep(ANSWER_POLL).await;
        }
    }

    /// Saves the answer of a call whose change committed with its claim, for its retries.
    pub async fn save_answer(&self, caller: &Caller, answer: &[u8]) -> ServiceResult<()> {
        match caller.ticket() {
            Some(t) if t.claimed() => Ok(self.store().save_request_answer(&t.key, answer).await?),
            _ => Ok(()),
        }
    }

    /// Forgets claims past `--request-id-ttl`; returns how many.
    pub async fn trim_request_ids(&self) -> ServiceResult<u64> {
        Ok(self
            .store()
            .trim_request_claims(self.request_ids_since())
            .await?)
    }

    /// Claims made before this no longer hold their request id.
    pub(super) fn request_ids_since(&self) -> Millis {
        self.now() - self.inner.config.request_id_ttl_ms
    }
}
