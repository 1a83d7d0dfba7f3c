//! The store conformance suite: the same assertions against SQLite and PostgreSQL.

use entitlements::domain::{
    AccessRequest, AccessRequestState, Account, AccountStatus, Contract, ContractId, CountryCode,
    Email, Icn, Membership, Person, ProductId, Role, WebId,
};
use entitlements::mail::SealedEmail;
use entitlements::store::{RequestClaim, RequestKey, SharedStore, StoreError};

use crate::support::*;

pub(crate) async fn open(backend: Backend) -> (SharedStore, TestDb, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::create(backend, dir.path()).await;
    let store = entitlements::store::connect(&db.url).await.unwrap();
    store.migrate().await.unwrap();
    // Migrating twice is a no-op.
    store.migrate().await.unwrap();
    (store, db, dir)
}

pub(crate) fn icn() -> Icn {
    Icn::parse("42").unwrap()
}
pub(crate) fn web(s: &str) -> WebId {
    WebId::parse(s).unwrap()
}

pub(crate) fn account() -> Account {
    Account {
        icn: icn(),
        company_name: "Acme".into(),
        country: CountryCode::parse("US").unwrap(),
        status: AccountStatus::Active,
        status_reason: String::new(),
        created_at: 1,
        updated_at: 1,
    }
}

pub(crate) fn person(w: &str, verified: bool) -> Person {
    Person {
        web_id: web(w),
        email: Email::parse(&format!("{w}@example.com")).unwrap(),
        given_name: "G".into(),
        family_name: "F".into(),
        email_verified_at: verified.then_some(5),
        created_at: 1,
        updated_at: 1,
    }
}

async fn seed(store: &SharedStore) {
    let mut tx = store.begin().await.unwrap();
    tx.insert_account(&account()).await.unwrap();
    for p in ["ana", "bob", "cy"] {
        tx.upsert_person(&person(p, p == "ana")).await.unwrap();
    }
    tx.commit(1).await.unwrap();
}

async fn a_dropped_transaction_leaves_nothing(backend: Backend) {
    let (store, _db, _dir) = open(backend).await;
    {
        let mut tx = store.begin().await.unwrap();
        tx.insert_account(&account()).await.unwrap();
        tx.upsert_person(&person("ana", false)).await.unwrap();
        tx.enqueue_email(
            &SealedEmail {
                kind: "k",
                sealed: "v1.sealed".into(),
            },
            1,
        )
        .await
        .unwrap();
    }
    assert!(store.account(&icn()).await.unwrap().is_none());
    assert!(store.person(&web("ana")).await.unwrap().is_none());
    assert!(store.claim_due(10, 20, 10).await.unwrap().is_empty());
    // And the store still takes writes afterwards.
    seed(&store).await;
    assert!(store.account(&icn()).await.unwrap().is_some());
    let mut tx = store.begin().await.unwrap();
    assert!(matches!(
        tx.insert_account(&account()).await,
        Err(StoreError::Conflict(_))
    ));
}

async fn one_pending_request_per_person_and_account(backend: Backend) {
    let (store, _db, _dir) = open(backend).await;
    seed(&store).await;
    let country = CountryCode::parse("US").unwrap();
    let first = AccessRequest::new(
        icn(),
        web("bob"),
        country.clone(),
        Role::AuthorizedUser,
        10,
        1000,
    );
    let mut tx = store.begin().await.unwrap();
    tx.insert_request(&first).await.unwrap();
    tx.commit(1).await.unwrap();
    let second = AccessRequest::new(
        icn(),
        web("bob"),
        country.clone(),
        Role::TechnicalContact,
        11,
        1000,
    );
    let mut tx = store.begin().await.unwrap();
    assert!(matches!(
        tx.insert_request(&second).await,
        Err(StoreError::Conflict(_))
    ));
    drop(tx);
    // Once decided, a new one may be opened.
    let mut tx = store.begin().await.unwrap();
    let mut locked = tx.request_for_update(first.id).await.unwrap().unwrap();
    assert_eq!(locked, first);
    locked.deny("no".into(), web("ana"), 12).unwrap();
    tx.update_request(&locked).await.unwrap();
    tx.insert_request(&second).await.unwrap();
    tx.commit(1).await.unwrap();
    let facts = store.check_facts(&icn(), &web("bob")).await.unwrap();
    assert_eq!(
        facts.latest_request.map(|r| r.state),
        Some(AccessRequestState::Pending)
    );
    let page = store
        .list_requests(&icn(), Some(AccessRequestState::Denied), None, 10)
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].request.decision_reason.as_deref(), Some("no"));
    assert_eq!(
        page.items[0]
            .requester
            .as_ref()
            .map(|p| p.email.to_string())
            .as_deref(),
        Some("bob@example.com")
    );
    assert_eq!(
        store.overdue_requests(5000, 10).await.unwrap(),
        vec![second.id]
    );
}

async fn check_facts_read_everything_a_decision_needs(backend: Backend) {
    let (store, _db, _dir) = open(backend).await;
    let none = store.check_facts(&icn(), &web("ana")).await.unwrap();
    assert_eq!(none.account_status, None);
    seed(&store).await;
    let mut tx = store.begin().await.unwrap();
    tx.upsert_membership(&Membership {
        icn: icn(),
        web_id: web("ana"),
        role: Role::TechnicalContact,
        created_at: 1,
        updated_at: 2,
        removed_at: None,
        expires_at: None,
    })
    .await
    .unwrap();
    let contract = Contract {
        icn: icn(),
        contract_id: ContractId::parse("C1").unwrap(),
        product_ids: vec![ProductId::parse("db2").unwrap()],
        starts_at: 0,
        ends_at: 100,
        includes_24x7: true,
        updated_at: 1,
    };
    tx.upsert_contract(&contract).await.unwrap();
    tx.commit(1).await.unwrap();
    let f = store.check_facts(&icn(), &web("ana")).await.unwrap();
    assert_eq!(f.account_status, Some(AccountStatus::Active));
    assert_eq!(
        f.membership.as_ref().map(|m| m.role),
        Some(Role::TechnicalContact)
    );
    assert!(f.email_verified);
    assert_eq!(&*f.contracts, &[contract][..]);
    let g = store.check_facts(&icn(), &web("bob")).await.unwrap();
    assert!(g.membership.is_none() && !g.email_verified && g.latest_request.is_none());
    // An account that does not exist is one fact; the person's verification is read all the
    // same (the cache keeps each part under its own key).
    let typo = store
        .check_facts(&Icn::parse("43").unwrap(), &web("ana"))
        .await
        .unwrap();
    assert_eq!(typo.account_status, None);
    assert!(typo.email_verified && typo.membership.is_none() && typo.contracts.is_empty());
    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.count_active_stcs(&icn()).await.unwrap(), 0);
    let admins = tx.administrators(&icn(), 1).await.unwrap();
    assert_eq!(admins.len(), 1);
    assert_eq!(admins[0].1.web_id, web("ana"));
}

async fn outbox_claims_lease_and_retries(backend: Backend) {
    let (store, _db, _dir) = open(backend).await;
    let mut tx = store.begin().await.unwrap();
    for i in 0..4 {
        let m = SealedEmail {
            kind: "k",
            sealed: format!("v1.key.sealed-{i}"),
        };
        tx.enqueue_email(&m, 100).await.unwrap();
    }
    tx.commit(1).await.unwrap();
    assert!(
        store.claim_due(99, 1000, 10).await.unwrap().is_empty(),
        "not due before it was queued"
    );
    let a = store.claim_due(100, 1000, 2).await.unwrap();
    assert_eq!(a.len(), 2);
    assert_eq!(a[0].attempts, 1);
    // Stored sealed: no recipient or subject in clear.
    assert_eq!((a[0].to.as_str(), a[0].subject.as_str()), ("", ""));
    assert_eq!(a[0].body, "v1.key.sealed-0");
    let b = store.claim_due(100, 1000, 10).await.unwrap();
    assert_eq!(b.len(), 2, "claimed messages are leased to one worker");
    store.mark_sent(a[0].id, 150).await.unwrap();
    store
        .mark_failed(a[1].id, 500, "relay said 451")
        .await
        .unwrap();
    let c = store.claim_due(500, 2000, 10).await.unwrap();
    assert_eq!(c.iter().map(|m| m.id).collect::<Vec<_>>(), vec![a[1].id]);
    assert_eq!(c[0].attempts, 2);
    // Given up for good: never claimed again, not even once its lease has run out.
    let mut tx = store.begin().await.unwrap();
    assert!(tx.fail_email(b[1].id, 600, "refused").await.unwrap());
    assert!(!tx.fail_email(a[0].id, 600, "sent already").await.unwrap());
    tx.commit(2).await.unwrap();
    // A lease that ran out (the worker died) makes the message due again.
    let d = store.claim_due(1000, 3000, 10).await.unwrap();
    assert_eq!(d.iter().map(|m| m.id).collect::<Vec<_>>(), vec![b[0].id]);
    assert_eq!(d[0].body, b[0].body);
    let stats = store.ops_stats(1000).await.unwrap();
    assert_eq!(
        stats.outbox_backlog, 2,
        "the failed and the sent are not backlog"
    );
    assert!(
        store
            .claim_due(1_000_000, 1_000_001, 10)
            .await
            .unwrap()
            .len()
            == 2
    );
}

async fn members_page_by_web_id(backend: Backend) {
    let (store, _db, _dir) = open(backend).await;
    seed(&store).await;
    let mut tx = store.begin().await.unwrap();
    for w in ["cy", "ana", "bob"] {
        tx.upsert_membership(&Membership {
            icn: icn(),
            web_id: web(w),
            role: Role::AuthorizedUser,
            created_at: 1,
            updated_at: 1,
            removed_at: (w == "cy").then_some(3),
            // bob's grant is time-boxed: listed until it ends, whether the lapse is recorded.
            expires_at: (w == "bob").then_some(10),
        })
        .await
        .unwrap();
    }
    tx.commit(1).await.unwrap();
    let p1 = store.list_members(&icn(), None, 1, 9).await.unwrap();
    assert_eq!(p1.items.len(), 1);
    assert_eq!(p1.next, Some(web("ana")));
    let p2 = store.list_members(&icn(), p1.next, 1, 9).await.unwrap();
    assert_eq!(p2.items[0].membership.web_id, web("bob"));
    assert_eq!(p2.items[0].membership.expires_at, Some(10));
    assert_eq!(p2.next, None, "removed members are not listed");
    let later = store.list_members(&icn(), None, 10, 10).await.unwrap();
    assert_eq!(
        later
            .items
            .iter()
            .map(|v| v.membership.web_id.clone())
            .collect::<Vec<_>>(),
        vec![web("ana")],
        "a time-boxed member is not listed from its end on"
    );
    assert_eq!(
        store.lapsed_memberships(9, 10).await.unwrap(),
        vec![],
        "nothing lapsed before the end"
    );
    assert_eq!(
        store.lapsed_memberships(10, 10).await.unwrap(),
        vec![(icn(), web("bob"))]
    );
    let f = store.check_facts(&icn(), &web("bob")).await.unwrap();
    assert_eq!(f.membership.and_then(|m| m.expires_at), Some(10));
    assert_eq!(store.memberships_of(&web("bob"), 9).await.unwrap().len(), 1);
    assert!(
        store
            .memberships_of(&web("bob"), 10)
            .await
            .unwrap()
            .is_empty()
    );
    // Recorded (removed at its end): no longer due.
    let mut tx = store.begin().await.unwrap();
    let mut bob = tx
        .membership_for_update(&icn(), &web("bob"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bob.expires_at, Some(10));
    bob.removed_at = Some(10);
    tx.upsert_membership(&bob).await.unwrap();
    tx.commit(11).await.unwrap();
    assert_eq!(store.lapsed_memberships(11, 10).await.unwrap(), vec![]);
}

/// ListEntitlements asks about every account where the person has a membership (removed
/// too) or a request (decided too): by ICN as text, each once, keyset-paged, with the name.
async fn entitlement_candidates_are_every_row_of_the_person(backend: Backend) {
    let (store, _db, _dir) = open(backend).await;
    seed(&store).await;
    let at = |i: &str| Icn::parse(i).unwrap();
    let mut tx = store.begin().await.unwrap();
    for (i, name) in [("9", "Nine"), ("10", "Ten"), ("77", "Seventy-seven")] {
        tx.insert_account(&Account {
            icn: at(i),
            company_name: name.into(),
            ..account()
        })
        .await
        .unwrap();
    }
    let member = |i: &str, w: &str, removed_at| Membership {
        icn: at(i),
        web_id: web(w),
        role: Role::AuthorizedUser,
        created_at: 1,
        updated_at: 1,
        removed_at,
        expires_at: None,
    };
    tx.upsert_membership(&member("10", "bob", None))
        .await
        .unwrap();
    tx.upsert_membership(&member("42", "bob", Some(3)))
        .await
        .unwrap();
    tx.upsert_membership(&member("77", "cy", None))
        .await
        .unwrap();
    let country = CountryCode::parse("US").unwrap();
    let mut denied = AccessRequest::new(
        at("9"),
        web("bob"),
        country.clone(),
        Role::AuthorizedUser,
        1,
        1000,
    );
    denied.deny("no".into(), web("ana"), 2).unwrap();
    tx.insert_request(&denied).await.unwrap();
    // A request on an account bob is a member of too: still one candidate.
    let pending = AccessRequest::new(
        at("10"),
        web("bob"),
        country,
        Role::TechnicalContact,
        1,
        1000,
    );
    tx.insert_request(&pending).await.unwrap();
    tx.commit(1).await.unwrap();

    let all = store
        .entitlement_candidates(&web("bob"), None, 10)
        .await
        .unwrap();
    let names: Vec<(&str, &str)> = all.iter().map(|(i, n)| (i.as_str(), n.as_str())).collect();
    assert_eq!(names, [("10", "Ten"), ("42", "Acme"), ("9", "Nine")]);
    let first = store
        .entitlement_candidates(&web("bob"), None, 2)
        .await
        .unwrap();
    assert_eq!(first.len(), 2);
    let rest = store
        .entitlement_candidates(&web("bob"), Some(&first[1].0), 2)
        .await
        .unwrap();
    assert_eq!(rest, [(at("9"), "Nine".to_owned())]);
    assert!(
        store
            .entitlement_candidates(&web("ana"), None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn the_change_feed_is_gapless_and_commit_ordered(backend: Backend) {
    use entitlements::domain::ChangeKey;
    let (store, _db, _dir) = open(backend).await;
    assert_eq!(store.feed_bounds().await.unwrap().head, 0);
    seed(&store).await;
    // A transaction that changes nothing a check sees takes no revision.
    let mut tx = store.begin().await.unwrap();
    tx.enqueue_email(
        &SealedEmail {
            kind: "k",
            sealed: "v1.sealed".into(),
        },
        1,
    )
    .await
    .unwrap();
    assert_eq!(tx.commit(2).await.unwrap(), None);
    // A rolled-back transaction takes none either.
    {
        let mut tx = store.begin().await.unwrap();
        tx.upsert_person(&person("dan", false)).await.unwrap();
    }
    let mut tx = store.begin().await.unwrap();
    tx.upsert_membership(&Membership {
        icn: icn(),
        web_id: web("bob"),
        role: Role::AuthorizedUser,
        created_at: 3,
        updated_at: 3,
        removed_at: None,
        expires_at: None,
    })
    .await
    .unwrap();
    tx.upsert_person(&person("bob", true)).await.unwrap();
    tx.upsert_membership(&Membership {
        icn: icn(),
        web_id: web("bob"),
        role: Role::TechnicalContact,
        created_at: 3,
        updated_at: 3,
        removed_at: None,
        expires_at: None,
    })
    .await
    .unwrap();
    assert_eq!(tx.commit(3).await.unwrap(), Some(2));
    let changes = store.changes_since(0, 100).await.unwrap();
    let revisions: Vec<i64> = changes.iter().map(|c| c.revision).collect();
    assert_eq!(
        revisions,
        [1, 1, 1, 1, 2, 2],
        "seed touched 4 keys, the second commit 2 (deduplicated)"
    );
    assert!(changes.contains(&entitlements::domain::ChangeRecord {
        revision: 2,
        key: ChangeKey::Member(icn(), web("bob")),
        at: 3
    }));
    assert!(
        changes
            .iter()
            .any(|c| c.revision == 2 && c.key == ChangeKey::Person(web("bob")))
    );
    assert_eq!(store.changes_since(1, 100).await.unwrap().len(), 2);
    assert_eq!(
        store.changes_since(0, 1).await.unwrap().len(),
        4,
        "whole revisions only"
    );
    // Concurrent writers: every revision appears exactly once, no gaps.
    let mut handles = Vec::new();
    for i in 0..10 {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            let mut tx = store.begin().await?;
            tx.upsert_person(&person(&format!("w{i}"), false)).await?;
            tx.commit(4).await
        }));
    }
    let mut got: Vec<i64> = Vec::new();
    for h in handles {
        got.push(h.await.unwrap().unwrap().unwrap());
    }
    got.sort();
    assert_eq!(got, (3..=12).collect::<Vec<_>>());
    assert_eq!(store.feed_bounds().await.unwrap().head, 12);
    // Trimming forgets old entries and says how far.
    assert_eq!(store.trim_changes(4).await.unwrap(), 6);
    let b = store.feed_bounds().await.unwrap();
    assert_eq!((b.head, b.trimmed_through), (12, 2));
    assert_eq!(
        store
            .changes_since(0, 100)
            .await
            .unwrap()
            .first()
            .map(|c| c.revision),
        Some(3)
    );
}

/// Collects a snapshot as the cache would keep it.
#[derive(Default)]
struct Collected {
    accounts: std::collections::HashMap<String, (AccountStatus, Vec<Contract>)>,
    persons: std::collections::HashMap<String, bool>,
    members: std::collections::HashMap<
        (String, String),
        (
            Option<entitlements::domain::MemberStatus>,
            Option<entitlements::domain::LatestRequest>,
        ),
    >,
}

impl entitlements::store::SnapshotSink for Collected {
    fn account(&mut self, icn: Icn, status: AccountStatus, contracts: std::sync::Arc<[Contract]>) {
        self.accounts
            .insert(icn.as_str().to_owned(), (status, contracts.to_vec()));
    }
    fn person(&mut self, web_id: WebId, verified: bool) {
        self.persons.insert(web_id.as_str().to_owned(), verified);
    }
    fn member(
        &mut self,
        icn: Icn,
        web_id: WebId,
        membership: Option<entitlements::domain::MemberStatus>,
        latest_request: Option<entitlements::domain::LatestRequest>,
    ) {
        let key = (icn.as_str().to_owned(), web_id.as_str().to_owned());
        assert!(
            self.members
                .insert(key, (membership, latest_request))
                .is_none(),
            "each pair once"
        );
    }
}

const ALL: entitlements::store::SnapshotLimits = entitlements::store::SnapshotLimits {
    accounts: u64::MAX >> 1,
    persons: u64::MAX >> 1,
    members: u64::MAX >> 1,
};

/// What a replica loads before it serves equals, part for part, what a check reads one pair
/// at a time: every kind of pair (member, removed member, requester only, several requests,
/// none), suspended and active accounts, verified and unverified persons.
async fn a_snapshot_holds_what_checks_read(backend: Backend) {
    let (store, _db, _dir) = open(backend).await;
    seed(&store).await;
    let other = Icn::parse("77").unwrap();
    let country = CountryCode::parse("US").unwrap();
    let mut tx = store.begin().await.unwrap();
    tx.insert_account(&Account {
        icn: other.clone(),
        status: AccountStatus::Suspended,
        ..account()
    })
    .await
    .unwrap();
    for (i, ends) in [(1, 100), (2, 200)] {
        tx.upsert_contract(&Contract {
            icn: icn(),
            contract_id: ContractId::parse(&format!("C{i}")).unwrap(),
            product_ids: vec![ProductId::parse("db2").unwrap()],
            starts_at: 0,
            ends_at: ends,
            includes_24x7: i == 2,
            updated_at: 1,
        })
        .await
        .unwrap();
    }
    let member = |w: &str, at: &Icn, removed: Option<i64>| Membership {
        icn: at.clone(),
        web_id: web(w),
        role: Role::AuthorizedUser,
        created_at: 1,
        updated_at: 2,
        removed_at: removed,
        // A time-boxed grant on the other account: the snapshot carries its end.
        expires_at: (at != &icn()).then_some(50),
    };
    tx.upsert_membership(&member("ana", &icn(), None))
        .await
        .unwrap();
    tx.upsert_membership(&member("bob", &icn(), Some(3)))
        .await
        .unwrap();
    tx.upsert_membership(&member("ana", &other, None))
        .await
        .unwrap();
    let mut denied = AccessRequest::new(
        icn(),
        web("cy"),
        country.clone(),
        Role::AuthorizedUser,
        4,
        1000,
    );
    denied.deny("no".into(), web("ana"), 5).unwrap();
    tx.insert_request(&denied).await.unwrap();
    tx.commit(6).await.unwrap();
    // A later request of the same pair is the one that counts.
    let mut tx = store.begin().await.unwrap();
    let later = AccessRequest::new(
        icn(),
        web("cy"),
        country.clone(),
        Role::TechnicalContact,
        7,
        1000,
    );
    tx.insert_request(&later).await.unwrap();
    tx.insert_request(&AccessRequest::new(
        other.clone(),
        web("bob"),
        country,
        Role::AuthorizedUser,
        8,
        1000,
    ))
    .await
    .unwrap();
    tx.commit(9).await.unwrap();

    let mut got = Collected::default();
    let info = store.snapshot(ALL, &mut got).await.unwrap();
    assert_eq!(info.revision, store.feed_bounds().await.unwrap().head);
    assert_eq!((info.accounts, info.persons, info.members), (2, 3, 5));
    for a in [icn(), other.clone(), Icn::parse("43").unwrap()] {
        for w in ["ana", "bob", "cy", "nobody"] {
            let fresh = store.check_facts(&a, &web(w)).await.unwrap();
            let acc = got.accounts.get(a.as_str());
            assert_eq!(acc.map(|x| x.0), fresh.account_status, "{a:?}");
            assert_eq!(
                acc.map(|x| x.1.clone()).unwrap_or_default(),
                fresh.contracts.to_vec()
            );
            assert_eq!(
                got.persons.get(w).copied().unwrap_or(false),
                fresh.email_verified,
                "{w}"
            );
            let m = got.members.get(&(a.as_str().to_owned(), w.to_owned()));
            assert_eq!(
                m.copied().unwrap_or((None, None)),
                (fresh.membership, fresh.latest_request),
                "{a:?} {w}"
            );
        }
    }
    assert_eq!(
        got.members[&(other.as_str().to_owned(), "ana".to_owned())]
            .0
            .and_then(|m| m.expires_at),
        Some(50),
        "the end of a time-boxed grant"
    );
    assert_eq!(
        got.members[&(icn().as_str().to_owned(), "cy".to_owned())]
            .1
            .map(|r| r.state),
        Some(AccessRequestState::Pending),
        "the later request"
    );

    // Capped parts stop at their cap.
    let mut few = Collected::default();
    let capped = entitlements::store::SnapshotLimits {
        accounts: 1,
        persons: 2,
        members: 3,
    };
    let info = store.snapshot(capped, &mut few).await.unwrap();
    assert_eq!((info.accounts, info.persons, info.members), (1, 2, 3));
    assert_eq!(few.members.len(), 3);
}

async fn email_domain_policies_are_kept_per_account_and_domain(backend: Backend) {
    use entitlements::domain::{DomainAction, DomainRule, EmailDomain};
    let (store, _db, _dir) = open(backend).await;
    seed(&store).await;
    let rule = |domain: &str, action, at| DomainRule {
        icn: icn(),
        domain: EmailDomain::parse(domain).unwrap(),
        action,
        role: (action == DomainAction::AutoApprove).then_some(Role::AuthorizedUser),
        created_by: web(if at == 10 { "ana" } else { "bob" }),
        created_at: at,
        updated_at: at,
    };
    let mut tx = store.begin().await.unwrap();
    for d in ["c.example", "a.example", "b.example"] {
        tx.upsert_domain_rule(&rule(d, DomainAction::Hold, 10))
            .await
            .unwrap();
    }
    // Set again: the action, role and update time change; who made it and when stay.
    tx.upsert_domain_rule(&rule("a.example", DomainAction::AutoApprove, 20))
        .await
        .unwrap();
    let a = EmailDomain::parse("a.example").unwrap();
    let got = tx.domain_rule(&icn(), &a).await.unwrap().unwrap();
    assert_eq!(
        (
            got.action,
            got.role,
            got.created_by.as_str(),
            got.created_at,
            got.updated_at
        ),
        (
            DomainAction::AutoApprove,
            Some(Role::AuthorizedUser),
            "ana",
            10,
            20
        )
    );
    assert!(
        tx.domain_rule(&Icn::parse("43").unwrap(), &a)
            .await
            .unwrap()
            .is_none()
    );
    // Policies are not what checks read: no change-feed revision.
    assert_eq!(tx.commit(30).await.unwrap(), None);

    let page = store.list_domain_rules(&icn(), None, 2).await.unwrap();
    let names: Vec<&str> = page.items.iter().map(|r| r.domain.as_str()).collect();
    assert_eq!(names, ["a.example", "b.example"]);
    let rest = store.list_domain_rules(&icn(), page.next, 2).await.unwrap();
    assert_eq!(rest.items.len(), 1);
    assert_eq!(rest.items[0].domain.as_str(), "c.example");
    assert!(rest.next.is_none());

    let mut tx = store.begin().await.unwrap();
    assert!(tx.delete_domain_rule(&icn(), &a).await.unwrap());
    assert!(!tx.delete_domain_rule(&icn(), &a).await.unwrap());
    tx.commit(40).await.unwrap();
    assert_eq!(
        store
            .list_domain_rules(&icn(), None, 10)
            .await
            .unwrap()
            .items
            .len(),
        2
    );
}

/// Contract-end warnings: only the last end of an active account inside the window, each end
/// recorded once; recertification questions: due ones of active non-STC members only, asked
/// while the membership existed, closed once.
async fn contract_warnings_and_recertifications(backend: Backend) {
    let (store, _db, _dir) = open(backend).await;
    seed(&store).await;
    let contract = |id: &str, ends_at| Contract {
        icn: icn(),
        contract_id: ContractId::parse(id).unwrap(),
        product_ids: Vec::new(),
        starts_at: 0,
        ends_at,
        includes_24x7: false,
        updated_at: 1,
    };
    let member = |w: &str, role, created_at| Membership {
        icn: icn(),
        web_id: web(w),
        role,
        created_at,
        updated_at: created_at,
        removed_at: None,
        expires_at: None,
    };
    let mut tx = store.begin().await.unwrap();
    tx.upsert_contract(&contract("C1", 1_000)).await.unwrap();
    tx.upsert_contract(&contract("C2", 2_000)).await.unwrap();
    tx.upsert_membership(&member("ana", Role::SiteTechnicalContact, 1))
        .await
        .unwrap();
    tx.upsert_membership(&member("bob", Role::AuthorizedUser, 1))
        .await
        .unwrap();
    tx.upsert_membership(&member("cy", Role::TechnicalContact, 50))
        .await
        .unwrap();
    for w in ["ana", "bob", "cy"] {
        tx.ask_recertification(&icn(), &web(w), 10, 500)
            .await
            .unwrap();
    }
    tx.commit(1).await.unwrap();

    // C1 ends in the window but C2 later: not the last end; C2 outside the window.
    assert!(
        store
            .due_contract_warnings(100, 1_500, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.due_contract_warnings(100, 2_000, 10).await.unwrap(),
        vec![(icn(), 2_000)]
    );
    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.contracts(&icn()).await.unwrap().len(), 2);
    assert!(
        tx.record_contract_warning(&icn(), 2_000, 100)
            .await
            .unwrap()
    );
    assert!(
        !tx.record_contract_warning(&icn(), 2_000, 100)
            .await
            .unwrap()
    );
    tx.commit(100).await.unwrap();
    assert!(
        store
            .due_contract_warnings(100, 2_000, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // Only bob owes: ana is an STC, cy's membership is newer than the question.
    assert!(
        store
            .due_recertifications(499, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.due_recertifications(500, 10).await.unwrap(),
        vec![(icn(), web("bob"))]
    );
    let members = store
        .list_members(&icn(), None, 10, 600)
        .await
        .unwrap()
        .items;
    let owed: Vec<(String, Option<i64>)> = members
        .iter()
        .map(|m| (m.membership.web_id.to_string(), m.recertify_by))
        .collect();
    assert_eq!(
        owed,
        vec![
            ("ana".to_owned(), None),
            ("bob".to_owned(), Some(500)),
            ("cy".to_owned(), None)
        ]
    );
    let mut tx = store.begin().await.unwrap();
    assert_eq!(
        tx.recertification(&icn(), &web("bob")).await.unwrap(),
        Some((10, 500))
    );
    assert!(
        tx.delete_recertification(&icn(), &web("bob"))
            .await
            .unwrap()
    );
    assert!(
        !tx.delete_recertification(&icn(), &web("bob"))
            .await
            .unwrap()
    );
    let active = tx.active_memberships(&icn(), 600).await.unwrap();
    assert_eq!(active.len(), 3);
    tx.commit(600).await.unwrap();
    assert!(
        store
            .due_recertifications(600, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

/// AIP-155 claims: one per (caller, method, id), written in the change's transaction, the
/// first answer kept, older claims ignored, replaced and trimmed.
async fn request_id_claims_hold_one_key_once(backend: Backend) {
    let (store, _db, _dir) = open(backend).await;
    let key = |w: &str, method: &str| RequestKey {
        web_id: web(w),
        method: method.into(),
        request_id: "5f0c8a1e-3b7d-4c2a-9e61-0d4b8f2a7c93".into(),
    };
    let k = key("ana", "CreateAccount");
    {
        let mut tx = store.begin().await.unwrap();
        tx.claim_request(&k, "f1", 100, 0).await.unwrap();
    }
    assert_eq!(
        store.request_claim(&k, 0).await.unwrap(),
        None,
        "rolled back"
    );
    let mut tx = store.begin().await.unwrap();
    tx.claim_request(&k, "f1", 100, 0).await.unwrap();
    tx.commit(100).await.unwrap();
    let unanswered = RequestClaim {
        fingerprint: "f1".into(),
        answer: None,
    };
    assert_eq!(store.request_claim(&k, 0).await.unwrap(), Some(unanswered));
    let mut tx = store.begin().await.unwrap();
    assert!(matches!(
        tx.claim_request(&k, "f1", 150, 0).await,
        Err(StoreError::Conflict(_))
    ));
    drop(tx);
    let mut tx = store.begin().await.unwrap();
    tx.claim_request(&key("bob", "CreateAccount"), "f1", 100, 0)
        .await
        .unwrap();
    tx.claim_request(&key("ana", "SetAccountStatus"), "f1", 100, 0)
        .await
        .unwrap();
    tx.commit(100).await.unwrap();
    store.save_request_answer(&k, b"one").await.unwrap();
    store.save_request_answer(&k, b"two").await.unwrap();
    assert_eq!(
        store.request_claim(&k, 100).await.unwrap(),
        Some(RequestClaim {
            fingerprint: "f1".into(),
            answer: Some(b"one".to_vec()),
        }),
        "the first answer stays"
    );
    assert_eq!(store.request_claim(&k, 101).await.unwrap(), None, "too old");
    let mut tx = store.begin().await.unwrap();
    tx.claim_request(&k, "f2", 200, 150).await.unwrap();
    tx.commit(200).await.unwrap();
    assert_eq!(
        store.request_claim(&k, 150).await.unwrap(),
        Some(RequestClaim {
            fingerprint: "f2".into(),
            answer: None,
        }),
        "an expired claim is replaced"
    );
    assert_eq!(store.trim_request_claims(150).await.unwrap(), 2);
    assert!(store.request_claim(&k, 0).await.unwrap().is_some());
    assert_eq!(
        store
            .request_claim(&key("bob", "CreateAccount"), 0)
            .await
            .unwrap(),
        None
    );
}

crate::both_backends!(
    request_id_claims_hold_one_key_once,
    email_domain_policies_are_kept_per_account_and_domain,
    a_snapshot_holds_what_checks_read,
    contract_warnings_and_recertifications,
    the_change_feed_is_gapless_and_commit_ordered,
    a_dropped_transaction_leaves_nothing,
    one_pending_request_per_person_and_account,
    check_facts_read_everything_a_decision_needs,
    outbox_claims_lease_and_retries,
    members_page_by_web_id,
    entitlement_candidates_are_every_row_of_the_person,
);
