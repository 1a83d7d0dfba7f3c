//! The reference model, continued: the access-request workflow, administrators' work on
//! members, their reads, and email verification.

use tonic::Code;

use super::ops::{ACTING_PEOPLE, Actor, DAY, DomainAct, Grant, Ms, Op, PEOPLE, ReqRef, email};
use super::reference::{
    Detail, Expect, MAX_WRONG_TRIES, Membership, Model, REQUEST_TTL, REQUESTS_PER_DAY, Request,
    Role, State, fail,
};

impl Model {
    /// The request an operation names, if any was issued.
    pub fn resolve(&self, r: ReqRef) -> Option<usize> {
        match r {
            ReqRef::Newest(n) if !self.requests.is_empty() => {
                Some(self.requests.len() - 1 - n % self.requests.len())
            }
            _ => None,
        }
    }

    /// The operation with a drawn `Actor::Admin(n)` replaced by who that is now.
    pub fn concrete(&self, op: &Op) -> Op {
        let icn = match *op {
            Op::Approve { req, .. } | Op::Deny { req, .. } => {
                self.resolve(req).map(|i| self.requests[i].icn)
            }
            Op::UpdateRole { icn, .. }
            | Op::RemoveMember { icn, .. }
            | Op::Certify { icn, .. }
            | Op::ListMembers { icn, .. }
            | Op::ListRequests { icn, .. }
            | Op::SetDomainRule { icn, .. }
            | Op::DeleteDomainRule { icn, .. } => Some(icn),
            _ => None,
        };
        op.with_actor(|a| match a {
            Actor::Admin(n) => {
                let admins: Vec<usize> = (0..ACTING_PEOPLE)
                    .filter(|&p| icn.is_some_and(|i| self.is_admin(i, Actor::Person(p))))
                    .collect();
                Actor::Person(if admins.is_empty() {
                    n
                } else {
                    admins[n % admins.len()]
                })
            }
            other => other,
        })
    }

    /// A person's token refreshes their record: their own address replaces one an operator
    /// gave, and then has to be verified again. The code sent to the other address no longer
    /// verifies (SUPERSEDED), but its send history stays: the resend limit is the person's.
    fn sync(&mut self, person: usize) {
        let p = &mut self.people[person];
        p.known = true;
        if p.alt_email {
            p.alt_email = false;
            p.verified = false;
        }
    }

    pub fn request_access(
        &mut self,
        by: Actor,
        icn: usize,
        right_country: bool,
        role: Role,
    ) -> Expect {
        let Some(account) = &self.accounts[icn] else {
            return fail(Code::NotFound, "ACCOUNT_NOT_FOUND");
        };
        // An ICN is only valid with its own country; a wrong one looks like no account.
        if !right_country {
            return fail(Code::NotFound, "ACCOUNT_NOT_FOUND");
        }
        if account.suspended {
            return fail(Code::FailedPrecondition, "ACCOUNT_SUSPENDED");
        }
        let Actor::Person(person) = by else {
            return fail(Code::FailedPrecondition, "EMAIL_CLAIM_REQUIRED");
        };
        if self.active_role(icn, person).is_some() {
            // Nothing is written, not even the refreshed person record.
            return fail(Code::AlreadyExists, "ALREADY_A_MEMBER");
        }
        let open = self
            .requests
            .iter()
            .position(|r| r.icn == icn && r.person == person && self.state_of(r) == State::Pending);
        if let Some(i) = open {
            self.sync(person);
            return Expect::Ok(Detail::SameRequest(i));
        }
        // Refused before anything is written (the person record included).
        let today = self
            .requests
            .iter()
            .filter(|r| r.icn == icn && r.person == person && r.created > self.now - DAY)
            .count();
        if today >= REQUESTS_PER_DAY {
            return fail(Code::ResourceExhausted, "ACCESS_REQUESTS_RATE_LIMITED");
        }
        // The account's policy for the domain of the person's own address (every person of
        // the universe is at DOMAINS[0]). Refused: nothing written, the person record neither.
        let rule = self.domain_rules.get(&(icn, 0)).copied();
        if rule == Some(DomainAct::Refuse) {
            return fail(Code::FailedPrecondition, "EMAIL_DOMAIN_REFUSED");
        }
        let auto = rule == Some(DomainAct::AutoApprove);
        self.sync(person);
        self.requests.push(Request {
            icn,
            person,
            requested: role,
            state: if auto {
                State::Approved
            } else {
                State::Pending
            },
            created: self.now,
            updated: self.now,
            expires: self.now + REQUEST_TTL,
        });
        if auto {
            // Approved at once by the service: Authorized User, whatever was asked, no end.
            self.members.insert(
                (icn, person),
                Membership {
                    role: Role::AuthorizedUser,
                    removed_at: None,
                    expires: None,
                    // A new membership owes no confirmation from an earlier renewal.
                    recertify: None,
                },
            );
        }
        if !self.people[person].verified {
            self.send_code(person);
        }
        Expect::Ok(Detail::NewRequest(self.requests.len() - 1))
    }

    /// Who may decide a request, in the order the service checks: the request exists, it is
    /// not the caller's own, the caller is an active administrator of its account with a
    /// verified email, and the account is active.
    fn decidable(&self, by: Actor, req: ReqRef) -> Result<usize, Expect> {
        let i = self
            .resolve(req)
            .ok_or_else(|| fail(Code::NotFound, "ACCESS_REQUEST_NOT_FOUND"))?;
        let r = &self.requests[i];
        if by == Actor::Person(r.person) {
            return Err(fail(Code::PermissionDenied, "SELF_DECISION"));
        }
        if !self.is_admin(r.icn, by) {
            return Err(fail(Code::PermissionDenied, "NOT_AN_ADMINISTRATOR"));
        }
        if !self.verified(by) {
            return Err(fail(
                Code::PermissionDenied,
                "ADMINISTRATOR_EMAIL_NOT_VERIFIED",
            ));
        }
        if self.accounts[r.icn].as_ref().is_some_and(|a| a.suspended) {
            return Err(fail(Code::FailedPrecondition, "ACCOUNT_SUSPENDED"));
        }
        match self.state_of(r) {
            State::Pending => Ok(i),
            State::Expired => Err(fail(Code::FailedPrecondition, "REQUEST_EXPIRED")),
            _ => Err(fail(Code::FailedPrecondition, "REQUEST_NOT_PENDING")),
        }
    }

    /// Approves, the membership ending at `expire` (absolute) or never: an approval without
    /// an end clears one set before; a Site Technical Contact never gets one.
    pub fn approve(&mut self, by: Actor, req: ReqRef, grant: Grant, expire: Option<Ms>) -> Expect {
        // The end is checked first, before anything is looked up.
        let expire = match self.valid_end(expire) {
            Ok(e) => e,
            Err(e) => return e,
        };
        let i = match self.decidable(by, req) {
            Ok(i) => i,
            Err(e) => return e,
        };
        let requested = self.requests[i].requested;
        let granted = match grant {
            Grant::Requested => requested,
            Grant::AuthorizedUser => Role::AuthorizedUser,
            Grant::TechnicalContact => Role::TechnicalContact,
        };
        // The requested role or a lower one, and only roles a person may ask for.
        if granted > requested || granted < Role::AuthorizedUser {
            return fail(Code::InvalidArgument, "INVALID_ARGUMENT");
        }
        let (icn, person) = (self.requests[i].icn, self.requests[i].person);
        self.requests[i].state = State::Approved;
        self.requests[i].updated = self.now;
        // Never lower a role someone already holds (an operator may have made them an STC).
        let role = self
            .active_role(icn, person)
            .map_or(granted, |r| r.max(granted));
        // An active member keeps a question asked of them; a new membership owes nothing.
        let recertify = self.owed(icn, person);
        self.members.insert(
            (icn, person),
            Membership {
                role,
                removed_at: None,
                expires: expire.filter(|_| role != Role::SiteTechnicalContact),
                recertify,
            },
        );
        Expect::Ok(Detail::Done)
    }

    pub fn deny(&mut self, by: Actor, req: ReqRef) -> Expect {
        match self.decidable(by, req) {
            Ok(i) => {
                self.requests[i].state = State::Denied;
                self.requests[i].updated = self.now;
                Expect::Ok(Detail::Done)
            }
            Err(e) => e,
        }
    }

    pub fn withdraw(&mut self, by: Actor, req: ReqRef) -> Expect {
        let Some(i) = self.resolve(req) else {
            return fail(Code::NotFound, "ACCESS_REQUEST_NOT_FOUND");
        };
        if by != Actor::Person(self.requests[i].person) {
            return fail(Code::PermissionDenied, "NOT_YOUR_REQUEST");
        }
        if self.state_of(&self.requests[i]) != State::Pending {
            return fail(Code::FailedPrecondition, "REQUEST_NOT_PENDING");
        }
        self.requests[i].state = State::Withdrawn;
        self.requests[i].updated = self.now;
        Expect::Ok(Detail::Done)
    }

    /// Administrators' writes on members: the account exists; the caller is an active,
    /// verified administrator of an active account, or an operator (on any account).
    fn may_administer(&self, by: Actor, icn: usize) -> Result<(), Expect> {
        let Some(account) = &self.accounts[icn] else {
            return Err(unknown_account(by));
        };
        if self.is_admin(icn, by) {
            if !self.verified(by) {
                return Err(fail(
                    Code::PermissionDenied,
                    "ADMINISTRATOR_EMAIL_NOT_VERIFIED",
                ));
            }
            if account.suspended {
                return Err(fail(Code::FailedPrecondition, "ACCOUNT_SUSPENDED"));
            }
            return Ok(());
        }
        if by == Actor::Operator {
            return Ok(());
        }
        Err(fail(Code::PermissionDenied, "NOT_AN_ADMINISTRATOR"))
    }

    /// The member an administrator acts on: not themself, an active member, not an STC.
    fn target(&self, by: Actor, icn: usize, person: usize) -> Result<Role, Expect> {
        if by == Actor::Person(person) {
            return Err(fail(Code::PermissionDenied, "SELF_MODIFICATION"));
        }
        match self.active_role(icn, person) {
            None => Err(fail(Code::NotFound, "MEMBER_NOT_FOUND")),
            Some(Role::SiteTechnicalContact) => Err(fail(
                Code::PermissionDenied,
                "SITE_TECHNICAL_CONTACT_PROTECTED",
            )),
            Some(role) => Ok(role),
        }
    }

    /// Sets a member's role and end (`expire`, absolute; None clears an earlier end).
    pub fn update_role(
        &mut self,
        by: Actor,
        icn: usize,
        person: usize,
        role: Role,
        expire: Option<Ms>,
    ) -> Expect {
        let expire = match self.valid_end(expire) {
            Ok(e) => e,
            Err(e) => return e,
        };
        if let Err(e) = self
            .may_administer(by, icn)
            .and_then(|()| self.target(by, icn, person))
        {
            return e;
        }
        let recertify = self.owed(icn, person);
        self.members.insert(
            (icn, person),
            Membership {
                role,
                removed_at: None,
                expires: expire,
                recertify,
            },
        );
        Expect::Ok(Detail::Done)
    }

    pub fn remove_member(&mut self, by: Actor, icn: usize, person: usize) -> Expect {
        if let Err(e) = self
            .may_administer(by, icn)
            .and_then(|()| self.target(by, icn, person))
        {
            return e;
        }
        self.remove(icn, person);
        Expect::Ok(Detail::Done)
    }

    /// The recertification deadline an active member owes, if any.
    fn owed(&self, icn: usize, person: usize) -> Option<Ms> {
        self.members
            .get(&(icn, person))
            .filter(|m| m.ended(self.now).is_none())
            .and_then(|m| m.recertify)
    }

    /// CertifyMember: an administrator of the account (not of themself) or an operator
    /// confirms an active member after a renewal; one who owes nothing (an STC) is fine too.
    pub fn certify(&mut self, by: Actor, icn: usize, person: usize) -> Expect {
        if let Err(e) = self.may_administer(by, icn) {
            return e;
        }
        if by == Actor::Person(person) {
            return fail(Code::PermissionDenied, "SELF_MODIFICATION");
        }
        if self.active_role(icn, person).is_none() {
            return fail(Code::NotFound, "MEMBER_NOT_FOUND");
        }
        if let Some(m) = self.members.get_mut(&(icn, person)) {
            m.recertify = None;
        }
        Expect::Ok(Detail::Done)
    }

    /// Reads of an account's members and requests: operators, and its active, verified
    /// administrators while it is active.
    fn may_read(&self, by: Actor, icn: usize) -> Result<(), Expect> {
        let Some(account) = &self.accounts[icn] else {
            return Err(unknown_account(by));
        };
        if by == Actor::Operator {
            return Ok(());
        }
        if !self.is_admin(icn, by) {
            return Err(fail(Code::PermissionDenied, "NOT_AN_ADMINISTRATOR"));
        }
        if !self.verified(by) {
            return Err(fail(
                Code::PermissionDenied,
                "ADMINISTRATOR_EMAIL_NOT_VERIFIED",
            ));
        }
        if account.suspended {
            return Err(fail(Code::FailedPrecondition, "ACCOUNT_SUSPENDED"));
        }
        Ok(())
    }

    pub fn list_members(&self, by: Actor, icn: usize) -> Expect {
        if let Err(e) = self.may_read(by, icn) {
            return e;
        }
        let mut members: Vec<(usize, Role)> = (0..PEOPLE.len())
            .filter_map(|p| self.active_role(icn, p).map(|r| (p, r)))
            .collect();
        members.sort_by_key(|(p, _)| PEOPLE[*p]);
        Expect::Ok(Detail::Members(members))
    }

    pub fn list_requests(&self, by: Actor, icn: usize) -> Expect {
        if let Err(e) = self.may_read(by, icn) {
            return e;
        }
        let requests = (0..self.requests.len())
            .rev()
            .filter(|&i| self.requests[i].icn == icn)
            .map(|i| (i, self.state_of(&self.requests[i])))
            .collect();
        Expect::Ok(Detail::Requests(requests))
    }

    /// The live code of a person as (address, n-th email to it), to type it in.
    pub fn live_code(&self, by: Actor) -> Option<(String, usize)> {
        match by {
            Actor::Person(p) => self.people[p]
                .code
                .as_ref()
                .map(|c| (email(p, c.alt_email), c.nth)),
            _ => None,
        }
    }

    pub fn verify_email(&mut self, by: Actor, right_code: bool) -> Expect {
        // A service token has no email claim and is nobody the service sent a code to.
        let Actor::Person(person) = by else {
            return fail(Code::FailedPrecondition, "NO_VERIFICATION_PENDING");
        };
        // Kept whatever the answer, a refusal included.
        self.sync(person);
        let now = self.now;
        let p = &mut self.people[person];
        let Some(code) = &mut p.code else {
            return if p.verified {
                fail(Code::FailedPrecondition, "EMAIL_ALREADY_VERIFIED")
            } else {
                fail(Code::FailedPrecondition, "NO_VERIFICATION_PENDING")
            };
        };
        if code.alt_email != p.alt_email {
            return fail(Code::FailedPrecondition, "VERIFICATION_CODE_SUPERSEDED");
        }
        if code.wrong_tries >= MAX_WRONG_TRIES {
            return fail(Code::FailedPrecondition, "VERIFICATION_CODE_LOCKED");
        }
        if now >= code.expires {
            return fail(Code::FailedPrecondition, "VERIFICATION_CODE_EXPIRED");
        }
        if !right_code {
            code.wrong_tries += 1;
            return fail(Code::InvalidArgument, "VERIFICATION_CODE_INVALID");
        }
        p.verified = true;
        p.code = None;
        Expect::Ok(Detail::Done)
    }

    pub fn send_verification(&mut self, by: Actor) -> Expect {
        let Actor::Person(person) = by else {
            return fail(Code::FailedPrecondition, "EMAIL_CLAIM_REQUIRED");
        };
        self.sync(person);
        if self.people[person].verified {
            return fail(Code::FailedPrecondition, "EMAIL_ALREADY_VERIFIED");
        }
        if self.send_code(person) {
            Expect::Ok(Detail::Done)
        } else {
            fail(Code::ResourceExhausted, "VERIFICATION_EMAIL_RATE_LIMITED")
        }
    }

    /// Requests past their deadline that the service should record as EXPIRED.
    pub fn overdue(&self) -> Vec<usize> {
        (0..self.requests.len())
            .filter(|&i| {
                self.requests[i].state == State::Pending
                    && self.state_of(&self.requests[i]) == State::Expired
            })
            .collect()
    }
}

/// Only an operator learns that an account does not exist; anyone else hears what they would
/// for an account they do not administer.
impl Model {
    /// Who keeps an account's email-domain policies: operators (any account, suspended or
    /// not), else its verified STCs on an active account; a TC is told an STC is needed.
    fn may_keep_domains(&self, by: Actor, icn: usize) -> Result<(), Expect> {
        let Some(account) = &self.accounts[icn] else {
            return Err(unknown_account(by));
        };
        if by == Actor::Operator {
            return Ok(());
        }
        if !self.is_admin(icn, by) {
            return Err(fail(Code::PermissionDenied, "NOT_AN_ADMINISTRATOR"));
        }
        if !self.verified(by) {
            return Err(fail(
                Code::PermissionDenied,
                "ADMINISTRATOR_EMAIL_NOT_VERIFIED",
            ));
        }
        if account.suspended {
            return Err(fail(Code::FailedPrecondition, "ACCOUNT_SUSPENDED"));
        }
        match by {
            Actor::Person(p) if self.active_role(icn, p) == Some(Role::SiteTechnicalContact) => {
                Ok(())
            }
            _ => Err(fail(
                Code::PermissionDenied,
                "SITE_TECHNICAL_CONTACT_REQUIRED",
            )),
        }
    }

    pub fn set_domain_rule(
        &mut self,
        by: Actor,
        icn: usize,
        domain: usize,
        action: DomainAct,
    ) -> Expect {
        if let Err(e) = self.may_keep_domains(by, icn) {
            return e;
        }
        self.domain_rules.insert((icn, domain), action);
        Expect::Ok(Detail::Done)
    }

    pub fn delete_domain_rule(&mut self, by: Actor, icn: usize, domain: usize) -> Expect {
        if let Err(e) = self.may_keep_domains(by, icn) {
            return e;
        }
        match self.domain_rules.remove(&(icn, domain)) {
            Some(_) => Expect::Ok(Detail::Done),
            None => fail(Code::NotFound, "EMAIL_DOMAIN_POLICY_NOT_FOUND"),
        }
    }
}

fn unknown_account(by: Actor) -> Expect {
    if by == Actor::Operator {
        fail(Code::NotFound, "ACCOUNT_NOT_FOUND")
    } else {
        fail(Code::PermissionDenied, "NOT_AN_ADMINISTRATOR")
    }
}
