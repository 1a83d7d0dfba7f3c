//! The policy as a table: actor x operation x target -> allowed, or the exact refusal.

use super::*;
use crate::domain::ids::WebId;
use AccountStatus::{Active, Suspended};
use Refusal::*;
use Role::{AuthorizedUser as AU, SiteTechnicalContact as STC, TechnicalContact as TC};

fn ana() -> WebId {
    WebId::from_trusted("ana".into())
}
fn ben() -> WebId {
    WebId::from_trusted("ben".into())
}

/// The actors of the table, all acting as Web ID "ana".
#[derive(Debug, Clone, Copy)]
enum Who {
    Operator,
    Checker,
    Person,
    /// A person whose token has no email claim.
    NoEmail,
}

fn actor(who: Who, id: &WebId) -> Actor<'_> {
    Actor {
        web_id: id,
        operator: matches!(who, Who::Operator),
        checker: matches!(who, Who::Checker),
        has_email: matches!(who, Who::Person | Who::Operator),
    }
}

fn standing(account: AccountStatus, role: Option<Role>, verified: bool) -> Standing {
    Standing {
        account,
        role,
        email_verified: verified,
    }
}

fn admin() -> Standing {
    standing(Active, Some(TC), true)
}

#[track_caller]
fn expect(who: Who, op: Operation<'_>, want: Result<(), Refusal>) {
    let id = ana();
    assert_eq!(authorize(&actor(who, &id), &op), want, "{who:?} {op:?}");
}

#[test]
fn only_operators_run_accounts() {
    expect(Who::Operator, Operation::RunAccounts, Ok(()));
    for who in [Who::Checker, Who::Person, Who::NoEmail] {
        expect(who, Operation::RunAccounts, Err(AdminScopeRequired));
    }
}

#[test]
fn entitlement_lists_are_for_the_ticketing_system_operators_and_oneself() {
    let (a, b) = (ana(), ben());
    let list = |subject| Operation::ListEntitlements { subject };
    expect(Who::Checker, list(&b), Ok(()));
    expect(Who::Checker, list(&a), Ok(()));
    expect(Who::Operator, list(&b), Ok(()));
    expect(Who::Person, list(&a), Ok(()));
    expect(Who::NoEmail, list(&a), Ok(()));
    expect(Who::Person, list(&b), Err(CheckScopeRequired));
    expect(Who::NoEmail, list(&b), Err(CheckScopeRequired));
}

#[test]
fn checks_are_for_the_ticketing_system_operators_and_oneself() {
    let (a, b) = (ana(), ben());
    expect(Who::Checker, Operation::Check { subject: &b }, Ok(()));
    expect(Who::Operator, Operation::Check { subject: &b }, Ok(()));
    expect(Who::Person, Operation::Check { subject: &a }, Ok(()));
    expect(
        Who::Person,
        Operation::Check { subject: &b },
        Err(CheckScopeRequired),
    );
    expect(Who::Checker, Operation::WatchChanges, Ok(()));
    expect(Who::Operator, Operation::WatchChanges, Ok(()));
    expect(
        Who::Person,
        Operation::WatchChanges,
        Err(CheckScopeRequired),
    );
}

#[test]
fn a_person_with_an_email_asks_for_access_to_an_active_account() {
    let op = |account| Operation::RequestAccess { account };
    expect(Who::Person, op(Active), Ok(()));
    expect(Who::Person, op(Suspended), Err(AccountSuspended));
    expect(Who::NoEmail, op(Active), Err(EmailClaimRequired));
    expect(Who::NoEmail, op(Suspended), Err(AccountSuspended));
}

#[test]
fn only_the_requester_withdraws() {
    let (a, b) = (ana(), ben());
    expect(
        Who::Person,
        Operation::WithdrawRequest { requester: &a },
        Ok(()),
    );
    for who in [Who::Person, Who::Operator, Who::Checker] {
        expect(
            who,
            Operation::WithdrawRequest { requester: &b },
            Err(NotYourRequest),
        );
    }
}

#[test]
fn verified_administrators_of_an_active_account_decide_others_requests() {
    let (a, b) = (ana(), ben());
    let decide = |requester, standing| Operation::DecideRequest {
        requester,
        standing,
    };
    let table = [
        (standing(Active, Some(TC), true), Ok(())),
        (standing(Active, Some(STC), true), Ok(())),
        (standing(Active, Some(AU), true), Err(NotAnAdministrator)),
        (standing(Active, None, true), Err(NotAnAdministrator)),
        (
            standing(Active, Some(TC), false),
            Err(AdministratorEmailNotVerified),
        ),
        (standing(Suspended, Some(STC), true), Err(AccountSuspended)),
        (standing(Suspended, Some(AU), true), Err(NotAnAdministrator)),
        (
            standing(Suspended, Some(TC), false),
            Err(AdministratorEmailNotVerified),
        ),
    ];
    for (s, want) in table {
        expect(Who::Person, decide(&b, s), want);
    }
    // Nobody decides their own request, administrator or not; the operator scope decides none.
    expect(Who::Person, decide(&a, admin()), Err(SelfDecision));
    expect(
        Who::Operator,
        decide(&b, standing(Active, None, false)),
        Err(NotAnAdministrator),
    );
}

#[test]
fn members_are_read_by_operators_and_verified_administrators() {
    let read = |standing| Operation::ReadMembers { standing };
    expect(Who::Person, read(admin()), Ok(()));
    expect(
        Who::Person,
        read(standing(Active, Some(AU), true)),
        Err(NotAnAdministrator),
    );
    expect(
        Who::Person,
        read(standing(Active, Some(STC), false)),
        Err(AdministratorEmailNotVerified),
    );
    expect(
        Who::Person,
        read(standing(Suspended, Some(STC), true)),
        Err(AccountSuspended),
    );
    expect(
        Who::Checker,
        read(standing(Active, None, false)),
        Err(NotAnAdministrator),
    );
    expect(
        Who::Operator,
        read(standing(Suspended, None, false)),
        Ok(()),
    );
}

#[test]
fn administrators_change_other_members_but_never_an_stc_or_themselves() {
    let (a, b) = (ana(), ben());
    let change = |standing, member, role| Operation::ChangeMember {
        standing,
        member,
        role,
    };
    expect(Who::Person, change(admin(), &b, Some(AU)), Ok(()));
    expect(Who::Person, change(admin(), &b, Some(TC)), Ok(()));
    expect(
        Who::Person,
        change(standing(Active, Some(STC), true), &b, Some(TC)),
        Ok(()),
    );
    // Not there: the use case says so (not a rule of who may act).
    expect(Who::Person, change(admin(), &b, None), Ok(()));
    expect(
        Who::Person,
        change(admin(), &b, Some(STC)),
        Err(SiteTechnicalContactProtected),
    );
    expect(
        Who::Person,
        change(admin(), &a, Some(TC)),
        Err(SelfModification),
    );
    expect(
        Who::Person,
        change(standing(Active, Some(AU), true), &b, Some(AU)),
        Err(NotAnAdministrator),
    );
    expect(
        Who::Person,
        change(standing(Active, Some(TC), false), &b, Some(AU)),
        Err(AdministratorEmailNotVerified),
    );
    expect(
        Who::Person,
        change(standing(Suspended, Some(STC), true), &b, Some(AU)),
        Err(AccountSuspended),
    );
    // Operators administer members of any account, themselves included, but an STC only as
    // an STC (RemoveSiteTechnicalContact).
    let nobody = standing(Suspended, None, false);
    expect(Who::Operator, change(nobody, &b, Some(AU)), Ok(()));
    expect(Who::Operator, change(nobody, &a, Some(TC)), Ok(()));
    expect(
        Who::Operator,
        change(nobody, &b, Some(STC)),
        Err(SiteTechnicalContactProtected),
    );
}

#[test]
fn the_requester_is_not_shown_who_decided() {
    let (a, b) = (ana(), ben());
    // "ana" reads her own request decided by "ben": the outcome, not the administrator.
    for who in [Who::Person, Who::NoEmail, Who::Checker] {
        assert!(!shows_decider(&actor(who, &a), &a, &b), "{who:?}");
    }
    // Her own name when she withdrew it herself.
    assert!(shows_decider(&actor(Who::Person, &a), &a, &a));
    // Administrators (and the decider) reading someone else's request, and operators.
    assert!(shows_decider(&actor(Who::Person, &a), &b, &a));
    assert!(shows_decider(&actor(Who::Person, &a), &b, &b));
    assert!(shows_decider(&actor(Who::Operator, &a), &b, &b));
    assert!(shows_decider(&actor(Who::Operator, &a), &a, &b));
}

#[test]
fn anyone_acts_on_their_own_profile() {
    for who in [Who::Person, Who::NoEmail, Who::Operator, Who::Checker] {
        expect(who, Operation::OwnProfile, Ok(()));
    }
}

#[test]
fn refusals_about_state_are_preconditions() {
    assert!(AccountSuspended.is_precondition());
    assert!(EmailClaimRequired.is_precondition());
    assert!(!NotAnAdministrator.is_precondition());
    assert!(!SelfDecision.is_precondition());
}

#[test]
fn a_person_sees_no_account_they_do_not_belong_to() {
    use crate::domain::access_request::AccessRequestState;
    use crate::domain::decision::{
        Action, CheckFacts, CheckInput, DecisionReason as D, LatestRequest, MemberStatus, decide,
    };
    let a = ana();
    let view = CheckInput {
        action: Action::ViewSupportArea,
        product: None,
        severity: None,
    };
    let seen = |who, facts: &CheckFacts| {
        as_seen_by_self(&actor(who, &a), facts, decide(facts, &view, 0), 0)
    };
    let suspended = CheckFacts {
        account_status: Some(Suspended),
        ..CheckFacts::default()
    };
    // Unknown and suspended accounts look like any account she is not a member of.
    for facts in [CheckFacts::default(), suspended.clone()] {
        let d = seen(Who::Person, &facts);
        assert_eq!((d.allowed, d.reason), (false, D::NotAMember));
    }
    // Her own pending request speaks, but never as an allow on a suspended account.
    let pending = CheckFacts {
        latest_request: Some(LatestRequest {
            state: AccessRequestState::Pending,
            changed_at: 0,
            expires_at: 10,
        }),
        ..suspended.clone()
    };
    let d = seen(Who::Person, &pending);
    assert_eq!((d.allowed, d.reason), (false, D::RequestPending));
    // An active member sees the account as it is; a removed one does not.
    let member = |removed_at| CheckFacts {
        membership: Some(MemberStatus {
            role: AU,
            removed_at,
            expires_at: None,
        }),
        ..suspended.clone()
    };
    assert_eq!(seen(Who::Person, &member(None)).reason, D::AccountSuspended);
    assert_eq!(seen(Who::Person, &member(Some(1))).reason, D::AccessRevoked);
    // Service callers keep the precise reasons.
    for who in [Who::Checker, Who::Operator] {
        assert_eq!(
            seen(who, &CheckFacts::default()).reason,
            D::UnknownAccount,
            "{who:?}"
        );
        assert_eq!(seen(who, &suspended).reason, D::AccountSuspended, "{who:?}");
    }
}

#[test]
fn next_step_details_are_for_service_callers_members_and_waiting_requesters() {
    use crate::domain::access_request::AccessRequestState::{self, Denied, Pending};
    use crate::domain::decision::{CheckFacts, LatestRequest, MemberStatus};
    let a = ana();
    let now = 100;
    let member = |removed_at, expires_at| {
        Some(MemberStatus {
            role: AU,
            removed_at,
            expires_at,
        })
    };
    let request = |state: AccessRequestState, expires_at| {
        Some(LatestRequest {
            state,
            changed_at: 0,
            expires_at,
        })
    };
    let facts = |membership, latest_request| CheckFacts {
        account_status: Some(Active),
        membership,
        latest_request,
        ..CheckFacts::default()
    };
    // (facts of the person, shown to the person themself); service callers always see them.
    let rows = [
        ("active member", facts(member(None, None), None), true),
        (
            "grant ending later",
            facts(member(None, Some(now + 1)), None),
            true,
        ),
        ("removed member", facts(member(Some(50), None), None), false),
        ("lapsed grant", facts(member(None, Some(now)), None), false),
        (
            "pending request",
            facts(None, request(Pending, now + 1)),
            true,
        ),
        ("overdue request", facts(None, request(Pending, now)), false),
        (
            "denied request",
            facts(None, request(Denied, now + 1)),
            false,
        ),
        ("stranger", facts(None, None), false),
        ("unknown account", CheckFacts::default(), false),
    ];
    for (name, f, person) in rows {
        for who in [Who::Checker, Who::Operator] {
            assert!(
                shows_next_step_details(&actor(who, &a), &f, now),
                "{name} {who:?}"
            );
        }
        for who in [Who::Person, Who::NoEmail] {
            assert_eq!(
                shows_next_step_details(&actor(who, &a), &f, now),
                person,
                "{name} {who:?}"
            );
        }
    }
}

#[test]
fn only_operators_learn_an_account_does_not_exist() {
    let a = ana();
    assert_eq!(unknown_account(&actor(Who::Operator, &a)), Ok(()));
    for who in [Who::Person, Who::NoEmail, Who::Checker] {
        assert_eq!(
            unknown_account(&actor(who, &a)),
            Err(NotAnAdministrator),
            "{who:?}"
        );
    }
}

#[test]
fn who_hears_of_a_pending_request() {
    use super::{Administrator, Audience, contract_end_audience, request_audience};
    use crate::domain::Nudge;
    let stc = |v| Administrator {
        role: Role::SiteTechnicalContact,
        email_verified: v,
    };
    let tc = |v| Administrator {
        role: Role::TechnicalContact,
        email_verified: v,
    };
    let to = |administrators: &[usize], operators| Audience {
        administrators: administrators.to_vec(),
        operators,
    };
    let active = AccountStatus::Active;
    let suspended = AccountStatus::Suspended;
    let cases: &[(Option<Nudge>, AccountStatus, Vec<Administrator>, Audience)] = &[
        // Made or reminded: verified administrators only, when there are any.
        (
            None,
            active,
            vec![stc(true), tc(false), tc(true)],
            to(&[0, 2], false),
        ),
        (
            Some(Nudge::Remind),
            active,
            vec![stc(false), tc(true)],
            to(&[1], false),
        ),
        // Nobody verified: all of them hear, and the operators too.
        (None, active, vec![stc(false), tc(false)], to(&[0, 1], true)),
        (Some(Nudge::Remind), active, vec![tc(false)], to(&[0], true)),
        // No administrator at all: the operators.
        (None, active, vec![], to(&[], true)),
        (Some(Nudge::Escalate), active, vec![], to(&[], true)),
        // Escalated: past the TCs, to the STCs (verified ones first).
        (
            Some(Nudge::Escalate),
            active,
            vec![tc(true), stc(true), stc(false)],
            to(&[1], false),
        ),
        (
            Some(Nudge::Escalate),
            active,
            vec![tc(true), stc(false)],
            to(&[1], false),
        ),
        (
            Some(Nudge::Escalate),
            active,
            vec![tc(false), stc(false)],
            to(&[1], true),
        ),
        // A suspended account's administrators cannot decide: only the operators hear.
        (None, suspended, vec![stc(true)], to(&[], true)),
        (
            Some(Nudge::Remind),
            suspended,
            vec![stc(true)],
            to(&[], true),
        ),
        (
            Some(Nudge::Escalate),
            suspended,
            vec![stc(true)],
            to(&[], true),
        ),
    ];
    for (stage, account, admins, want) in cases {
        assert_eq!(
            &request_audience(*stage, *account, admins),
            want,
            "{stage:?} {account:?} {admins:?}"
        );
    }
    // Of anything else about the account (a lapsed grant): verified administrators, else all.
    assert_eq!(super::administrators_told(&[stc(false), tc(true)]), vec![1]);
    assert_eq!(
        super::administrators_told(&[stc(false), tc(false)]),
        vec![0, 1]
    );
    assert!(super::administrators_told(&[]).is_empty());
    // Warned that the contracts end: the STCs of an active account, verified ones else all.
    assert_eq!(
        contract_end_audience(active, &[tc(true), stc(true)]),
        vec![1]
    );
    assert_eq!(
        contract_end_audience(active, &[stc(false), tc(true), stc(true)]),
        vec![2]
    );
    assert_eq!(
        contract_end_audience(active, &[stc(false), tc(true), stc(false)]),
        vec![0, 2]
    );
    assert!(contract_end_audience(active, &[tc(true)]).is_empty());
    assert!(contract_end_audience(suspended, &[stc(true)]).is_empty());
}

#[test]
fn members_are_certified_by_another_administrator_or_an_operator() {
    let (a, b) = (ana(), ben());
    let certify = |standing, member| Operation::CertifyMember { standing, member };
    expect(Who::Person, certify(admin(), &b), Ok(()));
    expect(
        Who::Person,
        certify(standing(Active, Some(STC), true), &b),
        Ok(()),
    );
    expect(
        Who::Operator,
        certify(standing(Active, None, false), &b),
        Ok(()),
    );
    expect(
        Who::Operator,
        certify(standing(Suspended, None, false), &a),
        Ok(()),
    );
    // Nobody vouches for themself.
    expect(Who::Person, certify(admin(), &a), Err(SelfModification));
    expect(
        Who::Person,
        certify(standing(Active, Some(STC), true), &a),
        Err(SelfModification),
    );
    expect(
        Who::Person,
        certify(standing(Active, Some(AU), true), &b),
        Err(NotAnAdministrator),
    );
    expect(
        Who::Person,
        certify(standing(Active, None, true), &b),
        Err(NotAnAdministrator),
    );
    expect(
        Who::Person,
        certify(standing(Active, Some(TC), false), &b),
        Err(AdministratorEmailNotVerified),
    );
    expect(
        Who::Person,
        certify(standing(Suspended, Some(TC), true), &b),
        Err(AccountSuspended),
    );
    expect(
        Who::Checker,
        certify(standing(Active, None, false), &b),
        Err(NotAnAdministrator),
    );
    // Who is asked about at a renewal: everyone but the STCs.
    assert!(recertified(AU));
    assert!(recertified(TC));
    assert!(!recertified(STC));
}

#[test]
fn operators_and_verified_stcs_of_an_active_account_manage_email_domains() {
    let manage = |standing| Operation::ManageEmailDomains { standing };
    let table = [
        (standing(Active, Some(STC), true), Ok(())),
        (
            standing(Active, Some(TC), true),
            Err(SiteTechnicalContactRequired),
        ),
        (standing(Active, Some(AU), true), Err(NotAnAdministrator)),
        (standing(Active, None, true), Err(NotAnAdministrator)),
        (standing(Active, None, false), Err(NotAnAdministrator)),
        (
            standing(Active, Some(STC), false),
            Err(AdministratorEmailNotVerified),
        ),
        (
            standing(Active, Some(TC), false),
            Err(AdministratorEmailNotVerified),
        ),
        (standing(Suspended, Some(STC), true), Err(AccountSuspended)),
        (standing(Suspended, Some(TC), true), Err(AccountSuspended)),
        (standing(Suspended, Some(AU), true), Err(NotAnAdministrator)),
    ];
    for (s, want) in table {
        expect(Who::Person, manage(s), want);
        // The ticketing system's scope adds nothing.
        expect(Who::Checker, manage(s), want);
    }
    // Operators keep every account's list, suspended or not, member or not.
    for s in [
        standing(Active, None, false),
        standing(Suspended, None, false),
        standing(Active, Some(AU), true),
    ] {
        expect(Who::Operator, manage(s), Ok(()));
    }
}

#[test]
fn a_new_request_follows_the_policy_for_its_domain() {
    use crate::domain::email_domain::DomainAction as D;
    let table = [
        (None, Ok(NewRequest::Held)),
        (Some(D::Hold), Ok(NewRequest::Held)),
        (Some(D::AutoApprove), Ok(NewRequest::AutoApproved)),
        (Some(D::Refuse), Err(EmailDomainRefused)),
    ];
    for (policy, want) in table {
        assert_eq!(new_request(policy), want, "{policy:?}");
    }
    assert!(EmailDomainRefused.is_precondition());
}
