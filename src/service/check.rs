//! CheckEntitlement: the hot path. Authorization is a few comparisons; the facts come from
//! the replica's cache when it is fresh enough for the caller, else from the database.

use std::time::Duration;

use tracing::Instrument as _;

use super::write::actor;
use super::{Caller, ServiceResult, Services};
use crate::clock::Millis;
use crate::domain::decision::CheckInput;
use crate::domain::next_step::{self, NextStep};
use crate::domain::policy::{self, Operation};
use crate::domain::{Action, CheckFacts, Decision, Icn, ProductId, Revision, WebId, decide};

#[derive(Debug, Clone)]
pub struct CheckRequest {
    pub web_id: WebId,
    pub icn: Icn,
    pub action: Action,
    pub product: Option<ProductId>,
    /// 1-4, None when not given.
    pub severity: Option<u8>,
    /// Read the database, not the cache: the answer reflects every change committed before.
    pub fully_consistent: bool,
}

impl CheckRequest {
    pub(super) fn input(&self) -> CheckInput<'_> {
        CheckInput {
            action: self.action,
            product: self.product.as_ref(),
            severity: self.severity,
        }
    }
}

/// A check's answer: the decision, and what the person can do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckAnswer {
    pub decision: Decision,
    /// What the person can do about a refusal (None when allowed), as the caller may see it.
    pub next_step: Option<NextStep>,
    /// The highest severity the person may open a service request at: for an allowed
    /// OPEN_SERVICE_REQUEST, or one refused only for its severity.
    pub highest_severity: Option<u8>,
}

/// How long a check with a consistency token waits for the feed before reading the database.
const TOKEN_WAIT: Duration = Duration::from_millis(20);

/// One check's answer and the facts and instant it was decided on.
pub(super) struct Answer {
    pub decision: Decision,
    /// The revision the answer reflects at least.
    pub revision: Revision,
    pub facts: CheckFacts,
    pub now: Millis,
}

impl Services {
    /// Answers one check, never from a state older than `at_least`. Returns the answer and
    /// the revision it reflects at least. A refusal that names who can help reads them from
    /// the database (at most three reads, see docs/domain.md); a grant reads nothing more.
    pub async fn check_entitlement(
        &self,
        caller: &Caller,
        req: &CheckRequest,
        at_least: Option<Revision>,
    ) -> ServiceResult<(CheckAnswer, Revision)> {
        self.authorize_check(caller, req)?;
        // A span per decision is only worth its cost where a trace backend reads it.
        let span = if crate::telemetry::exporting() {
            tracing::info_span!(
                "check",
                entitlements.decision.reason = tracing::field::Empty,
                entitlements.cache.hit = tracing::field::Empty,
            )
        } else {
            tracing::Span::none()
        };
        let (answer, hit) = self
            .answer(caller, req, at_least)
            .instrument(span.clone())
            .await?;
        let Answer {
            decision,
            revision,
            facts,
            now,
        } = answer;
        let input = req.input();
        let highest_severity = next_step::highest_severity(&decision, &facts, &input, now);
        let next_step = match next_step::next_step(&decision, &facts, &input, now) {
            Some(step) => Some(
                self.next_step_as_seen(&actor(caller), req, &facts, step, now)
                    .instrument(span.clone())
                    .await?,
            ),
            None => None,
        };
        self.inner.counters.decided(decision.reason);
        span.record("entitlements.decision.reason", decision.reason.as_str());
        span.record("entitlements.cache.hit", hit);
        let answer = CheckAnswer {
            decision,
            next_step,
            highest_severity,
        };
        Ok((answer, revision))
    }

    /// The decision CheckEntitlement makes for a caller already authorized to ask: the one
    /// way a decision about an entitlement is reached, for a check as for a list of them.
    /// Also says whether the facts came from the cache.
    pub(super) async fn answer(
        &self,
        caller: &Caller,
        req: &CheckRequest,
        at_least: Option<Revision>,
    ) -> ServiceResult<(Answer, bool)> {
        let (facts, revision, hit) = self
            .facts(&req.icn, &req.web_id, at_least, req.fully_consistent)
            .await?;
        self.inner.counters.looked_up(hit);
        // The time is read after the facts: a contract ends at its instant, cached or not.
        let now = self.now();
        let decided = decide(&facts, &req.input(), now);
        let decision = policy::as_seen_by_self(&actor(caller), &facts, decided, now);
        let answer = Answer {
            decision,
            revision,
            facts,
            now,
        };
        Ok((answer, hit))
    }

    pub(super) fn authorize_check(&self, caller: &Caller, req: &CheckRequest) -> ServiceResult<()> {
        self.authorize(
            caller,
            Operation::Check {
                subject: &req.web_id,
            },
        )
    }

    async fn facts(
        &self,
        icn: &Icn,
        web_id: &WebId,
        at_least: Option<Revision>,
        fully_consistent: bool,
    ) -> ServiceResult<(CheckFacts, Revision, bool)> {
        let feed = &self.inner.feed;
        let cache = &self.inner.cache;
        // A replica that can't read the feed can't know what its cache missed: read through.
        let mut cache_ok = feed.is_fresh() && !fully_consistent;
        if let Some(t) = at_least
            && feed.applied() < t
            && !feed.wait_for(t, TOKEN_WAIT).await
        {
            cache_ok = false;
        }
        let applied = feed.applied();
        if cache_ok && let Some(f) = cache.get(icn, web_id) {
            return Ok((f, applied, true));
        }
        let fill = tracing::info_span!(
            "cache.fill",
            entitlements.cache.stored = tracing::field::Empty
        );
        let epoch = cache.epoch();
        let facts = self
            .store()
            .check_facts(icn, web_id)
            .instrument(fill.clone())
            .await?;
        let stored = cache.put(icn, web_id, &facts, epoch);
        fill.record("entitlements.cache.stored", stored);
        // Read after `applied` was taken, so it reflects at least that, and at least the
        // token (the database had committed it before the token was handed out).
        Ok((facts, applied.max(at_least.unwrap_or(0)), false))
    }
}

#[cfg(test)]
mod tests;
