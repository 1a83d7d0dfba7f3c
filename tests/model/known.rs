//! Hand-kept short histories that once diverged, played by the same runner as the random
//! ones. Unlike proptest's saved seeds, they do not depend on how histories are drawn. Each
//! one counts only the divergence it is about, so that one bug does not hide another.

use super::ops::{Actor, DAY, Grant, HOUR, MINUTE, Op, ReqRef};

const OP: Actor = Actor::Operator;
const ANA: Actor = Actor::Person(0);
const BEN: Actor = Actor::Person(1);
const DEE: Actor = Actor::Person(3);

fn admin_of_a() -> Vec<Op> {
    vec![
        Op::CreateAccount { by: OP, icn: 0 },
        Op::AddStc {
            by: OP,
            icn: 0,
            person: 0,
            alt_email: false,
        },
        Op::VerifyEmail {
            by: ANA,
            right_code: true,
        },
    ]
}

fn with(mut prefix: Vec<Op>, rest: &[Op]) -> Vec<Op> {
    prefix.extend_from_slice(rest);
    prefix
}

/// (what it shows, the kind of divergence it is about, the history)
pub fn histories() -> Vec<(&'static str, &'static str, Vec<Op>)> {
    let ben_asks = Op::RequestAccess {
        by: BEN,
        icn: 0,
        right_country: true,
        tc: false,
    };
    let suspend = Op::SetStatus {
        by: OP,
        icn: 0,
        suspend: true,
    };
    let approve = Op::Approve {
        by: ANA,
        req: ReqRef::Newest(0),
        grant: Grant::Requested,
        expire: None,
    };
    let check_now = |by| Op::ListMembers { by, icn: 0 };
    vec![
        (
            "a check of an unknown ICN must not make a verified person look unverified",
            "server DECISION_REASON_EMAIL_NOT_VERIFIED",
            admin_of_a(),
        ),
        (
            "a pending request is expired from its deadline, swept or not",
            "check: model DECISION_REASON_NOT_A_MEMBER",
            vec![
                Op::CreateAccount { by: OP, icn: 1 },
                Op::RequestAccess {
                    by: ANA,
                    icn: 1,
                    right_country: true,
                    tc: false,
                },
                Op::Advance(30 * DAY),
            ],
        ),
        (
            "a non-administrator reading a suspended account is told they are not one",
            "ListMembers",
            vec![
                Op::CreateAccount { by: OP, icn: 0 },
                suspend.clone(),
                Op::ListMembers { by: DEE, icn: 0 },
            ],
        ),
        (
            "an administrator may not deny a request on a suspended account",
            "DenyRequest",
            with(
                admin_of_a(),
                &[
                    ben_asks.clone(),
                    suspend.clone(),
                    Op::Deny {
                        by: ANA,
                        req: ReqRef::Newest(0),
                    },
                ],
            ),
        ),
        (
            "an administrator may not remove a member of a suspended account",
            "RemoveMember",
            with(
                admin_of_a(),
                &[
                    ben_asks.clone(),
                    approve.clone(),
                    suspend,
                    Op::RemoveMember {
                        by: ANA,
                        icn: 0,
                        person: 1,
                    },
                ],
            ),
        ),
        (
            "a time-boxed grant answers ACCESS_REVOKED from its end, swept or not, is no \
             longer listed, and a later approval without an end clears it",
            "",
            with(
                admin_of_a(),
                &[
                    ben_asks.clone(),
                    Op::Approve {
                        by: ANA,
                        req: ReqRef::Newest(0),
                        grant: Grant::Requested,
                        expire: Some(HOUR),
                    },
                    Op::Advance(30 * MINUTE),
                    check_now(ANA),
                    Op::Advance(30 * MINUTE),
                    check_now(ANA),
                    // Lapsed: ben asks again, and is granted without an end.
                    ben_asks.clone(),
                    Op::Approve {
                        by: ANA,
                        req: ReqRef::Newest(0),
                        grant: Grant::Requested,
                        expire: None,
                    },
                    Op::Advance(400 * DAY),
                    check_now(ANA),
                ],
            ),
        ),
        (
            "a role change sets, moves and clears a grant's end; an end not in the future is \
             INVALID_ARGUMENT",
            "",
            with(
                admin_of_a(),
                &[
                    ben_asks.clone(),
                    approve.clone(),
                    Op::UpdateRole {
                        by: ANA,
                        icn: 0,
                        person: 1,
                        tc: true,
                        expire: Some(0),
                    },
                    Op::UpdateRole {
                        by: ANA,
                        icn: 0,
                        person: 1,
                        tc: true,
                        expire: Some(DAY),
                    },
                    Op::UpdateRole {
                        by: ANA,
                        icn: 0,
                        person: 1,
                        tc: false,
                        expire: None,
                    },
                    Op::Advance(2 * DAY),
                    Op::UpdateRole {
                        by: ANA,
                        icn: 0,
                        person: 1,
                        tc: true,
                        expire: Some(HOUR),
                    },
                    Op::Advance(HOUR),
                    Op::RemoveMember {
                        by: ANA,
                        icn: 0,
                        person: 1,
                    },
                ],
            ),
        ),
        (
            "after a renewal, the members nobody confirmed lose their access at the deadline, \
             the confirmed and the STC keep it, and a member removed and approved again at \
             the same instant owes nothing",
            "",
            with(
                admin_of_a(),
                &[
                    Op::UpsertContract {
                        by: OP,
                        icn: 0,
                        contract: 0,
                        products: 0,
                        start: -DAY,
                        end: 31 * DAY,
                        x24: true,
                    },
                    ben_asks.clone(),
                    approve.clone(),
                    Op::VerifyEmail {
                        by: BEN,
                        right_code: true,
                    },
                    Op::RequestAccess {
                        by: DEE,
                        icn: 0,
                        right_country: true,
                        tc: true,
                    },
                    approve.clone(),
                    Op::VerifyEmail {
                        by: DEE,
                        right_code: true,
                    },
                    // The renewal: the same contract ends later.
                    Op::UpsertContract {
                        by: OP,
                        icn: 0,
                        contract: 0,
                        products: 0,
                        start: -DAY,
                        end: 365 * DAY,
                        x24: true,
                    },
                    // Dee may not confirm herself; Ana confirms Ben; Dee is not confirmed.
                    Op::Certify {
                        by: DEE,
                        icn: 0,
                        person: 3,
                    },
                    Op::Certify {
                        by: ANA,
                        icn: 0,
                        person: 1,
                    },
                    Op::Certify {
                        by: BEN,
                        icn: 0,
                        person: 3,
                    },
                    Op::Advance(29 * DAY),
                    Op::Advance(DAY),
                    Op::Certify {
                        by: ANA,
                        icn: 0,
                        person: 3,
                    },
                    Op::Advance(DAY),
                ],
            ),
        ),
        (
            "the highest severity follows the covering contracts' 24x7, and names the next step",
            "check: model",
            with(
                admin_of_a(),
                &[
                    Op::UpsertContract {
                        by: OP,
                        icn: 0,
                        contract: 0,
                        products: 1,
                        start: -DAY,
                        end: 31 * DAY,
                        x24: false,
                    },
                    Op::UpsertContract {
                        by: OP,
                        icn: 0,
                        contract: 1,
                        products: 2,
                        start: -DAY,
                        end: 31 * DAY,
                        x24: true,
                    },
                ],
            ),
        ),
    ]
}
