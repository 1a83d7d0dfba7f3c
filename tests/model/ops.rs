//! The universe a history plays in, the operations it is made of, and how proptest draws them.

use proptest::prelude::*;
use proptest::sample::select;

pub type Ms = i64;
pub const MINUTE: Ms = 60_000;
pub const HOUR: Ms = 60 * MINUTE;
pub const DAY: Ms = 24 * HOUR;

/// Two accounts that may be created, and a "typo" ICN that never is.
pub const ICNS: [&str; 3] = ["1000001", "2000002", "9999999"];
/// The country each ICN belongs to (the typo's is never checked against anything).
pub const COUNTRIES: [&str; 3] = ["US", "DE", "US"];
pub const WRONG_COUNTRY: &str = "FR";
pub const TYPO_ICN: usize = 2;
/// Four people who act; the fifth (`ghost`) never does and is never designated.
pub const PEOPLE: [&str; 5] = ["ana", "ben", "cyd", "dee", "ghost"];
pub const ACTING_PEOPLE: usize = 4;
pub const CONTRACT_IDS: [&str; 2] = ["C1", "C2"];
pub const PRODUCT_LISTS: [&[&str]; 4] = [&[], &["P1"], &["P2"], &["P1", "P2"]];
/// Domains an email-domain policy may name: every person's address is in the first; the
/// second is nobody's (a rule for it must change nothing).
pub const DOMAINS: [&str; 2] = ["example.com", "partner.example"];

pub fn email(person: usize, alt: bool) -> String {
    if alt {
        format!("{}.alt@example.com", PEOPLE[person])
    } else {
        format!("{}@example.com", PEOPLE[person])
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    Person(usize),
    Operator,
    Checker,
    /// Drawn only: the n-th active administrator of the account concerned (modulo their
    /// number) when it is played, or else person n. Biases histories towards people who may
    /// act, so that the paths past the authorization checks are walked often.
    Admin(usize),
}

/// Which access request an operation names: the n-th newest of the history (modulo their
/// number), or an id that was never issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReqRef {
    Newest(usize),
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    Requested,
    AuthorizedUser,
    TechnicalContact,
}

/// What an email-domain policy does with a request from its domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DomainAct {
    AutoApprove,
    Hold,
    Refuse,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Advance(Ms),
    CreateAccount {
        by: Actor,
        icn: usize,
    },
    SetStatus {
        by: Actor,
        icn: usize,
        suspend: bool,
    },
    AddStc {
        by: Actor,
        icn: usize,
        person: usize,
        alt_email: bool,
    },
    RemoveStc {
        by: Actor,
        icn: usize,
        person: usize,
    },
    UpsertContract {
        by: Actor,
        icn: usize,
        contract: usize,
        products: usize,
        start: Ms,
        end: Ms,
        x24: bool,
    },
    RequestAccess {
        by: Actor,
        icn: usize,
        right_country: bool,
        tc: bool,
    },
    Approve {
        by: Actor,
        req: ReqRef,
        grant: Grant,
        /// `expire_time`, relative to the clock when played (None: no end).
        expire: Option<Ms>,
    },
    Deny {
        by: Actor,
        req: ReqRef,
    },
    Withdraw {
        by: Actor,
        req: ReqRef,
    },
    UpdateRole {
        by: Actor,
        icn: usize,
        person: usize,
        tc: bool,
        /// `expire_time`, relative to the clock when played (None: no end).
        expire: Option<Ms>,
    },
    RemoveMember {
        by: Actor,
        icn: usize,
        person: usize,
    },
    /// CertifyMember: confirm a member after a renewal.
    Certify {
        by: Actor,
        icn: usize,
        person: usize,
    },
    VerifyEmail {
        by: Actor,
        right_code: bool,
    },
    SendVerification {
        by: Actor,
    },
    ListMembers {
        by: Actor,
        icn: usize,
    },
    ListRequests {
        by: Actor,
        icn: usize,
    },
    SetDomainRule {
        by: Actor,
        icn: usize,
        domain: usize,
        action: DomainAct,
    },
    DeleteDomainRule {
        by: Actor,
        icn: usize,
        domain: usize,
    },
}

fn person() -> impl Strategy<Value = usize> {
    0..ACTING_PEOPLE
}

/// Anyone, mostly people.
fn anyone() -> impl Strategy<Value = Actor> {
    prop_oneof![
        8 => person().prop_map(Actor::Person),
        1 => Just(Actor::Operator),
        1 => Just(Actor::Checker),
    ]
}

/// Often an administrator of the account concerned, else anyone.
fn administrator() -> impl Strategy<Value = Actor> {
    prop_oneof![1 => (0..ACTING_PEOPLE).prop_map(Actor::Admin), 1 => anyone()]
}

/// Mostly the operator; sometimes someone who may not do operators' work.
fn mostly_operator() -> impl Strategy<Value = Actor> {
    prop_oneof![
        8 => Just(Actor::Operator),
        2 => person().prop_map(Actor::Person),
        1 => Just(Actor::Checker),
    ]
}

/// Often an administrator (who may be an STC), sometimes the operator, else anyone.
fn stc_or_anyone() -> impl Strategy<Value = Actor> {
    prop_oneof![3 => (0..ACTING_PEOPLE).prop_map(Actor::Admin), 1 => Just(Actor::Operator), 2 => anyone()]
}

fn domain_act() -> impl Strategy<Value = DomainAct> {
    select(vec![
        DomainAct::AutoApprove,
        DomainAct::Hold,
        DomainAct::Refuse,
    ])
}

fn icn() -> impl Strategy<Value = usize> {
    prop_oneof![5 => Just(0usize), 3 => Just(1usize), 1 => Just(TYPO_ICN)]
}

fn real_icn() -> impl Strategy<Value = usize> {
    prop_oneof![2 => Just(0usize), 1 => Just(1usize)]
}

/// Targets of member operations include the ghost, who is never anyone's member.
fn target() -> impl Strategy<Value = usize> {
    prop_oneof![6 => person(), 1 => Just(PEOPLE.len() - 1)]
}

fn req_ref() -> impl Strategy<Value = ReqRef> {
    prop_oneof![8 => (0..3usize).prop_map(ReqRef::Newest), 1 => Just(ReqRef::Unknown)]
}

fn advance() -> impl Strategy<Value = Ms> {
    select(vec![
        MINUTE,
        2 * MINUTE,
        30 * MINUTE,
        HOUR,
        DAY,
        7 * DAY,
        29 * DAY,
        30 * DAY,
        31 * DAY,
        40 * DAY,
    ])
}

/// An optional end for a grant, relative to the clock: mostly none, often one the clock moves
/// (`advance`) can cross, sometimes an invalid one (not in the future, or beyond the cap).
fn expire() -> impl Strategy<Value = Option<Ms>> {
    prop_oneof![
        6 => Just(None),
        4 => select(vec![MINUTE, 30 * MINUTE, HOUR, DAY, 7 * DAY, 30 * DAY, 365 * DAY]).prop_map(Some),
        1 => select(vec![-MINUTE, 0, 1097 * DAY]).prop_map(Some),
    ]
}

fn contract() -> impl Strategy<Value = Op> {
    let start = select(vec![-40 * DAY, -DAY, -HOUR, 0, HOUR, DAY, 10 * DAY]);
    let end = select(vec![-DAY, 0, HOUR, DAY, 31 * DAY, 365 * DAY]);
    (
        mostly_operator(),
        icn(),
        0..2usize,
        0..4usize,
        start,
        end,
        any::<bool>(),
    )
        .prop_map(
            |(by, icn, contract, products, start, end, x24)| Op::UpsertContract {
                by,
                icn,
                contract,
                products,
                start,
                end,
                x24,
            },
        )
}

/// One step of a history.
pub fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => advance().prop_map(Op::Advance),
        3 => (mostly_operator(), real_icn()).prop_map(|(by, icn)| Op::CreateAccount { by, icn }),
        3 => (mostly_operator(), icn(), any::<bool>())
            .prop_map(|(by, icn, suspend)| Op::SetStatus { by, icn, suspend }),
        5 => (mostly_operator(), icn(), person(), prop::bool::weighted(0.2))
            .prop_map(|(by, icn, person, alt_email)| Op::AddStc { by, icn, person, alt_email }),
        2 => (mostly_operator(), icn(), target())
            .prop_map(|(by, icn, person)| Op::RemoveStc { by, icn, person }),
        5 => contract(),
        10 => (anyone(), icn(), prop::bool::weighted(0.85), any::<bool>()).prop_map(
            |(by, icn, right_country, tc)| Op::RequestAccess { by, icn, right_country, tc }
        ),
        8 => (administrator(), req_ref(), select(vec![Grant::Requested, Grant::AuthorizedUser, Grant::TechnicalContact]), expire())
            .prop_map(|(by, req, grant, expire)| Op::Approve { by, req, grant, expire }),
        4 => (administrator(), req_ref()).prop_map(|(by, req)| Op::Deny { by, req }),
        3 => (anyone(), req_ref()).prop_map(|(by, req)| Op::Withdraw { by, req }),
        4 => (administrator(), icn(), target(), any::<bool>(), expire())
            .prop_map(|(by, icn, person, tc, expire)| Op::UpdateRole { by, icn, person, tc, expire }),
        3 => (administrator(), icn(), target()).prop_map(|(by, icn, person)| Op::RemoveMember { by, icn, person }),
        4 => (administrator(), icn(), target()).prop_map(|(by, icn, person)| Op::Certify { by, icn, person }),
        8 => (anyone(), prop::bool::weighted(0.75))
            .prop_map(|(by, right_code)| Op::VerifyEmail { by, right_code }),
        3 => anyone().prop_map(|by| Op::SendVerification { by }),
        2 => (administrator(), icn()).prop_map(|(by, icn)| Op::ListMembers { by, icn }),
        2 => (administrator(), icn()).prop_map(|(by, icn)| Op::ListRequests { by, icn }),
        3 => (stc_or_anyone(), icn(), prop_oneof![4 => Just(0usize), 1 => Just(1usize)], domain_act())
            .prop_map(|(by, icn, domain, action)| Op::SetDomainRule { by, icn, domain, action }),
        2 => (stc_or_anyone(), icn(), prop_oneof![4 => Just(0usize), 1 => Just(1usize)])
            .prop_map(|(by, icn, domain)| Op::DeleteDomainRule { by, icn, domain }),
    ]
}

/// The opening of a history: blocks of the setting-up an operator and the first people do,
/// so most histories reach the interesting states. Shrinking may drop any of it.
fn setup_block() -> impl Strategy<Value = Vec<Op>> {
    let op = Actor::Operator;
    prop_oneof![
        // An STC who verifies their email at once: an administrator.
        4 => (real_icn(), person()).prop_map(move |(icn, person)| {
            vec![
                Op::AddStc { by: op, icn, person, alt_email: false },
                Op::VerifyEmail { by: Actor::Person(person), right_code: true },
            ]
        }),
        2 => (real_icn(), 0..4usize, any::<bool>()).prop_map(move |(icn, products, x24)| {
            let (start, end) = (-DAY, 365 * DAY);
            vec![Op::UpsertContract { by: op, icn, contract: 0, products, start, end, x24 }]
        }),
        2 => (person(), real_icn(), any::<bool>()).prop_map(|(p, icn, tc)| {
            vec![Op::RequestAccess { by: Actor::Person(p), icn, right_country: true, tc }]
        }),
    ]
}

/// A whole history: one or two accounts created, up to 5 setup blocks, then `min..=max`
/// random steps. The parts are drawn steps first: proptest shrinks a tuple in that order, and
/// vectors (which shrink by dropping operations) shrink best.
pub fn history(min: usize, max: usize) -> impl Strategy<Value = Vec<Op>> {
    (
        prop::collection::vec(op(), min..=max),
        prop::collection::vec(setup_block(), 0..=5),
        prop::collection::vec(real_icn(), 1..=2),
    )
        .prop_map(|(steps, setup, mut accounts)| {
            accounts.dedup();
            let create = accounts.into_iter().map(|icn| Op::CreateAccount {
                by: Actor::Operator,
                icn,
            });
            create
                .chain(setup.into_iter().flatten())
                .chain(steps)
                .collect()
        })
}

impl Op {
    /// The same operation with every actor passed through `f`.
    pub fn with_actor(&self, f: impl Fn(Actor) -> Actor) -> Op {
        let mut op = self.clone();
        match &mut op {
            Op::Advance(_) => {}
            Op::CreateAccount { by, .. }
            | Op::SetStatus { by, .. }
            | Op::AddStc { by, .. }
            | Op::RemoveStc { by, .. }
            | Op::UpsertContract { by, .. }
            | Op::RequestAccess { by, .. }
            | Op::Approve { by, .. }
            | Op::Deny { by, .. }
            | Op::Withdraw { by, .. }
            | Op::UpdateRole { by, .. }
            | Op::RemoveMember { by, .. }
            | Op::Certify { by, .. }
            | Op::VerifyEmail { by, .. }
            | Op::SendVerification { by }
            | Op::ListMembers { by, .. }
            | Op::ListRequests { by, .. }
            | Op::SetDomainRule { by, .. }
            | Op::DeleteDomainRule { by, .. } => *by = f(*by),
        }
        op
    }
}
