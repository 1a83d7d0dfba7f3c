//! The reference model, continued: what operators (scope entitlements.admin) do to accounts,
//! contracts and Site Technical Contacts, and the sending of verification codes.

use tonic::Code;

use super::ops::{Actor, PEOPLE, TYPO_ICN, email};
use super::reference::{
    Account, CODE_TTL, Contract, Detail, Expect, LiveCode, Membership, Model, RECERTIFY_WITHIN,
    RESEND_GAP, Role, SEND_WINDOW, SENDS_PER_WINDOW, fail,
};

impl Model {
    fn operator_only(by: Actor) -> Result<(), Expect> {
        match by {
            Actor::Operator => Ok(()),
            _ => Err(fail(Code::PermissionDenied, "ADMIN_SCOPE_REQUIRED")),
        }
    }

    pub fn account_mut(&mut self, icn: usize) -> Result<&mut Account, Expect> {
        self.accounts[icn]
            .as_mut()
            .ok_or_else(|| fail(Code::NotFound, "ACCOUNT_NOT_FOUND"))
    }

    pub fn create_account(&mut self, by: Actor, icn: usize) -> Expect {
        if let Err(e) = Self::operator_only(by) {
            return e;
        }
        assert_ne!(icn, TYPO_ICN, "the typo ICN is never created");
        if self.accounts[icn].is_some() {
            return fail(Code::AlreadyExists, "ACCOUNT_EXISTS");
        }
        self.accounts[icn] = Some(Account::default());
        Expect::Ok(Detail::Done)
    }

    pub fn set_status(&mut self, by: Actor, icn: usize, suspend: bool) -> Expect {
        let r = Self::operator_only(by).and_then(|()| self.account_mut(icn));
        match r {
            Ok(account) => {
                account.suspended = suspend;
                Expect::Ok(Detail::Done)
            }
            Err(e) => e,
        }
    }

    pub fn add_stc(&mut self, by: Actor, icn: usize, person: usize, alt_email: bool) -> Expect {
        if let Err(e) = Self::operator_only(by).and_then(|()| self.account_mut(icn).map(|_| ())) {
            return e;
        }
        // The operator's address is used only for someone new; a known person keeps their
        // own address, names and verification.
        let p = &mut self.people[person];
        if !p.known {
            p.known = true;
            p.alt_email = alt_email;
        }
        if self.active_role(icn, person) == Some(Role::SiteTechnicalContact) {
            return Expect::Ok(Detail::Done);
        }
        self.members.insert(
            (icn, person),
            // An operator's designation has no end.
            Membership {
                role: Role::SiteTechnicalContact,
                removed_at: None,
                expires: None,
                recertify: None,
            },
        );
        if !self.people[person].verified {
            self.send_code(person);
        }
        Expect::Ok(Detail::Done)
    }

    pub fn remove_stc(&mut self, by: Actor, icn: usize, person: usize) -> Expect {
        if let Err(e) = Self::operator_only(by).and_then(|()| self.account_mut(icn).map(|_| ())) {
            return e;
        }
        if self.active_role(icn, person) != Some(Role::SiteTechnicalContact) {
            return fail(Code::NotFound, "SITE_TECHNICAL_CONTACT_NOT_FOUND");
        }
        let stcs = (0..PEOPLE.len())
            .filter(|&p| self.active_role(icn, p) == Some(Role::SiteTechnicalContact))
            .count();
        if stcs <= 1 {
            return fail(Code::FailedPrecondition, "LAST_SITE_TECHNICAL_CONTACT");
        }
        self.remove(icn, person);
        Expect::Ok(Detail::Done)
    }

    pub fn remove(&mut self, icn: usize, person: usize) {
        let now = self.now;
        if let Some(m) = self.members.get_mut(&(icn, person)) {
            m.removed_at = Some(now);
        }
    }

    pub fn upsert_contract(
        &mut self,
        by: Actor,
        icn: usize,
        id: &'static str,
        c: Contract,
    ) -> Expect {
        if let Err(e) = Self::operator_only(by) {
            return e;
        }
        if c.start >= c.end {
            return fail(Code::InvalidArgument, "INVALID_ARGUMENT");
        }
        let now = self.now;
        match self.account_mut(icn) {
            Ok(account) => {
                let end = c.end;
                // A renewal: an existing contract's end moved later, on an active account.
                let renewed = account.contracts.get(id).is_some_and(|old| end > old.end)
                    && !account.suspended;
                account.contracts.insert(id, c);
                if renewed {
                    for (_, m) in self.members.range_mut((icn, 0)..(icn + 1, 0)) {
                        if m.ended(now).is_none() && m.role != Role::SiteTechnicalContact {
                            m.recertify = Some(now + RECERTIFY_WITHIN);
                        }
                    }
                }
                Expect::Ok(Detail::Done)
            }
            Err(e) => e,
        }
    }

    /// Issues a verification code unless one went out too recently; says whether it did.
    pub fn send_code(&mut self, person: usize) -> bool {
        let now = self.now;
        let p = &self.people[person];
        let (window_start, sends_in_window) = match &p.code {
            Some(c) if now - c.window_start < SEND_WINDOW => {
                if now - c.sent < RESEND_GAP || c.sends_in_window >= SENDS_PER_WINDOW {
                    return false;
                }
                (c.window_start, c.sends_in_window + 1)
            }
            _ => (now, 1),
        };
        let alt_email = p.alt_email;
        let sent = self.codes_sent.entry(email(person, alt_email)).or_default();
        *sent += 1;
        self.people[person].code = Some(LiveCode {
            alt_email,
            nth: *sent,
            sent: now,
            expires: now + CODE_TTL,
            wrong_tries: 0,
            window_start,
            sends_in_window,
        });
        true
    }
}
