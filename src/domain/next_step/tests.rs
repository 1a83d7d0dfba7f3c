use super::*;
use crate::domain::access_request::AccessRequestState::{Denied, Pending};
use crate::domain::decision::{LatestRequest, MemberStatus, decide};
use crate::domain::ids::{Icn, ProductId};
use crate::domain::model::AccountStatus;
use crate::domain::role::Role;
use NextStepKind as K;

const NOW: Millis = 1_000_000;

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

fn member(role: Role, removed_at: Option<Millis>) -> Option<MemberStatus> {
    Some(MemberStatus {
        role,
        removed_at,
        expires_at: None,
    })
}

fn facts(role: Role, contracts: Vec<Contract>) -> CheckFacts {
    CheckFacts {
        account_status: Some(AccountStatus::Active),
        membership: member(role, None),
        latest_request: None,
        email_verified: true,
        contracts: contracts.into(),
    }
}

fn input(action: Action, product: Option<&ProductId>, severity: Option<u8>) -> CheckInput<'_> {
    CheckInput {
        action,
        product,
        severity,
    }
}

/// The step of what `decide` answers, and the highest severity.
fn answer(f: &CheckFacts, i: &CheckInput<'_>) -> (Option<NextStep>, Option<u8>) {
    let d = decide(f, i, NOW);
    (next_step(&d, f, i, NOW), highest_severity(&d, f, i, NOW))
}

fn kind(f: &CheckFacts, i: &CheckInput<'_>) -> Option<NextStepKind> {
    answer(f, i).0.map(|s| s.kind)
}

fn ids(s: &NextStep) -> Vec<&str> {
    s.contract_ids.iter().map(ContractId::as_str).collect()
}

const OPEN: Action = Action::OpenServiceRequest;

#[test]
fn grants_have_no_step_and_say_the_highest_severity() {
    let x24 = facts(
        Role::AuthorizedUser,
        vec![contract("C1", &[], 0, 2 * NOW, true)],
    );
    let day = facts(
        Role::AuthorizedUser,
        vec![contract("C2", &[], 0, 2 * NOW, false)],
    );
    assert_eq!(answer(&x24, &input(OPEN, None, Some(1))), (None, Some(1)));
    assert_eq!(answer(&x24, &input(OPEN, None, None)), (None, Some(1)));
    assert_eq!(answer(&day, &input(OPEN, None, Some(2))), (None, Some(2)));
    // Only opening a service request has a severity.
    let view = input(Action::ViewSupportArea, None, None);
    assert_eq!(answer(&x24, &view), (None, None));
}

#[test]
fn a_24x7_contract_for_another_product_does_not_raise_the_severity() {
    let f = facts(
        Role::AuthorizedUser,
        vec![
            contract("C1", &["P1"], 0, 2 * NOW, false),
            contract("C2", &["P2"], 0, 2 * NOW, true),
        ],
    );
    let p1 = ProductId::from_trusted("P1".into());
    assert_eq!(answer(&f, &input(OPEN, Some(&p1), None)).1, Some(2));
    let (step, severity) = answer(&f, &input(OPEN, Some(&p1), Some(1)));
    let step = step.unwrap();
    assert_eq!(step.kind, K::OpenAtLowerSeverity);
    assert_eq!(step.highest_severity, Some(2));
    assert_eq!(ids(&step), ["C1"]);
    assert_eq!(severity, Some(2));
}

#[test]
fn no_contract_in_force_names_the_one_that_ended_last() {
    let f = facts(
        Role::AuthorizedUser,
        vec![
            contract("OLD", &[], 0, 10, true),
            contract("LAST", &[], 0, 500, true),
            contract("NEXT", &[], 2 * NOW, 3 * NOW, true),
        ],
    );
    let (step, severity) = answer(&f, &input(OPEN, None, None));
    let step = step.unwrap();
    assert_eq!(step.kind, K::ContactSiteTechnicalContact);
    assert_eq!((ids(&step), step.until), (vec!["LAST"], Some(500)));
    assert_eq!(severity, None);
    // Never had one: nothing to name but the STCs.
    let none = facts(Role::AuthorizedUser, vec![]);
    let step = answer(&none, &input(OPEN, None, None)).0.unwrap();
    assert_eq!((step.contract_ids.len(), step.until), (0, None));
}

#[test]
fn an_uncovered_product_names_the_contracts_in_force() {
    let f = facts(
        Role::AuthorizedUser,
        vec![
            contract("A", &["P1"], 0, 2 * NOW, true),
            contract("B", &["P2"], 0, 2 * NOW, false),
            contract("ENDED", &["P3"], 0, 10, false),
        ],
    );
    let p3 = ProductId::from_trusted("P3".into());
    let step = answer(&f, &input(OPEN, Some(&p3), None)).0.unwrap();
    assert_eq!(step.kind, K::ContactSiteTechnicalContact);
    assert_eq!(ids(&step), ["A", "B"]);
}

#[test]
fn each_refusal_leads_to_its_step() {
    let good = || {
        facts(
            Role::AuthorizedUser,
            vec![contract("C", &[], 0, 2 * NOW, true)],
        )
    };
    let manage = input(Action::ManageUsers, None, None);
    let open = input(OPEN, None, None);
    assert_eq!(
        kind(&CheckFacts::default(), &open),
        Some(K::CheckAccountNumber)
    );
    let suspended = CheckFacts {
        account_status: Some(AccountStatus::Suspended),
        ..good()
    };
    assert_eq!(kind(&suspended, &open), Some(K::ContactSupport));
    let unverified = CheckFacts {
        email_verified: false,
        ..good()
    };
    assert_eq!(kind(&unverified, &open), Some(K::VerifyEmail));
    assert_eq!(kind(&good(), &manage), Some(K::AskForHigherRole));
    let provisional = facts(Role::ProvisionalCaller, vec![]);
    assert_eq!(kind(&provisional, &open), Some(K::AskForHigherRole));
    let stranger = CheckFacts {
        membership: None,
        ..good()
    };
    let step = answer(&stranger, &open).0.unwrap();
    assert_eq!((step.kind, step.since), (K::RequestAccess, None));
}

#[test]
fn asking_again_says_when_the_last_answer_came() {
    let base = facts(Role::AuthorizedUser, vec![]);
    let open = input(OPEN, None, None);
    let denied = CheckFacts {
        membership: None,
        latest_request: Some(LatestRequest {
            state: Denied,
            changed_at: 700,
            expires_at: NOW,
        }),
        ..base.clone()
    };
    let step = answer(&denied, &open).0.unwrap();
    assert_eq!((step.kind, step.since), (K::RequestAccess, Some(700)));
    let revoked = CheckFacts {
        membership: member(Role::AuthorizedUser, Some(900)),
        ..base.clone()
    };
    let step = answer(&revoked, &open).0.unwrap();
    assert_eq!((step.kind, step.since), (K::RequestAccess, Some(900)));
    // A lapsed time-boxed grant ended at its end.
    let lapsed = CheckFacts {
        membership: Some(MemberStatus {
            role: Role::AuthorizedUser,
            removed_at: None,
            expires_at: Some(800),
        }),
        ..base
    };
    assert_eq!(answer(&lapsed, &open).0.unwrap().since, Some(800));
}

#[test]
fn a_pending_request_says_since_when_and_until_when() {
    let f = CheckFacts {
        membership: None,
        latest_request: Some(LatestRequest {
            state: Pending,
            changed_at: 600,
            expires_at: 2 * NOW,
        }),
        ..facts(Role::AuthorizedUser, vec![])
    };
    let step = answer(&f, &input(OPEN, None, None)).0.unwrap();
    assert_eq!(step.kind, K::WaitForDecision);
    assert_eq!((step.since, step.until), (Some(600), Some(2 * NOW)));
    assert_eq!(step.contacts(), Contacts::PendingRequest);
}

#[test]
fn whose_names_each_step_shows() {
    for k in NextStepKind::ALL {
        let want = match k {
            K::WaitForDecision => Contacts::PendingRequest,
            K::RequestAccess | K::AskForHigherRole => Contacts::Deciders,
            K::ContactSiteTechnicalContact => Contacts::SiteTechnicalContacts,
            _ => Contacts::None,
        };
        assert_eq!(NextStep::of(k).contacts(), want, "{k:?}");
        assert!(!k.as_str().is_empty());
    }
}

#[test]
fn concealing_keeps_only_the_persons_own_history() {
    let step = NextStep {
        group: Some(DeciderGroup::Administrators),
        names: vec!["Ana Admin".into()],
        contract_ids: vec![ContractId::from_trusted("C".into())],
        since: Some(5),
        until: Some(6),
        ..NextStep::of(K::RequestAccess)
    };
    let hidden = step.concealed();
    assert_eq!(hidden.group, None);
    assert!(hidden.names.is_empty() && hidden.contract_ids.is_empty());
    assert_eq!((hidden.since, hidden.until), (Some(5), Some(6)));
}
