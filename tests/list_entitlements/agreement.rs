//! ListEntitlements agrees with CheckEntitlement over random data: random accounts (some
//! suspended), contracts (ended, in force, not started, ending soon; 24x7 or not; every
//! product or a list), people with random relations to each account (none, pending, approved
//! as AU or TC with or without an end, denied, withdrawn, removed, STC) and random
//! verification, and a random move of the clock. For every person and action the list holds
//! exactly the accounts whose check allows; for every entry the checks of each product and
//! of severity 1 allow exactly what the entry says; with a consistency token and fully
//! consistently, on every page size.
//!
//! Knobs: ENTITLEMENTS_LIST_SEED (the seed, printed at the start; random by default),
//! ENTITLEMENTS_LIST_ROUNDS (worlds per backend, default 3).

use std::collections::BTreeMap;

use proptest::prelude::RngExt;
use proptest::test_runner::{RngAlgorithm, TestRng};

use super::*;

const ACCOUNTS: usize = 6;
const PERSONS: usize = 5;
const PRODUCTS: [&str; 3] = ["P1", "P2", "P3"];

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rng_of(seed: u64) -> TestRng {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    TestRng::from_seed(RngAlgorithm::ChaCha, &bytes)
}

/// Who and which accounts one world made; the boss (STC of every account) spans worlds.
struct World {
    accounts: Vec<String>,
    persons: Vec<String>,
}

async fn build(app: &TestApp, rng: &mut TestRng, round: usize) -> World {
    let now = whole_second(app);
    let accounts: Vec<String> = (0..ACCOUNTS)
        .map(|i| format!("{}{i:03}", 200 + round))
        .collect();
    for icn in &accounts {
        create_account(app, icn).await;
        add_stc(app, icn, BOSS).await;
        if round == 0 && icn == &accounts[0] {
            verify(app, BOSS).await;
        }
        for j in 0..rng.random_range(0..=3) {
            let span = match rng.random_range(0..5) {
                0 => (now - 30 * DAY, now - DAY),
                1 | 2 => (now - DAY, now + rng.random_range(1..=400) * DAY),
                3 => (now + 5 * DAY, now + 60 * DAY),
                _ => (now - DAY, now + 2 * DAY),
            };
            let products: &[&str] = match rng.random_range(0..4) {
                0 => &[],
                1 => &["P1"],
                2 => &["P1", "P2"],
                _ => &["P3"],
            };
            let x24 = rng.random_bool(0.5);
            contract(app, icn, &format!("K-{icn}-{j}"), products, span, x24).await;
        }
    }
    let persons: Vec<String> = (0..PERSONS).map(|i| format!("p{round}n{i}")).collect();
    for who in &persons {
        let mut emailed = false;
        for icn in &accounts {
            let role = if rng.random_bool(0.5) {
                pb::Role::AuthorizedUser
            } else {
                pb::Role::TechnicalContact
            };
            match rng.random_range(0..10) {
                0 => continue,
                1 => {
                    request(app, who, icn, role).await;
                }
                2..=4 => {
                    let id = request(app, who, icn, role).await;
                    let end = rng
                        .random_bool(0.3)
                        .then(|| now + rng.random_range(1..=5) * DAY);
                    approve(app, &id, end).await;
                }
                5 => {
                    let id = request(app, who, icn, role).await;
                    deny(app, &id).await;
                }
                6 => {
                    let id = request(app, who, icn, role).await;
                    approve(app, &id, None).await;
                    remove(app, icn, who).await;
                }
                7 => {
                    let id = request(app, who, icn, role).await;
                    app.access()
                        .withdraw_request(authed(
                            pb::WithdrawRequestRequest {
                                request_id: String::new(),
                                access_request_id: id,
                                reason: String::new(),
                            },
                            &app.person(who),
                        ))
                        .await
                        .expect("withdraw");
                }
                _ => add_stc(app, icn, who).await,
            }
            emailed = true;
        }
        if emailed && rng.random_bool(0.75) {
            verify(app, who).await;
        }
    }
    for icn in &accounts {
        if rng.random_bool(0.2) {
            set_status(app, icn, pb::AccountStatus::Suspended).await;
        }
    }
    if rng.random_bool(0.5) {
        // Past the contracts ending soon and some of the grants' ends.
        app.clock.set(now + 3 * DAY);
    }
    World { accounts, persons }
}

/// How fresh both the lists and the checks are asked to be.
#[derive(Clone, Copy, Debug)]
struct Fresh<'a> {
    token: &'a str,
    consistency: pb::Consistency,
}

async fn check(
    app: &TestApp,
    fresh: Fresh<'_>,
    web_id: &str,
    icn: &str,
    action: pb::Action,
    product: &str,
    severity: i32,
) -> pb::CheckEntitlementResponse {
    app.entitlement()
        .check_entitlement(authed(
            pb::CheckEntitlementRequest {
                web_id: web_id.into(),
                icn: icn.into(),
                action: action as i32,
                product_id: product.into(),
                severity,
                consistency_token: fresh.token.into(),
                consistency: fresh.consistency as i32,
            },
            &app.checker(),
        ))
        .await
        .expect("check")
        .into_inner()
}

fn covers(products: &[String], all: bool, p: &str) -> bool {
    all || products.iter().any(|q| q == p)
}

/// One person's lists, for each action, against the checks of every account they may have
/// a relation to.
async fn compare(
    app: &TestApp,
    rng: &mut TestRng,
    fresh: Fresh<'_>,
    who: &str,
    accounts: &[String],
    ctx: &str,
) {
    for action in [OpenServiceRequest, ViewSupportArea, ManageUsers] {
        let ask = Ask {
            action,
            page_size: rng.random_range(1..=4),
            consistency_token: fresh.token,
            consistency: fresh.consistency,
            ..Ask::new(who)
        };
        let listed: BTreeMap<String, pb::Entitlement> = list_all(app, &app.checker(), &ask)
            .await
            .into_iter()
            .map(|e| (e.icn.clone(), e))
            .collect();
        let ctx = format!("{ctx} {who} {action:?} {fresh:?}");
        for icn in accounts {
            let c = check(app, fresh, who, icn, action, "", 0).await;
            let entry = listed.get(icn);
            assert_eq!(
                entry.is_some(),
                c.allowed,
                "{ctx} {icn}: check {c:?}, listed {entry:?}"
            );
            let Some(e) = entry else { continue };
            assert_eq!(e.role, c.role, "{ctx} {icn}");
            if action != OpenServiceRequest {
                continue;
            }
            assert_eq!(e.highest_severity, c.highest_severity, "{ctx} {icn}: {c:?}");
            let sev1 = check(app, fresh, who, icn, action, "", 1).await;
            assert_eq!(sev1.allowed, e.highest_severity == 1, "{ctx} {icn}: {e:?}");
            let highest = check(app, fresh, who, icn, action, "", e.highest_severity).await;
            assert!(highest.allowed, "{ctx} {icn}: {e:?}");
            for p in PRODUCTS {
                let any = check(app, fresh, who, icn, action, p, 0).await;
                let said = covers(&e.product_ids, e.all_products, p);
                assert_eq!(any.allowed, said, "{ctx} {icn} {p}: {e:?}");
                let one = check(app, fresh, who, icn, action, p, 1).await;
                let said = e
                    .contracts
                    .iter()
                    .any(|k| covers(&k.product_ids, k.all_products, p) && k.highest_severity == 1);
                assert_eq!(one.allowed, said, "{ctx} {icn} {p} severity 1: {e:?}");
            }
        }
        // Nothing is listed that was not asked about above.
        assert!(
            listed.keys().all(|icn| accounts.contains(icn)),
            "{ctx}: {listed:?}"
        );
    }
}

async fn list_agrees_with_check(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let seed = env_or("ENTITLEMENTS_LIST_SEED", rand_seed());
    eprintln!("list_agrees_with_check: ENTITLEMENTS_LIST_SEED={seed}");
    let mut rng = rng_of(seed);
    let mut every_account = Vec::new();
    let mut listed = 0;
    for round in 0..usize::try_from(env_or("ENTITLEMENTS_LIST_ROUNDS", 3)).unwrap() {
        let world = build(&app, &mut rng, round).await;
        every_account.extend(world.accounts.iter().cloned());
        let token = app.token_of_now().await;
        for fresh in [
            Fresh {
                token: &token,
                consistency: pb::Consistency::Unspecified,
            },
            Fresh {
                token: "",
                consistency: pb::Consistency::FullyConsistent,
            },
        ] {
            let ctx = format!("seed {seed} round {round}");
            for who in &world.persons {
                compare(&app, &mut rng, fresh, who, &world.accounts, &ctx).await;
            }
            compare(&app, &mut rng, fresh, BOSS, &every_account, &ctx).await;
        }
        for who in &world.persons {
            let own = list_all(&app, &app.person(who), &Ask::new(who)).await;
            let theirs = list_all(&app, &app.checker(), &Ask::new(who)).await;
            assert_eq!(own, theirs, "seed {seed} round {round} {who}");
            listed += own.len();
        }
    }
    eprintln!("list_agrees_with_check: {listed} entries of people other than the boss");
    // The worlds are not all empty: some entries were compared.
    assert!(
        listed > 0,
        "seed {seed}: nobody but the boss was entitled anywhere"
    );
}

fn rand_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| {
            u64::try_from(d.as_nanos() % u128::from(u64::MAX)).unwrap_or(0)
        })
}

crate::both_backends!(list_agrees_with_check);
