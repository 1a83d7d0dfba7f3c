//! Email-domain policies (issue 9): operators and an account's STCs keep, per domain, whether
//! requests for access from it are approved automatically, held or refused. RequestAccess
//! follows them (`access.rs`).

use super::audit::{self, Event};
use super::write::no_such_account;
use super::{Caller, ServiceError, ServiceResult, Services, Written};
use crate::domain::policy::{Operation, Standing};
use crate::domain::{DomainAction, DomainRule, EmailDomain, Icn, Reason, Role};
use crate::store::Page;

impl Services {
    /// Sets the policy for `domain` (the role already checked against the action).
    pub async fn set_email_domain_policy(
        &self,
        caller: &Caller,
        icn: &Icn,
        domain: EmailDomain,
        action: DomainAction,
        role: Option<Role>,
    ) -> ServiceResult<Written<DomainRule>> {
        let mut w = self.begin(caller).await?;
        let account = w.lock_account(icn).await?;
        let standing = w.standing(&account).await?;
        w.authorize(Operation::ManageEmailDomains { standing })?;
        let now = w.now();
        let before = w.tx().domain_rule(icn, &domain).await?;
        let rule = match &before {
            Some(b) => DomainRule {
                action,
                role,
                updated_at: now,
                ..b.clone()
            },
            None => DomainRule {
                icn: icn.clone(),
                domain,
                action,
                role,
                created_by: caller.web_id.clone(),
                created_at: now,
                updated_at: now,
            },
        };
        if before
            .as_ref()
            .is_some_and(|b| b.action == action && b.role == role)
        {
            // Setting what is set changes nothing and records nothing.
            return w.done(before.unwrap_or(rule)).await;
        }
        w.tx().upsert_domain_rule(&rule).await?;
        w.audit(Event {
            action: "email_domain_policy.set",
            target_type: "email_domain_policy",
            target_id: format!("{icn}/{}", rule.domain),
            icn: Some(icn),
            before: before.as_ref().map(audit::domain_rule),
            after: Some(audit::domain_rule(&rule)),
            reason: None,
        });
        w.done(rule).await
    }

    pub async fn delete_email_domain_policy(
        &self,
        caller: &Caller,
        icn: &Icn,
        domain: &EmailDomain,
    ) -> ServiceResult<Written<DomainRule>> {
        let mut w = self.begin(caller).await?;
        let account = w.lock_account(icn).await?;
        let standing = w.standing(&account).await?;
        w.authorize(Operation::ManageEmailDomains { standing })?;
        let Some(before) = w.tx().domain_rule(icn, domain).await? else {
            return Err(policy_not_found(icn, domain));
        };
        if !w.tx().delete_domain_rule(icn, domain).await? {
            return Err(policy_not_found(icn, domain));
        }
        w.audit(Event {
            action: "email_domain_policy.delete",
            target_type: "email_domain_policy",
            target_id: format!("{icn}/{domain}"),
            icn: Some(icn),
            before: Some(audit::domain_rule(&before)),
            after: None,
            reason: None,
        });
        w.done(before).await
    }

    pub async fn list_email_domain_policies(
        &self,
        caller: &Caller,
        icn: &Icn,
        after: Option<EmailDomain>,
        limit: u32,
    ) -> ServiceResult<Page<DomainRule, EmailDomain>> {
        let facts = self.store().check_facts(icn, &caller.web_id).await?;
        let Some(account) = facts.account_status else {
            return Err(no_such_account(Some(caller), icn));
        };
        let standing = Standing {
            account,
            role: facts
                .membership
                .filter(|m| m.is_active_at(self.now()))
                .map(|m| m.role),
            email_verified: facts.email_verified,
        };
        self.authorize(caller, Operation::ManageEmailDomains { standing })?;
        Ok(self.store().list_domain_rules(icn, after, limit).await?)
    }
}

fn policy_not_found(icn: &Icn, domain: &EmailDomain) -> ServiceError {
    ServiceError::not_found(
        Reason::EmailDomainPolicyNotFound,
        format!("account {icn} has no email-domain policy for {domain}"),
    )
}
