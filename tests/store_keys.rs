//! Store conformance, change keys: every write that changes what a check reads yields the key
//! of what it changed, on both stores, whichever write path made it. A write that a check
//! cannot see yields none (and takes no revision).

use entitlements::domain::{
    AccessRequest, AccountStatus, ChangeKey, Contract, ContractId, CountryCode, Membership, Role,
};
use entitlements::mail::SealedEmail;
use entitlements::store::{SharedStore, WriteTx};

use crate::store_suite::{account, icn, open, person, web};
use crate::support::*;

/// Commits `tx` and returns the keys the change feed logged for it (none: no revision).
async fn keys(store: &SharedStore, tx: Box<dyn WriteTx>) -> Vec<ChangeKey> {
    let Some(revision) = tx.commit(1).await.unwrap() else {
        return Vec::new();
    };
    let changes = store.changes_since(revision - 1, 1).await.unwrap();
    assert!(changes.iter().all(|c| c.revision == revision));
    changes.into_iter().map(|c| c.key).collect()
}

async fn every_write_a_check_can_see_yields_its_change_key(backend: Backend) {
    let (store, _db, _dir) = open(backend).await;
    let account_key = vec![ChangeKey::Account(icn())];
    let ana = vec![ChangeKey::Person(web("ana"))];
    let member = vec![ChangeKey::Member(icn(), web("ana"))];

    let mut tx = store.begin().await.unwrap();
    tx.insert_account(&account()).await.unwrap();
    assert_eq!(keys(&store, tx).await, account_key, "insert_account");

    let mut tx = store.begin().await.unwrap();
    let mut a = account();
    a.status = AccountStatus::Suspended;
    tx.update_account(&a).await.unwrap();
    assert_eq!(keys(&store, tx).await, account_key, "update_account");

    let mut tx = store.begin().await.unwrap();
    let contract = Contract {
        icn: icn(),
        contract_id: ContractId::parse("C1").unwrap(),
        product_ids: Vec::new(),
        starts_at: 0,
        ends_at: 100,
        includes_24x7: false,
        updated_at: 1,
    };
    tx.upsert_contract(&contract).await.unwrap();
    assert_eq!(keys(&store, tx).await, account_key, "upsert_contract (new)");
    let mut tx = store.begin().await.unwrap();
    tx.upsert_contract(&Contract {
        ends_at: 200,
        ..contract
    })
    .await
    .unwrap();
    assert_eq!(
        keys(&store, tx).await,
        account_key,
        "upsert_contract (change)"
    );

    let mut tx = store.begin().await.unwrap();
    tx.upsert_person(&person("ana", false)).await.unwrap();
    assert_eq!(keys(&store, tx).await, ana, "upsert_person (new)");
    let mut tx = store.begin().await.unwrap();
    tx.upsert_person(&person("ana", true)).await.unwrap();
    assert_eq!(keys(&store, tx).await, ana, "upsert_person (verified)");
    let mut tx = store.begin().await.unwrap();
    let mut renamed = person("ana", true);
    renamed.given_name = "Anna".into();
    tx.upsert_person(&renamed).await.unwrap();
    assert_eq!(
        keys(&store, tx).await,
        vec![],
        "a new name changes no check"
    );

    let mut tx = store.begin().await.unwrap();
    let m = Membership {
        icn: icn(),
        web_id: web("ana"),
        role: Role::AuthorizedUser,
        created_at: 1,
        updated_at: 1,
        removed_at: None,
        expires_at: None,
    };
    tx.upsert_membership(&m).await.unwrap();
    assert_eq!(keys(&store, tx).await, member, "upsert_membership (new)");
    let mut tx = store.begin().await.unwrap();
    tx.upsert_membership(&Membership {
        removed_at: Some(2),
        ..m
    })
    .await
    .unwrap();
    assert_eq!(
        keys(&store, tx).await,
        member,
        "upsert_membership (removal)"
    );

    let mut tx = store.begin().await.unwrap();
    let mut r = AccessRequest::new(
        icn(),
        web("ana"),
        CountryCode::parse("US").unwrap(),
        Role::AuthorizedUser,
        10,
        1000,
    );
    tx.insert_request(&r).await.unwrap();
    assert_eq!(keys(&store, tx).await, member, "insert_request");
    let mut tx = store.begin().await.unwrap();
    r.withdraw(None, 11).unwrap();
    tx.update_request(&r).await.unwrap();
    assert_eq!(keys(&store, tx).await, member, "update_request");

    // Several writes in one transaction: one revision, each key once, in key order.
    let mut tx = store.begin().await.unwrap();
    tx.upsert_person(&person("bob", false)).await.unwrap();
    tx.update_account(&account()).await.unwrap();
    tx.update_account(&account()).await.unwrap();
    assert_eq!(
        keys(&store, tx).await,
        vec![ChangeKey::Account(icn()), ChangeKey::Person(web("bob"))]
    );

    // What no check reads takes no revision.
    let head = store.feed_bounds().await.unwrap().head;
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
    tx.delete_verification(&web("ana")).await.unwrap();
    assert_eq!(keys(&store, tx).await, vec![]);
    assert_eq!(store.feed_bounds().await.unwrap().head, head);
}

crate::both_backends!(every_write_a_check_can_see_yields_its_change_key);
