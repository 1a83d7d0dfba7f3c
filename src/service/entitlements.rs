//! ListEntitlements: the accounts where a person may act. There is no second rule here: each
//! account is answered exactly as CheckEntitlement answers it (the same facts, cache or
//! database, at the same freshness, the same `decide`, the same `as_seen_by_self`, the same
//! highest severity), and an account is listed when that answer allows.
//!
//! Which accounts are asked: every one where the person has a membership row (active or not)
//! or a request (in any state). No check allows anything without one of these in its facts,
//! and neither kind of row is ever deleted, so no account a check would allow is missed, even
//! when the cache answers from a state older than the database's.

use super::check::{Answer, CheckRequest};
use super::{Caller, ServiceResult, Services};
use crate::domain::next_step;
use crate::domain::policy::Operation;
use crate::domain::{Action, Coverage, Icn, Revision, Role, WebId, coverage};

/// One page of a person's entitlements, as asked.
#[derive(Debug, Clone)]
pub struct ListEntitlements {
    pub web_id: WebId,
    pub action: Action,
    /// Read the database, not the cache, as a fully consistent check does.
    pub fully_consistent: bool,
    /// The last ICN of the previous page.
    pub after: Option<Icn>,
    /// At least 1.
    pub limit: u32,
}

/// An account where the person may do the action asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entitlement {
    pub icn: Icn,
    pub company_name: String,
    /// As the check answers it.
    pub role: Option<Role>,
    /// As the check (with no product and no severity) answers it: for OPEN_SERVICE_REQUEST,
    /// the most severe service request the person may open here.
    pub highest_severity: Option<u8>,
    /// For OPEN_SERVICE_REQUEST: what the contracts in force cover. None for the other
    /// actions, which no contract decides.
    pub coverage: Option<Coverage>,
}

#[derive(Debug, Clone)]
pub struct EntitlementPage {
    pub entitlements: Vec<Entitlement>,
    /// The last ICN listed, when at least one more entry follows it.
    pub next: Option<Icn>,
    /// No older than the state any entry reflects.
    pub revision: Revision,
}

/// How many candidate accounts one store read brings.
const CANDIDATES_PER_READ: u32 = 100;

impl Services {
    /// A page of the accounts (by ICN) where the person may do the action, never from a
    /// state older than `at_least`. The page is filled up to its limit from the accounts that
    /// allow, and says there is more only when another entry that allows follows: a page
    /// short of its limit is the last.
    pub async fn list_entitlements(
        &self,
        caller: &Caller,
        req: &ListEntitlements,
        at_least: Option<Revision>,
    ) -> ServiceResult<EntitlementPage> {
        self.authorize(
            caller,
            Operation::ListEntitlements {
                subject: &req.web_id,
            },
        )?;
        let limit = usize::try_from(req.limit).unwrap_or(usize::MAX).max(1);
        let mut revision = self.applied_revision().max(at_least.unwrap_or(0));
        let mut entitlements: Vec<Entitlement> = Vec::new();
        let mut after = req.after.clone();
        loop {
            let candidates = self
                .store()
                .entitlement_candidates(&req.web_id, after.as_ref(), CANDIDATES_PER_READ)
                .await?;
            let last_read = u32::try_from(candidates.len()).is_ok_and(|n| n < CANDIDATES_PER_READ);
            for (icn, company_name) in candidates {
                after = Some(icn.clone());
                let check = CheckRequest {
                    web_id: req.web_id.clone(),
                    icn,
                    action: req.action,
                    product: None,
                    severity: None,
                    fully_consistent: req.fully_consistent,
                };
                let (answer, _) = self.answer(caller, &check, at_least).await?;
                revision = revision.max(answer.revision);
                if !answer.decision.allowed {
                    continue;
                }
                if entitlements.len() == limit {
                    // One more allows: the next page starts after this page's last entry.
                    let next = entitlements.last().map(|e| e.icn.clone());
                    return Ok(EntitlementPage {
                        entitlements,
                        next,
                        revision,
                    });
                }
                entitlements.push(entitlement(check, company_name, &answer));
            }
            if last_read {
                return Ok(EntitlementPage {
                    entitlements,
                    next: None,
                    revision,
                });
            }
        }
    }
}

fn entitlement(check: CheckRequest, company_name: String, answer: &Answer) -> Entitlement {
    let Answer {
        decision,
        facts,
        now,
        ..
    } = answer;
    let coverage = match check.action {
        Action::OpenServiceRequest => coverage(facts, *now),
        Action::ViewSupportArea | Action::ManageUsers => None,
    };
    Entitlement {
        highest_severity: next_step::highest_severity(decision, facts, &check.input(), *now),
        icn: check.icn,
        company_name,
        role: decision.role,
        coverage,
    }
}
