//! The reference model: the domain's rules written again, small and plain, from DOMAIN.md and
//! the service's documented behaviour. It shares no code with the service: if both agree, it
//! is because both follow the rules, not because one calls the other.
//!
//! It models the TARGET semantics (see `mod.rs`): a pending request past its deadline counts
//! as expired from that instant; administrators act only on active accounts; a check never
//! depends on what was asked before it.

use std::collections::{BTreeMap, HashMap};

use tonic::Code;

use super::ops::{Actor, CONTRACT_IDS, DAY, DomainAct, MINUTE, Ms, Op, PRODUCT_LISTS};

pub const REQUEST_TTL: Ms = 30 * DAY;
/// One person may ask for one account this many times a day; the next is refused.
pub const REQUESTS_PER_DAY: usize = 5;
pub const CODE_TTL: Ms = DAY;
pub const RESEND_GAP: Ms = MINUTE;
pub const SEND_WINDOW: Ms = 60 * MINUTE;
pub const SENDS_PER_WINDOW: u32 = 5;
pub const MAX_WRONG_TRIES: u32 = 5;
/// How far ahead a grant's end may be.
pub const MAX_GRANT_AHEAD: Ms = 1096 * DAY;
/// `--recertify-within`: members must be confirmed this long after a renewal.
pub const RECERTIFY_WITHIN: Ms = 30 * DAY;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    ProvisionalCaller,
    AuthorizedUser,
    TechnicalContact,
    SiteTechnicalContact,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Pending,
    Approved,
    Denied,
    Withdrawn,
    Expired,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Granted,
    UnknownAccount,
    AccountSuspended,
    NotAMember,
    RequestPending,
    RequestDenied,
    AccessRevoked,
    EmailNotVerified,
    RoleInsufficient,
    NoActiveContract,
    ProductNotCovered,
    SeverityNotCovered,
}

/// What a refusal tells the person to do, as the ticketing system (which sees it all) is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    VerifyEmail,
    WaitForDecision,
    RequestAccess,
    AskForHigherRole,
    ContactSiteTechnicalContact,
    OpenAtLowerSeverity,
    ContactSupport,
    CheckAccountNumber,
}

impl Reason {
    /// The next step of each refusal, from the list.
    pub fn next(self) -> Option<Next> {
        Some(match self {
            Reason::Granted => return None,
            Reason::UnknownAccount => Next::CheckAccountNumber,
            Reason::AccountSuspended => Next::ContactSupport,
            Reason::NotAMember | Reason::RequestDenied | Reason::AccessRevoked => {
                Next::RequestAccess
            }
            Reason::RequestPending => Next::WaitForDecision,
            Reason::EmailNotVerified => Next::VerifyEmail,
            Reason::RoleInsufficient => Next::AskForHigherRole,
            Reason::NoActiveContract | Reason::ProductNotCovered => {
                Next::ContactSiteTechnicalContact
            }
            Reason::SeverityNotCovered => Next::OpenAtLowerSeverity,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    OpenServiceRequest,
    ViewSupportArea,
    ManageUsers,
}

/// One CheckEntitlement question.
#[derive(Debug, Clone, Copy)]
pub struct Question {
    pub person: usize,
    pub icn: usize,
    pub action: Action,
    pub product: Option<&'static str>,
    pub severity_1: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    pub allowed: bool,
    pub reason: Reason,
    pub role: Option<Role>,
    /// The highest severity one may open a service request at (0: none): only for an
    /// OPEN_SERVICE_REQUEST allowed or refused for its severity alone.
    pub severity: u8,
}

#[derive(Debug, Clone)]
pub struct Contract {
    pub products: &'static [&'static str],
    pub start: Ms,
    pub end: Ms,
    pub x24: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Account {
    pub suspended: bool,
    pub contracts: BTreeMap<&'static str, Contract>,
}

#[derive(Debug, Clone, Copy)]
pub struct Membership {
    pub role: Role,
    pub removed_at: Option<Ms>,
    /// A time-boxed grant's end (exclusive): from then on it has lapsed.
    pub expires: Option<Ms>,
    /// After a renewal of a contract of the account: the deadline by which an administrator
    /// must confirm this member (never an STC), else the sweeper removes them.
    pub recertify: Option<Ms>,
}

impl Membership {
    /// When it ended as of `now`: removed, or past its end (recorded or not).
    pub fn ended(&self, now: Ms) -> Option<Ms> {
        self.removed_at.or(self.expires.filter(|&e| e <= now))
    }
}

#[derive(Debug, Clone)]
pub struct Request {
    pub icn: usize,
    pub person: usize,
    pub requested: Role,
    pub state: State,
    pub created: Ms,
    pub updated: Ms,
    pub expires: Ms,
}

/// The one live verification code of a person.
#[derive(Debug, Clone)]
pub struct LiveCode {
    pub alt_email: bool,
    /// It is the `nth` verification email to its address (1-based).
    pub nth: usize,
    pub sent: Ms,
    pub expires: Ms,
    pub wrong_tries: u32,
    pub window_start: Ms,
    pub sends_in_window: u32,
}

#[derive(Debug, Clone, Default)]
pub struct Person {
    /// The service has a record of them (their own call or an operator's made one).
    pub known: bool,
    /// The operator may have given another address than the person's own token carries
    /// (only for someone new to the service: a known person's address is their own).
    pub alt_email: bool,
    pub verified: bool,
    pub code: Option<LiveCode>,
}

/// What the model says an operation answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    Ok(Detail),
    Err(Code, &'static str),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detail {
    Done,
    /// A new request: its index in the history's requests.
    NewRequest(usize),
    /// The request already open (index), answered again.
    SameRequest(usize),
    /// Active members, by Web ID: (person, role).
    Members(Vec<(usize, Role)>),
    /// The account's requests, newest first: (index, state).
    Requests(Vec<(usize, State)>),
}

pub fn fail(code: Code, reason: &'static str) -> Expect {
    Expect::Err(code, reason)
}

#[derive(Debug, Clone)]
pub struct Model {
    pub now: Ms,
    pub accounts: [Option<Account>; 3],
    pub people: [Person; 5],
    pub members: BTreeMap<(usize, usize), Membership>,
    pub requests: Vec<Request>,
    /// Verification emails sent per address.
    pub codes_sent: HashMap<String, usize>,
    /// Lapses of time-boxed grants recorded per (account, person): each exactly once.
    pub lapses: BTreeMap<(usize, usize), usize>,
    /// Email-domain policies per (account, index into DOMAINS).
    pub domain_rules: BTreeMap<(usize, usize), DomainAct>,
    /// Members removed by the sweeper because nobody confirmed them in time after a renewal,
    /// per (account, person): each removal exactly once.
    pub unrecertified: BTreeMap<(usize, usize), usize>,
}

impl Model {
    pub fn new(now: Ms) -> Self {
        Self {
            now,
            accounts: Default::default(),
            people: Default::default(),
            members: BTreeMap::new(),
            requests: Vec::new(),
            codes_sent: HashMap::new(),
            lapses: BTreeMap::new(),
            domain_rules: BTreeMap::new(),
            unrecertified: BTreeMap::new(),
        }
    }

    /// The state a request is in now: a pending one past its deadline has expired.
    pub fn state_of(&self, r: &Request) -> State {
        if r.state == State::Pending && self.now >= r.expires {
            State::Expired
        } else {
            r.state
        }
    }

    pub fn active_role(&self, icn: usize, person: usize) -> Option<Role> {
        self.members
            .get(&(icn, person))
            .filter(|m| m.ended(self.now).is_none())
            .map(|m| m.role)
    }

    /// An end given to a grant: in the future, at most MAX_GRANT_AHEAD ahead.
    pub fn valid_end(&self, expire: Option<Ms>) -> Result<Option<Ms>, Expect> {
        match expire {
            Some(e) if e <= self.now || e - self.now > MAX_GRANT_AHEAD => {
                Err(fail(Code::InvalidArgument, "INVALID_ARGUMENT"))
            }
            e => Ok(e),
        }
    }

    /// The sweeper: every grant past its end is recorded as ended then, once.
    pub fn record_lapses(&mut self) {
        let now = self.now;
        for (key, m) in self.members.iter_mut() {
            if let (None, Some(end)) = (m.removed_at, m.expires.filter(|&e| e <= now)) {
                m.removed_at = Some(end);
                *self.lapses.entry(*key).or_default() += 1;
            }
        }
    }

    /// The sweeper, after the lapses: every member (not an STC) still active whose
    /// recertification deadline passed unconfirmed is removed now, once. Returns how many.
    pub fn record_unrecertified(&mut self) -> usize {
        let now = self.now;
        let mut n = 0;
        for (key, m) in self.members.iter_mut() {
            let due = m.recertify.is_some_and(|d| d <= now);
            if due && m.ended(now).is_none() && m.role != Role::SiteTechnicalContact {
                m.removed_at = Some(now);
                m.recertify = None;
                *self.unrecertified.entry(*key).or_default() += 1;
                n += 1;
            }
        }
        n
    }

    /// An active STC or TC (verification is checked separately, for its own error).
    pub fn is_admin(&self, icn: usize, actor: Actor) -> bool {
        match actor {
            Actor::Person(p) => self
                .active_role(icn, p)
                .is_some_and(|r| r >= Role::TechnicalContact),
            _ => false,
        }
    }

    pub fn verified(&self, actor: Actor) -> bool {
        matches!(actor, Actor::Person(p) if self.people[p].verified)
    }

    /// CheckEntitlement, from the rules.
    pub fn check(&self, q: &Question) -> Answer {
        let deny = |reason, role| Answer {
            allowed: false,
            reason,
            role,
            severity: 0,
        };
        let grant = |role| Answer {
            allowed: true,
            reason: Reason::Granted,
            role: Some(role),
            severity: 0,
        };
        let Some(account) = &self.accounts[q.icn] else {
            return deny(Reason::UnknownAccount, None);
        };
        let role = self.active_role(q.icn, q.person);
        if account.suspended {
            return deny(Reason::AccountSuspended, role);
        }
        let Some(role) = role else {
            return self.why_not_a_member(q);
        };
        let verified = self.people[q.person].verified;
        match q.action {
            Action::ViewSupportArea => grant(role),
            Action::ManageUsers if role < Role::TechnicalContact => {
                deny(Reason::RoleInsufficient, Some(role))
            }
            Action::ManageUsers if !verified => deny(Reason::EmailNotVerified, Some(role)),
            Action::ManageUsers => grant(role),
            Action::OpenServiceRequest if role < Role::AuthorizedUser => {
                deny(Reason::RoleInsufficient, Some(role))
            }
            Action::OpenServiceRequest if !verified => deny(Reason::EmailNotVerified, Some(role)),
            Action::OpenServiceRequest => {
                let in_force: Vec<&Contract> = account
                    .contracts
                    .values()
                    .filter(|c| c.start <= self.now && self.now < c.end)
                    .collect();
                let covering: Vec<&&Contract> = in_force
                    .iter()
                    .filter(|c| {
                        q.product
                            .is_none_or(|p| c.products.is_empty() || c.products.contains(&p))
                    })
                    .collect();
                let x24 = covering.iter().any(|c| c.x24);
                let severity = if x24 { 1 } else { 2 };
                if in_force.is_empty() {
                    deny(Reason::NoActiveContract, Some(role))
                } else if covering.is_empty() {
                    deny(Reason::ProductNotCovered, Some(role))
                } else if q.severity_1 && !x24 {
                    Answer {
                        severity,
                        ..deny(Reason::SeverityNotCovered, Some(role))
                    }
                } else {
                    Answer {
                        severity,
                        ..grant(role)
                    }
                }
            }
        }
    }

    /// No active membership: the latest request says why, else a removal, else nothing.
    fn why_not_a_member(&self, q: &Question) -> Answer {
        let deny = |reason| Answer {
            allowed: false,
            reason,
            role: None,
            severity: 0,
        };
        // A lapsed grant ended at its end, as a removal then would have.
        let removed_at = self
            .members
            .get(&(q.icn, q.person))
            .and_then(|m| m.ended(self.now));
        let latest = self
            .requests
            .iter()
            .rev()
            .find(|r| r.icn == q.icn && r.person == q.person);
        match latest.map(|r| (self.state_of(r), r.updated)) {
            Some((State::Pending, _)) if q.action == Action::ViewSupportArea => Answer {
                allowed: true,
                reason: Reason::Granted,
                role: Some(Role::ProvisionalCaller),
                severity: 0,
            },
            Some((State::Pending, _)) => Answer {
                allowed: false,
                reason: Reason::RequestPending,
                role: Some(Role::ProvisionalCaller),
                severity: 0,
            },
            // A denial after (or at) the last removal is the latest news.
            Some((State::Denied, at)) if removed_at.is_none_or(|r| at >= r) => {
                deny(Reason::RequestDenied)
            }
            _ if removed_at.is_some() => deny(Reason::AccessRevoked),
            _ => deny(Reason::NotAMember),
        }
    }

    /// Applies one operation and says what it answers.
    pub fn step(&mut self, op: &Op) -> Expect {
        match *op {
            Op::Advance(ms) => {
                self.now += ms;
                self.record_lapses();
                self.record_unrecertified();
                Expect::Ok(Detail::Done)
            }
            Op::CreateAccount { by, icn } => self.create_account(by, icn),
            Op::SetStatus { by, icn, suspend } => self.set_status(by, icn, suspend),
            Op::AddStc {
                by,
                icn,
                person,
                alt_email,
            } => self.add_stc(by, icn, person, alt_email),
            Op::RemoveStc { by, icn, person } => self.remove_stc(by, icn, person),
            Op::UpsertContract {
                by,
                icn,
                contract,
                products,
                start,
                end,
                x24,
            } => {
                let c = Contract {
                    products: PRODUCT_LISTS[products],
                    start: self.now + start,
                    end: self.now + end,
                    x24,
                };
                self.upsert_contract(by, icn, CONTRACT_IDS[contract], c)
            }
            Op::RequestAccess {
                by,
                icn,
                right_country,
                tc,
            } => {
                let role = if tc {
                    Role::TechnicalContact
                } else {
                    Role::AuthorizedUser
                };
                self.request_access(by, icn, right_country, role)
            }
            Op::Approve {
                by,
                req,
                grant,
                expire,
            } => self.approve(by, req, grant, expire.map(|e| self.now + e)),
            Op::Deny { by, req } => self.deny(by, req),
            Op::Withdraw { by, req } => self.withdraw(by, req),
            Op::UpdateRole {
                by,
                icn,
                person,
                tc,
                expire,
            } => {
                let role = if tc {
                    Role::TechnicalContact
                } else {
                    Role::AuthorizedUser
                };
                self.update_role(by, icn, person, role, expire.map(|e| self.now + e))
            }
            Op::RemoveMember { by, icn, person } => self.remove_member(by, icn, person),
            Op::Certify { by, icn, person } => self.certify(by, icn, person),
            Op::VerifyEmail { by, right_code } => self.verify_email(by, right_code),
            Op::SendVerification { by } => self.send_verification(by),
            Op::ListMembers { by, icn } => self.list_members(by, icn),
            Op::ListRequests { by, icn } => self.list_requests(by, icn),
            Op::SetDomainRule {
                by,
                icn,
                domain,
                action,
            } => self.set_domain_rule(by, icn, domain, action),
            Op::DeleteDomainRule { by, icn, domain } => self.delete_domain_rule(by, icn, domain),
        }
    }
}
