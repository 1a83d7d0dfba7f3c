use super::*;
use crate::domain::ids::Icn;
use crate::domain::next_step;

const NOW: Millis = 1_000_000;

fn member(role: Role) -> MemberStatus {
    MemberStatus {
        role,
        removed_at: None,
        expires_at: None,
    }
}

fn contract(id: &str, products: &[&str], start: Millis, end: Millis, x24: bool) -> Contract {
    Contract {
        icn: Icn::from_trusted("1234567".into()),
        contract_id: ContractId::from_trusted(id.into()),
        product_ids: products
            .iter()
            .map(|p| ProductId::from_trusted((*p).into()))
            .collect(),
        starts_at: start,
        ends_at: end,
        includes_24x7: x24,
        updated_at: 0,
    }
}

fn req(state: AccessRequestState, changed_at: Millis) -> LatestRequest {
    LatestRequest {
        state,
        changed_at,
        expires_at: Millis::MAX,
    }
}

fn good() -> CheckFacts {
    CheckFacts {
        account_status: Some(AccountStatus::Active),
        membership: Some(member(Role::AuthorizedUser)),
        latest_request: Some(req(AccessRequestState::Approved, 10)),
        email_verified: true,
        contracts: vec![contract("C1", &[], 0, 2 * NOW, true)].into(),
    }
}

fn open(sev: Option<u8>, product: Option<&ProductId>) -> CheckInput<'_> {
    CheckInput {
        action: Action::OpenServiceRequest,
        product,
        severity: sev,
    }
}

fn view() -> CheckInput<'static> {
    CheckInput {
        action: Action::ViewSupportArea,
        product: None,
        severity: None,
    }
}

fn reason(facts: &CheckFacts, input: &CheckInput<'_>) -> DecisionReason {
    decide(facts, input, NOW).reason
}

#[test]
fn granted_when_everything_holds() {
    let d = decide(&good(), &open(Some(1), None), NOW);
    assert!(d.allowed);
    assert_eq!(d.role, Some(Role::AuthorizedUser));
    assert_eq!(d.contract_id.map(|c| c.to_string()), Some("C1".to_owned()));
}

#[test]
fn unknown_and_suspended_accounts() {
    let mut f = good();
    f.account_status = None;
    assert_eq!(
        reason(&f, &open(None, None)),
        DecisionReason::UnknownAccount
    );
    f.account_status = Some(AccountStatus::Suspended);
    for action in [
        Action::OpenServiceRequest,
        Action::ViewSupportArea,
        Action::ManageUsers,
    ] {
        let d = decide(
            &f,
            &CheckInput {
                action,
                product: None,
                severity: None,
            },
            NOW,
        );
        assert_eq!(d.reason, DecisionReason::AccountSuspended);
        assert!(!d.allowed);
    }
}

#[test]
fn membership_history_names_the_reason() {
    let mut f = good();
    f.membership = None;
    f.latest_request = None;
    assert_eq!(reason(&f, &open(None, None)), DecisionReason::NotAMember);
    f.latest_request = Some(req(AccessRequestState::Pending, 5));
    assert_eq!(
        reason(&f, &open(None, None)),
        DecisionReason::RequestPending
    );
    f.latest_request = Some(req(AccessRequestState::Denied, 5));
    assert_eq!(reason(&f, &open(None, None)), DecisionReason::RequestDenied);
    f.latest_request = Some(req(AccessRequestState::Withdrawn, 5));
    assert_eq!(reason(&f, &open(None, None)), DecisionReason::NotAMember);
    f.latest_request = Some(req(AccessRequestState::Expired, 5));
    assert_eq!(reason(&f, &open(None, None)), DecisionReason::NotAMember);
}

#[test]
fn removal_is_revocation_unless_a_later_request_was_denied() {
    let mut f = good();
    let mut m = member(Role::AuthorizedUser);
    m.removed_at = Some(100);
    f.membership = Some(m);
    f.latest_request = Some(req(AccessRequestState::Approved, 10));
    assert_eq!(reason(&f, &open(None, None)), DecisionReason::AccessRevoked);
    f.latest_request = Some(req(AccessRequestState::Denied, 50));
    assert_eq!(
        reason(&f, &open(None, None)),
        DecisionReason::AccessRevoked,
        "denied once, later a member (an operator's STC), then removed: revoked"
    );
    f.latest_request = Some(req(AccessRequestState::Denied, 200));
    assert_eq!(reason(&f, &open(None, None)), DecisionReason::RequestDenied);
    f.latest_request = Some(req(AccessRequestState::Pending, 200));
    assert_eq!(
        reason(&f, &open(None, None)),
        DecisionReason::RequestPending
    );
}

#[test]
fn provisional_callers_may_view_but_not_open() {
    let mut f = good();
    f.membership = None;
    f.latest_request = Some(req(AccessRequestState::Pending, 5));
    let view = CheckInput {
        action: Action::ViewSupportArea,
        product: None,
        severity: None,
    };
    let d = decide(&f, &view, NOW);
    assert!(d.allowed);
    assert_eq!(d.role, Some(Role::ProvisionalCaller));
    let d = decide(&f, &open(None, None), NOW);
    assert!(!d.allowed);
    assert_eq!(d.role, Some(Role::ProvisionalCaller));
}

#[test]
fn email_must_be_verified_to_open_or_manage_not_to_view() {
    let mut f = good();
    f.email_verified = false;
    assert_eq!(
        reason(&f, &open(None, None)),
        DecisionReason::EmailNotVerified
    );
    let view = CheckInput {
        action: Action::ViewSupportArea,
        product: None,
        severity: None,
    };
    assert!(decide(&f, &view, NOW).allowed);
    f.membership = Some(member(Role::TechnicalContact));
    let manage = CheckInput {
        action: Action::ManageUsers,
        product: None,
        severity: None,
    };
    assert_eq!(reason(&f, &manage), DecisionReason::EmailNotVerified);
}

#[test]
fn manage_users_needs_an_administrator() {
    let mut f = good();
    let manage = CheckInput {
        action: Action::ManageUsers,
        product: None,
        severity: None,
    };
    assert_eq!(reason(&f, &manage), DecisionReason::RoleInsufficient);
    f.membership = Some(member(Role::TechnicalContact));
    assert!(decide(&f, &manage, NOW).allowed);
    f.membership = Some(member(Role::SiteTechnicalContact));
    assert!(decide(&f, &manage, NOW).allowed);
}

#[test]
fn provisional_member_cannot_open() {
    let mut f = good();
    f.membership = Some(member(Role::ProvisionalCaller));
    assert_eq!(
        reason(&f, &open(None, None)),
        DecisionReason::RoleInsufficient
    );
}

#[test]
fn contracts_must_be_in_force_at_this_instant() {
    let mut f = good();
    f.contracts = vec![contract("C1", &[], 0, NOW, true)].into();
    assert_eq!(
        reason(&f, &open(None, None)),
        DecisionReason::NoActiveContract
    );
    assert!(decide(&f, &open(None, None), NOW - 1).allowed);
    f.contracts = vec![contract("C1", &[], NOW + 1, 2 * NOW, true)].into();
    assert_eq!(
        reason(&f, &open(None, None)),
        DecisionReason::NoActiveContract
    );
    f.contracts = Vec::new().into();
    assert_eq!(
        reason(&f, &open(None, None)),
        DecisionReason::NoActiveContract
    );
}

#[test]
fn products_and_severity() {
    let db2 = ProductId::from_trusted("db2".into());
    let mq = ProductId::from_trusted("mq".into());
    let mut f = good();
    f.contracts = vec![
        contract("C1", &["db2"], 0, 2 * NOW, false),
        contract("C2", &["mq"], 0, 2 * NOW, true),
    ]
    .into();
    assert_eq!(
        reason(
            &f,
            &open(None, Some(&ProductId::from_trusted("was".into())))
        ),
        DecisionReason::ProductNotCovered
    );
    assert!(decide(&f, &open(Some(2), Some(&db2)), NOW).allowed);
    assert_eq!(
        reason(&f, &open(Some(1), Some(&db2))),
        DecisionReason::SeverityNotCovered
    );
    let d = decide(&f, &open(Some(1), Some(&mq)), NOW);
    assert!(d.allowed);
    assert_eq!(d.contract_id.map(|c| c.to_string()), Some("C2".to_owned()));
    // Severity 1 with no product named: any 24x7 contract in force serves.
    assert!(decide(&f, &open(Some(1), None), NOW).allowed);
}

#[test]
fn an_overdue_pending_request_counts_as_expired_before_the_sweeper_records_it() {
    let mut f = good();
    f.membership = None;
    f.latest_request = Some(LatestRequest {
        state: AccessRequestState::Pending,
        changed_at: 5,
        expires_at: NOW,
    });
    assert_eq!(reason(&f, &view()), DecisionReason::NotAMember);
    assert_eq!(
        decide(&f, &view(), NOW - 1).reason,
        DecisionReason::Granted,
        "a Provisional Caller until the deadline"
    );
    f.membership = Some(MemberStatus {
        role: Role::AuthorizedUser,
        removed_at: Some(1),
        expires_at: None,
    });
    assert_eq!(reason(&f, &view()), DecisionReason::AccessRevoked);
}

#[test]
fn the_answer_names_a_24x7_contract_when_one_covers() {
    let mut f = good();
    f.contracts = vec![
        contract("BASIC", &[], 0, 2 * NOW, false),
        contract("PREMIUM", &[], 0, 2 * NOW, true),
    ]
    .into();
    let d = decide(&f, &open(Some(3), None), NOW);
    assert_eq!(
        d.contract_id.map(|c| c.to_string()),
        Some("PREMIUM".to_owned())
    );
}

#[test]
fn a_time_boxed_grant_is_revoked_from_its_end_whenever_it_was_read() {
    let mut f = good();
    let mut m = member(Role::AuthorizedUser);
    m.expires_at = Some(NOW);
    f.membership = Some(m);
    f.latest_request = Some(req(AccessRequestState::Approved, 10));
    // The same facts (as a cache keeps them) answer by the clock of the check.
    assert_eq!(
        decide(&f, &open(None, None), NOW - 1).reason,
        DecisionReason::Granted
    );
    assert_eq!(reason(&f, &open(None, None)), DecisionReason::AccessRevoked);
    assert_eq!(reason(&f, &view()), DecisionReason::AccessRevoked);
    assert_eq!(
        decide(&f, &view(), NOW + 1).role,
        None,
        "no role after the end"
    );
    // Recorded by the sweeper (removed at the end instant): the same answers.
    m.removed_at = Some(NOW);
    f.membership = Some(m);
    assert_eq!(reason(&f, &open(None, None)), DecisionReason::AccessRevoked);
    // A request denied after the lapse is the latest news, recorded or not.
    f.latest_request = Some(req(AccessRequestState::Denied, NOW + 1));
    assert_eq!(
        decide(&f, &view(), NOW + 2).reason,
        DecisionReason::RequestDenied
    );
    m.removed_at = None;
    f.membership = Some(m);
    assert_eq!(
        decide(&f, &view(), NOW + 2).reason,
        DecisionReason::RequestDenied
    );
}

/// Every combination of up to three contracts from a pool (ended, not yet started, in force;
/// with and without 24x7; all products, one, two): what `coverage` says may be opened is
/// exactly what `decide` allows, product by product and for severity 1.
#[test]
fn coverage_describes_exactly_the_checks_that_allow() {
    let pool: Vec<Contract> = [
        ("A", &[][..], 0, NOW, true),
        ("B", &[][..], NOW + 1, 3 * NOW, true),
        ("C", &["P1"][..], 0, 2 * NOW, false),
        ("D", &["P1", "P2"][..], 0, 3 * NOW, true),
        ("E", &[][..], 0, 2 * NOW + 5, false),
        ("F", &["P2"][..], NOW, NOW + 1, true),
    ]
    .iter()
    .map(|(id, p, s, e, x)| contract(id, p, *s, *e, *x))
    .collect();
    let products: Vec<ProductId> = ["P1", "P2", "P3"]
        .iter()
        .map(|p| ProductId::from_trusted((*p).into()))
        .collect();
    let n = pool.len();
    for a in 0..=n {
        for b in a..=n {
            for c in b..=n {
                let mut chosen: Vec<Contract> = [a, b, c]
                    .iter()
                    .filter_map(|&i| pool.get(i).cloned())
                    .collect();
                chosen.dedup();
                // In reverse order of id: the coverage must sort them.
                chosen.reverse();
                let facts = CheckFacts {
                    contracts: chosen.clone().into(),
                    ..good()
                };
                let cov = coverage(&facts, NOW);
                let allowed = |sev, p| decide(&facts, &open(sev, p), NOW).allowed;
                assert_eq!(cov.is_some(), allowed(None, None), "{chosen:?}");
                let Some(cov) = cov else { continue };
                // The check's own highest severity says what the contracts admit.
                let d = decide(&facts, &open(None, None), NOW);
                let highest = next_step::highest_severity(&d, &facts, &open(None, None), NOW);
                let admitted = cov.contracts.iter().map(highest_severity).min();
                assert_eq!(highest, admitted, "{chosen:?}");
                assert_eq!(highest == Some(1), allowed(Some(1), None));
                for p in &products {
                    let listed = cov.all_products || cov.product_ids.contains(p);
                    assert_eq!(listed, allowed(None, Some(p)), "{p:?} {chosen:?}");
                    let sev1 = cov
                        .contracts
                        .iter()
                        .any(|c| c.covers(Some(p)) && highest_severity(c) == 1);
                    assert_eq!(sev1, allowed(Some(1), Some(p)), "{p:?} {chosen:?}");
                }
                assert!(cov.contracts.iter().all(|c| c.in_force_at(NOW)));
                let in_force = chosen.iter().filter(|c| c.in_force_at(NOW)).count();
                assert_eq!(cov.contracts.len(), in_force);
                assert!(
                    cov.contracts
                        .windows(2)
                        .all(|w| w[0].contract_id < w[1].contract_id)
                );
                let last = cov.contracts.iter().map(|c| c.ends_at).max();
                assert_eq!(Some(cov.ends_at), last);
            }
        }
    }
}

#[test]
fn highest_severity_needs_24x7_for_1() {
    assert_eq!(highest_severity(&contract("X", &[], 0, 1, true)), 1);
    assert_eq!(highest_severity(&contract("X", &[], 0, 1, false)), 2);
}
