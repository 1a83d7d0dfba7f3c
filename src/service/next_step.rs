//! A refusal's next step with the names it shows. The step itself is a pure function of the
//! check (domain::next_step); naming who can help costs store reads, so they are made only
//! for a refusal that names someone, and only when the policy lets the caller see the names:
//! a grant (the hot path) reads nothing more.

use super::check::CheckRequest;
use super::nudges::{deciders, names, view_facts};
use super::{ServiceResult, Services};
use crate::clock::Millis;
use crate::domain::policy::{self, Actor};
use crate::domain::{AccountStatus, CheckFacts, Contacts, NextStep};

impl Services {
    /// `step` as `actor` may see it: concealed (nothing about the account, no read) unless
    /// the policy shows its details, else with the names of whoever it sends the person to.
    pub(super) async fn next_step_as_seen(
        &self,
        actor: &Actor<'_>,
        req: &CheckRequest,
        facts: &CheckFacts,
        step: NextStep,
        now: Millis,
    ) -> ServiceResult<NextStep> {
        if !policy::shows_next_step_details(actor, facts, now) {
            return Ok(step.concealed());
        }
        // A step that names someone has an account (an unknown one leads to no such step).
        let status = facts.account_status.unwrap_or(AccountStatus::Suspended);
        match step.contacts() {
            Contacts::None => Ok(step),
            Contacts::Deciders => {
                let admins = self.store().administrators_of(&req.icn, now).await?;
                let (group, names) = deciders(None, status, &admins);
                Ok(NextStep {
                    group: Some(group),
                    names,
                    ..step
                })
            }
            Contacts::SiteTechnicalContacts => {
                let admins = self.store().administrators_of(&req.icn, now).await?;
                let stcs = policy::contract_end_audience(status, &view_facts(&admins));
                Ok(NextStep {
                    names: names(&admins, &stcs),
                    ..step
                })
            }
            Contacts::PendingRequest => {
                let pending = self
                    .store()
                    .pending_request_of(&req.icn, &req.web_id)
                    .await?;
                // Decided since the facts were read (or the cache lags): the facts' dates stand.
                let Some(request) = pending else {
                    return Ok(step);
                };
                let w = self.waiting(&request).await?;
                Ok(NextStep {
                    group: Some(w.with),
                    names: w.names,
                    request: Some(w.request),
                    since: Some(w.since),
                    until: Some(w.expires),
                    ..step
                })
            }
        }
    }
}
