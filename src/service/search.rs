//! Which accounts a person may act on (the AuthZEN resource search), a page at a time, each
//! account answered by the very check path CheckEntitlement takes, so a search never says
//! yes where a check says no. The accounts looked at are those a check can allow at all:
//! the person's active memberships and the accounts they have a pending request for (a
//! Provisional Caller may view the support area). Interim: when the ListEntitlements use
//! case lands, the HTTP door calls it instead and this goes.

use std::collections::BTreeSet;

use super::{Caller, CheckRequest, ServiceResult, Services};
use crate::domain::policy::Operation;
use crate::domain::{AccessRequestState, Action, Icn, ProductId, Revision, WebId};

/// How many of a person's newest requests are looked at for pending ones.
const REQUESTS_LOOKED_AT: u32 = 100;

#[derive(Debug, Clone)]
pub struct AccountSearch {
    pub web_id: WebId,
    pub action: Action,
    pub product: Option<ProductId>,
    pub severity: Option<u8>,
    pub fully_consistent: bool,
    /// Continue after this account (the last one the previous page looked at).
    pub after: Option<Icn>,
    pub limit: u32,
}

#[derive(Debug, Clone)]
pub struct AccountPage {
    /// In ICN order.
    pub accounts: Vec<Icn>,
    /// Where the next page starts; None: this was the last page.
    pub next_after: Option<Icn>,
    /// The answers reflect at least this revision.
    pub revision: Revision,
}

impl Services {
    pub async fn search_accounts(
        &self,
        caller: &Caller,
        q: &AccountSearch,
        at_least: Option<Revision>,
    ) -> ServiceResult<AccountPage> {
        self.authorize(caller, Operation::Check { subject: &q.web_id })?;
        let store = self.store();
        let (members, requests) = tokio::try_join!(
            store.memberships_of(&q.web_id, self.now()),
            store.requests_of(&q.web_id, REQUESTS_LOOKED_AT),
        )?;
        let mut candidates: BTreeSet<Icn> = members.into_iter().map(|m| m.membership.icn).collect();
        candidates.extend(
            requests
                .into_iter()
                .filter(|r| r.request.state == AccessRequestState::Pending)
                .map(|r| r.request.icn),
        );
        let mut page = AccountPage {
            accounts: Vec::new(),
            next_after: None,
            revision: self.applied_revision().max(at_least.unwrap_or(0)),
        };
        let limit = usize::try_from(q.limit.max(1)).unwrap_or(usize::MAX);
        let mut last = None;
        for icn in candidates
            .into_iter()
            .filter(|i| q.after.as_ref().is_none_or(|a| i > a))
        {
            if page.accounts.len() == limit {
                page.next_after = last;
                break;
            }
            let check = CheckRequest {
                web_id: q.web_id.clone(),
                icn: icn.clone(),
                action: q.action,
                product: q.product.clone(),
                severity: q.severity,
                fully_consistent: q.fully_consistent,
            };
            let (d, revision) = self.check_entitlement(caller, &check, at_least).await?;
            page.revision = page.revision.max(revision);
            if d.decision.allowed {
                page.accounts.push(icn.clone());
            }
            last = Some(icn);
        }
        Ok(page)
    }
}
