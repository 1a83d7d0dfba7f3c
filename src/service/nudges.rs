//! Requests that never rot: a pending request nobody decides reminds the account's
//! administrators, then goes past them to its STCs (and to the operators where nobody on the
//! account can decide it), before it expires. Each nudge goes out once: the database's
//! `request_nudges` key, written in the same transaction as the audit event and the emails,
//! keeps two replicas' sweeps from both sending it.

use super::audit::Event;
use super::sweep;
use super::write::Write;
use super::{ServiceError, ServiceResult, Services};
use crate::domain::policy::{self, Administrator, Audience};
use crate::domain::{
    AccessRequest, Account, AccountStatus, DeciderGroup, MemberView, Membership, Nudge, Person,
    Waiting,
};
use crate::mail::templates::{self, WaitingFor, WaitingRequest};

impl Services {
    /// Sends every reminder and escalation that is due; returns how many went out.
    pub async fn nudge_due(&self) -> ServiceResult<usize> {
        let now = self.now();
        let config = &self.inner.config;
        let mut sent = 0;
        for (nudge, after) in [
            (Nudge::Remind, config.remind_after_ms),
            (Nudge::Escalate, config.escalate_after_ms),
        ] {
            let asked_by = now.saturating_sub(after);
            sent +=
                sweep::drain(
                    sweep::BATCH,
                    |limit| async move {
                        Ok(self.store().due_nudges(nudge, asked_by, now, limit).await?)
                    },
                    move |id| async move { self.nudge(id, nudge).await },
                )
                .await?;
        }
        Ok(sent)
    }

    /// Sends `nudge` for the request unless it is no longer pending, is past its deadline, or
    /// had it already; true when it went out.
    async fn nudge(&self, id: crate::domain::AccessRequestId, nudge: Nudge) -> ServiceResult<bool> {
        let mut w = self.begin_system().await?;
        let (request, account) = match w.lock_request(id).await {
            Ok(found) => found,
            Err(ServiceError::NotFound { .. }) => return Ok(false),
            Err(e) => return Err(e),
        };
        let now = w.now();
        // Decided, or past its deadline (expired, whether or not the sweep recorded it yet).
        if !request.is_waiting(now) {
            return Ok(false);
        }
        if !w.tx().record_nudge(id, nudge, now).await? {
            return Ok(false);
        }
        let Some(requester) = w.tx().person(&request.web_id).await? else {
            return Ok(false);
        };
        let heard = self
            .tell_waiting(&mut w, Some(nudge), &request, &requester, &account)
            .await?;
        w.system_audit(Event {
            action: match nudge {
                Nudge::Remind => "access_request.remind",
                Nudge::Escalate => "access_request.escalate",
            },
            target_type: "access_request",
            target_id: request.id.to_string(),
            icn: Some(&request.icn),
            before: None,
            after: Some(serde_json::json!({
                "administrators": heard.administrators,
                "operators": heard.operators,
            })),
            reason: Some("no decision yet"),
        });
        w.commit().await?;
        Ok(true)
    }

    /// Emails who must hear that the request waits (at `stage`; `None` when it was just made,
    /// where the administrators get their own first notice and only operators are added here).
    /// Returns the Web IDs of the administrators written to and whether operators were.
    pub(super) async fn tell_waiting(
        &self,
        w: &mut Write<'_>,
        stage: Option<Nudge>,
        request: &AccessRequest,
        requester: &Person,
        account: &Account,
    ) -> ServiceResult<Heard> {
        let now = w.now();
        let admins = w.tx().administrators(&request.icn, now).await?;
        let facts = administrator_facts(&admins);
        let Audience {
            administrators,
            operators,
        } = policy::request_audience(stage, account.status, &facts);
        let name = requester.display_name();
        let id = request.id.to_string();
        let note = WaitingRequest {
            requester_name: &name,
            requester_email: requester.email.as_str(),
            requester_web_id: requester.web_id.as_str(),
            icn: request.icn.as_str(),
            company_name: &account.company_name,
            requested_role_label: request.requested_role.label(),
            request_id: &id,
            made_at: request.created_at,
            expires_at: request.expires_at,
        };
        let mut heard = Heard::default();
        if let Some(stage) = stage {
            let audience = match stage {
                Nudge::Remind => WaitingFor::Reminder,
                Nudge::Escalate => WaitingFor::Escalation,
            };
            for i in administrators {
                let (_, person) = &admins[i];
                w.mail(templates::request_waiting(
                    self.brand(),
                    person.email.as_str(),
                    audience,
                    &note,
                ));
                heard.administrators.push(person.web_id.to_string());
            }
        }
        if operators {
            match &self.inner.config.operator_email {
                Some(to) => {
                    w.mail(templates::request_waiting(
                        self.brand(),
                        to.as_str(),
                        WaitingFor::Operators,
                        &note,
                    ));
                    heard.operators = true;
                }
                None => tracing::warn!(
                    icn = %request.icn,
                    request = %request.id,
                    "nobody on the account can decide this request, and no --operator-email is set to report it to"
                ),
            }
        }
        Ok(heard)
    }
}

impl Services {
    /// Who can decide `request` now (the policy's audience for the step it has reached) and
    /// what comes next. A person sees their deciders' names only.
    pub(super) async fn waiting(&self, request: &AccessRequest) -> ServiceResult<Waiting> {
        let now = self.now();
        let config = &self.inner.config;
        let (remind, escalate) = (
            request.created_at.saturating_add(config.remind_after_ms),
            request.created_at.saturating_add(config.escalate_after_ms),
        );
        let stage = if now >= escalate {
            Some(Nudge::Escalate)
        } else if now >= remind {
            Some(Nudge::Remind)
        } else {
            None
        };
        let (account, admins) = tokio::try_join!(
            self.store().account(&request.icn),
            self.store().administrators_of(&request.icn, now),
        )?;
        let status = account.map_or(AccountStatus::Suspended, |a| a.status);
        let (with, names) = deciders(stage, status, &admins);
        let next_step = [remind, escalate]
            .into_iter()
            .find(|&t| t > now && t < request.expires_at);
        Ok(Waiting {
            request: request.id,
            icn: request.icn.clone(),
            since: request.created_at,
            with,
            names,
            next_step,
            expires: request.expires_at,
        })
    }
}

/// Who a request at `stage` (None: just made) is with, as the policy's audience says, and
/// their names; no names when it is with the operators.
pub(super) fn deciders(
    stage: Option<Nudge>,
    status: AccountStatus,
    admins: &[MemberView],
) -> (DeciderGroup, Vec<String>) {
    let audience = policy::request_audience(stage, status, &view_facts(admins));
    if audience.operators {
        return (DeciderGroup::Operators, Vec::new());
    }
    let group = if stage == Some(Nudge::Escalate) {
        DeciderGroup::SiteTechnicalContacts
    } else {
        DeciderGroup::Administrators
    };
    (group, names(admins, &audience.administrators))
}

/// The display names of the administrators at `at`.
pub(super) fn names(admins: &[MemberView], at: &[usize]) -> Vec<String> {
    at.iter()
        .filter_map(|&i| admins[i].person.as_ref().map(Person::display_name))
        .collect()
}

/// [`administrator_facts`] of administrators read outside a transaction.
pub(super) fn view_facts(admins: &[MemberView]) -> Vec<Administrator> {
    admins
        .iter()
        .map(|v| Administrator {
            role: v.membership.role,
            email_verified: v.person.as_ref().is_some_and(Person::email_verified),
        })
        .collect()
}

/// What the policy needs to know of each administrator to say who hears of a request.
pub(super) fn administrator_facts(admins: &[(Membership, Person)]) -> Vec<Administrator> {
    admins
        .iter()
        .map(|(m, p)| Administrator {
            role: m.role,
            email_verified: p.email_verified(),
        })
        .collect()
}

/// Who was written to about a waiting request.
#[derive(Debug, Default)]
pub(super) struct Heard {
    pub administrators: Vec<String>,
    pub operators: bool,
}
