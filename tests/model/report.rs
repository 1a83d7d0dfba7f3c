//! Comparing answers and telling the story of a divergence readably: how operations, actors
//! and the model's state are written in a failure message.

use std::fmt;

use crate::support::Backend;

use super::checks;
use super::exec::Detail as Got;
use super::ops::{
    ACTING_PEOPLE, Actor, CONTRACT_IDS, COUNTRIES, DAY, DOMAINS, HOUR, ICNS, MINUTE, Ms, Op,
    PEOPLE, PRODUCT_LISTS, WRONG_COUNTRY, email,
};
use super::reference::{Detail, Expect, LiveCode, Model};

/// One divergence: a short kind (for the tally) and the full story.
pub struct Divergence {
    pub kinds: Vec<String>,
    pub text: String,
}

pub fn history_text(history: &[Op], upto: usize) -> String {
    history[..=upto.min(history.len().saturating_sub(1))]
        .iter()
        .enumerate()
        .map(|(i, op)| format!("  {i:>3}. {op}\n"))
        .collect()
}

/// The readable story of a divergence at step `i`.
pub fn story(backend: Backend, history: &[Op], i: usize, what: &str, model: &Model) -> String {
    format!(
        "MODEL DIVERGENCE on {backend:?} at step {i} of {} ({}):\n{what}\nhistory so far:\n{}model state after the step: {}",
        history.len(),
        history
            .get(i)
            .map(|o| o.to_string())
            .unwrap_or_else(|| "end of history".into()),
        history_text(history, i),
        model.describe()
    )
}

pub fn expect_text(e: &Expect) -> String {
    match e {
        Expect::Ok(d) => format!("OK {d:?}"),
        Expect::Err(c, r) => format!("{c:?} {r}"),
    }
}

/// Compares a mutation's answer; on success, learns the ids of new requests.
pub fn same_answer(
    want: &Expect,
    got: &Result<Got, (tonic::Code, String)>,
    ids: &mut Vec<String>,
) -> bool {
    match (want, got) {
        (Expect::Err(c, r), Err((gc, gr))) => c == gc && r == gr,
        (Expect::Ok(Detail::NewRequest(i)), Ok(Got::RequestId(id))) => {
            let fresh = *i == ids.len() && !ids.contains(id);
            ids.push(id.clone());
            fresh
        }
        (Expect::Ok(Detail::SameRequest(i)), Ok(Got::RequestId(id))) => ids.get(*i) == Some(id),
        (Expect::Ok(Detail::Members(m)), Ok(Got::Members(g))) => {
            let want: Vec<(String, i32)> = m
                .iter()
                .map(|(p, r)| (PEOPLE[*p].to_owned(), checks::role(Some(*r)) as i32))
                .collect();
            &want == g
        }
        (Expect::Ok(Detail::Requests(r)), Ok(Got::Requests(g))) => {
            let want: Vec<(String, i32)> = r
                .iter()
                .map(|(i, s)| {
                    (
                        ids.get(*i).cloned().unwrap_or_default(),
                        checks::state(*s) as i32,
                    )
                })
                .collect();
            &want == g
        }
        (Expect::Ok(_), Ok(_)) => matches!(want, Expect::Ok(Detail::Done)),
        _ => false,
    }
}

pub fn rpc_name(op: &Op) -> String {
    let s = op.to_string();
    let after = s.split_once(": ").map_or(s.as_str(), |(_, rest)| rest);
    after.split(' ').next().unwrap_or("").to_owned()
}

pub fn fail_at(
    backend: Backend,
    history: &[Op],
    i: usize,
    what: &str,
    model: &Model,
    kind: String,
) -> Divergence {
    Divergence {
        kinds: vec![kind],
        text: story(backend, history, i, what, model),
    }
}

pub fn check_divergence(
    backend: Backend,
    history: &[Op],
    i: usize,
    wrong: &[checks::Mismatch],
    model: &Model,
) -> Divergence {
    let mut what: String = wrong
        .iter()
        .take(12)
        .map(|m| format!("  {}\n", m.text))
        .collect();
    if wrong.len() > 12 {
        what += &format!("  ... and {} more checks\n", wrong.len() - 12);
    }
    let mut kinds: Vec<String> = wrong.iter().map(|m| m.kind.clone()).collect();
    kinds.sort();
    kinds.dedup();
    Divergence {
        kinds,
        text: story(backend, history, i, what.trim_end(), model),
    }
}

pub fn merge(into: &mut Divergence, d: Divergence) {
    for k in d.kinds {
        if !into.kinds.contains(&k) {
            into.kinds.push(k);
        }
    }
    if into.text.is_empty() {
        into.text = d.text;
    }
}

impl Model {
    /// A one-line picture of the state, for failure messages.
    pub fn describe(&self) -> String {
        let mut out = format!("now={} ", self.now);
        for (i, a) in self.accounts.iter().enumerate() {
            if let Some(a) = a {
                out += &format!(
                    "[{} {} contracts={:?}] ",
                    ICNS[i],
                    if a.suspended { "SUSPENDED" } else { "ACTIVE" },
                    a.contracts.keys().collect::<Vec<_>>()
                );
            }
        }
        for ((icn, d), action) in &self.domain_rules {
            out += &format!("{}@{}:{action:?} ", DOMAINS[*d], ICNS[*icn]);
        }
        for ((icn, p), m) in &self.members {
            out += &format!(
                "{}@{}={:?}{} ",
                PEOPLE[*p],
                ICNS[*icn],
                m.role,
                if m.removed_at.is_some() {
                    "(removed)"
                } else {
                    ""
                }
            );
        }
        for (name, s) in PEOPLE.iter().zip(&self.people).take(ACTING_PEOPLE) {
            out += &format!(
                "{name}:{}{}{} ",
                if s.verified { "verified" } else { "unverified" },
                if s.alt_email { ",alt-email" } else { "" },
                s.code.as_ref().map(code_note).unwrap_or_default()
            );
        }
        for (i, r) in self.requests.iter().enumerate() {
            out += &format!(
                "req#{i}({}@{} {:?} {:?}) ",
                PEOPLE[r.person],
                ICNS[r.icn],
                r.requested,
                self.state_of(r)
            );
        }
        out
    }
}

fn code_note(c: &LiveCode) -> String {
    format!(",code#{}(wrong={})", c.nth, c.wrong_tries)
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::Person(p) => f.write_str(PEOPLE[*p]),
            Actor::Operator => f.write_str("operator"),
            Actor::Checker => f.write_str("checker"),
            Actor::Admin(n) => write!(f, "admin#{n}"),
        }
    }
}

/// A grant's end as a history shows it: ` expire=now+1h`, or nothing for none.
fn ends(expire: Option<Ms>) -> String {
    match expire {
        None => String::new(),
        Some(e) if e < 0 => format!(" expire=now-{}", duration(-e)),
        Some(e) => format!(" expire=now+{}", duration(e)),
    }
}

pub fn duration(ms: Ms) -> String {
    let sign = if ms < 0 { "-" } else { "+" };
    let a = ms.abs();
    if a % DAY == 0 && a > 0 {
        format!("{sign}{}d", a / DAY)
    } else if a % HOUR == 0 && a > 0 {
        format!("{sign}{}h", a / HOUR)
    } else {
        format!("{sign}{}min", a / MINUTE)
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let role = |tc: bool| if tc { "TC" } else { "AU" };
        match self {
            Op::Advance(ms) => write!(f, "clock {}", duration(*ms)),
            Op::CreateAccount { by, icn } => write!(f, "{by}: CreateAccount {}", ICNS[*icn]),
            Op::SetStatus { by, icn, suspend } => write!(
                f,
                "{by}: SetAccountStatus {} {}",
                ICNS[*icn],
                if *suspend { "SUSPENDED" } else { "ACTIVE" }
            ),
            Op::AddStc {
                by,
                icn,
                person,
                alt_email,
            } => write!(
                f,
                "{by}: AddSiteTechnicalContact {} {} <{}>",
                ICNS[*icn],
                PEOPLE[*person],
                email(*person, *alt_email)
            ),
            Op::RemoveStc { by, icn, person } => {
                write!(
                    f,
                    "{by}: RemoveSiteTechnicalContact {} {}",
                    ICNS[*icn], PEOPLE[*person]
                )
            }
            Op::UpsertContract {
                by,
                icn,
                contract,
                products,
                start,
                end,
                x24,
            } => write!(
                f,
                "{by}: UpsertSupportContract {} {} products={:?} [now{}, now{}) 24x7={x24}",
                ICNS[*icn],
                CONTRACT_IDS[*contract],
                PRODUCT_LISTS[*products],
                duration(*start),
                duration(*end)
            ),
            Op::RequestAccess {
                by,
                icn,
                right_country,
                tc,
            } => write!(
                f,
                "{by}: RequestAccess {} {} {}",
                ICNS[*icn],
                if *right_country {
                    COUNTRIES[*icn]
                } else {
                    WRONG_COUNTRY
                },
                role(*tc)
            ),
            Op::Approve {
                by,
                req,
                grant,
                expire,
            } => {
                write!(
                    f,
                    "{by}: ApproveRequest {req:?} grant={grant:?}{}",
                    ends(*expire)
                )
            }
            Op::Deny { by, req } => write!(f, "{by}: DenyRequest {req:?}"),
            Op::Withdraw { by, req } => write!(f, "{by}: WithdrawRequest {req:?}"),
            Op::UpdateRole {
                by,
                icn,
                person,
                tc,
                expire,
            } => write!(
                f,
                "{by}: UpdateMemberRole {} {} -> {}{}",
                ICNS[*icn],
                PEOPLE[*person],
                role(*tc),
                ends(*expire)
            ),
            Op::RemoveMember { by, icn, person } => {
                write!(f, "{by}: RemoveMember {} {}", ICNS[*icn], PEOPLE[*person])
            }
            Op::Certify { by, icn, person } => {
                write!(f, "{by}: CertifyMember {} {}", ICNS[*icn], PEOPLE[*person])
            }
            Op::VerifyEmail { by, right_code } => write!(
                f,
                "{by}: VerifyEmail {} code",
                if *right_code { "right" } else { "wrong" }
            ),
            Op::SendVerification { by } => write!(f, "{by}: SendVerificationEmail"),
            Op::ListMembers { by, icn } => write!(f, "{by}: ListMembers {}", ICNS[*icn]),
            Op::ListRequests { by, icn } => write!(f, "{by}: ListAccessRequests {}", ICNS[*icn]),
            Op::SetDomainRule {
                by,
                icn,
                domain,
                action,
            } => write!(
                f,
                "{by}: SetEmailDomainPolicy {} {} {action:?}",
                ICNS[*icn], DOMAINS[*domain]
            ),
            Op::DeleteDomainRule { by, icn, domain } => write!(
                f,
                "{by}: DeleteEmailDomainPolicy {} {}",
                ICNS[*icn], DOMAINS[*domain]
            ),
        }
    }
}
