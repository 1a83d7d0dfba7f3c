//! Which accounts a person may act on (the AuthZEN resource search), a page at a time: the
//! ListEntitlements use case, so a search lists exactly what ListEntitlements lists, each
//! account answered by the check path CheckEntitlement takes. A search that names a product
//! or a severity keeps only the accounts whose check with them allows too.

use super::entitlements::ListEntitlements;
use super::{Caller, CheckRequest, ServiceResult, Services};
use crate::domain::{Action, Icn, ProductId, Revision, WebId};

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
        let narrowed = q.product.is_some() || q.severity.is_some();
        let limit = usize::try_from(q.limit.max(1)).unwrap_or(usize::MAX);
        let mut page = AccountPage {
            accounts: Vec::new(),
            next_after: None,
            revision: self.applied_revision().max(at_least.unwrap_or(0)),
        };
        let mut list = ListEntitlements {
            web_id: q.web_id.clone(),
            action: q.action,
            fully_consistent: q.fully_consistent,
            after: q.after.clone(),
            limit: q.limit.max(1),
        };
        loop {
            let listed = self.list_entitlements(caller, &list, at_least).await?;
            page.revision = page.revision.max(listed.revision);
            for e in listed.entitlements {
                if narrowed && !self.allows(caller, q, &e.icn, at_least, &mut page).await? {
                    continue;
                }
                if page.accounts.len() == limit {
                    // One more allows: the next page starts after this page's last account.
                    page.next_after = page.accounts.last().cloned();
                    return Ok(page);
                }
                page.accounts.push(e.icn);
            }
            match listed.next {
                Some(next) => list.after = Some(next),
                None => return Ok(page),
            }
        }
    }

    /// The check of one listed account with the search's product and severity.
    async fn allows(
        &self,
        caller: &Caller,
        q: &AccountSearch,
        icn: &Icn,
        at_least: Option<Revision>,
        page: &mut AccountPage,
    ) -> ServiceResult<bool> {
        let check = CheckRequest {
            web_id: q.web_id.clone(),
            icn: icn.clone(),
            action: q.action,
            product: q.product.clone(),
            severity: q.severity,
            fully_consistent: q.fully_consistent,
        };
        let (answer, revision) = self.check_entitlement(caller, &check, at_least).await?;
        page.revision = page.revision.max(revision);
        Ok(answer.decision.allowed)
    }
}
