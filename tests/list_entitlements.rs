//! ListEntitlements (issue 10): every account where a person may act, paged by ICN with
//! tokens tied to the request, each entry what CheckEntitlement answers; who may list whom;
//! `ctl list-entitlements`. The randomized agreement with CheckEntitlement is in `agreement`.

mod agreement;

use entitlements::proto::v1 as pb;
use pb::Action::*;
use std::time::{Duration, Instant};

use tonic::{Code, Status};

use crate::support::*;

pub const DAY: i64 = 24 * 3_600_000;
pub const BOSS: &str = "boss";

/// The clock's present on a whole second: timestamps travel in whole seconds here.
pub fn whole_second(app: &TestApp) -> i64 {
    let now = app.clock.now_ms();
    now - now.rem_euclid(1000)
}

pub async fn create_account(app: &TestApp, icn: &str) {
    app.admin()
        .create_account(authed(
            pb::CreateAccountRequest {
                request_id: String::new(),
                icn: icn.into(),
                company_name: format!("Company {icn}"),
                country_code: COUNTRY.into(),
            },
            &app.operator(),
        ))
        .await
        .expect("create account");
}

pub async fn contract(
    app: &TestApp,
    icn: &str,
    id: &str,
    products: &[&str],
    (start, end): (i64, i64),
    x24: bool,
) {
    app.admin()
        .upsert_support_contract(authed(
            pb::UpsertSupportContractRequest {
                request_id: String::new(),
                icn: icn.into(),
                contract_id: id.into(),
                product_ids: products.iter().map(|p| (*p).to_owned()).collect(),
                start_time: ts(start),
                end_time: ts(end),
                includes_24x7: x24,
            },
            &app.operator(),
        ))
        .await
        .expect("upsert contract");
}

pub async fn add_stc(app: &TestApp, icn: &str, who: &str) {
    app.admin()
        .add_site_technical_contact(authed(
            pb::AddSiteTechnicalContactRequest {
                request_id: String::new(),
                icn: icn.into(),
                web_id: who.into(),
                email: format!("{who}@example.com"),
                given_name: "Site".into(),
                family_name: "Contact".into(),
            },
            &app.operator(),
        ))
        .await
        .expect("add stc");
}

pub async fn set_status(app: &TestApp, icn: &str, status: pb::AccountStatus) {
    app.admin()
        .set_account_status(authed(
            pb::SetAccountStatusRequest {
                request_id: String::new(),
                icn: icn.into(),
                status: status as i32,
                reason: "test".into(),
            },
            &app.operator(),
        ))
        .await
        .expect("set status");
}

/// The access request id of `who`'s new request.
pub async fn request(app: &TestApp, who: &str, icn: &str, role: pb::Role) -> String {
    app.access()
        .request_access(authed(
            pb::RequestAccessRequest {
                request_id: String::new(),
                icn: icn.into(),
                country_code: COUNTRY.into(),
                requested_role: role as i32,
            },
            &app.person(who),
        ))
        .await
        .expect("request access")
        .into_inner()
        .access_request
        .expect("access_request")
        .access_request_id
}

pub async fn approve(app: &TestApp, id: &str, expire_time: Option<i64>) {
    app.access()
        .approve_request(authed(
            pb::ApproveRequestRequest {
                request_id: String::new(),
                access_request_id: id.into(),
                granted_role: 0,
                expire_time: expire_time.and_then(ts),
            },
            &app.person(BOSS),
        ))
        .await
        .expect("approve");
}

pub async fn deny(app: &TestApp, id: &str) {
    app.access()
        .deny_request(authed(
            pb::DenyRequestRequest {
                request_id: String::new(),
                access_request_id: id.into(),
                reason: "no".into(),
            },
            &app.person(BOSS),
        ))
        .await
        .expect("deny");
}

pub async fn remove(app: &TestApp, icn: &str, who: &str) {
    app.access()
        .remove_member(authed(
            pb::RemoveMemberRequest {
                request_id: String::new(),
                icn: icn.into(),
                web_id: who.into(),
                reason: "gone".into(),
            },
            &app.person(BOSS),
        ))
        .await
        .expect("remove member");
}

/// Verifies `who`'s address with the first code emailed to them.
pub async fn verify(app: &TestApp, who: &str) {
    let code = app
        .verification_code(&format!("{who}@example.com"), 1)
        .await;
    app.access()
        .verify_email(authed(
            pb::VerifyEmailRequest {
                code,
                request_id: String::new(),
            },
            &app.person(who),
        ))
        .await
        .expect("verify");
}

pub struct Ask<'a> {
    pub web_id: &'a str,
    pub action: pb::Action,
    pub page_size: i32,
    pub consistency_token: &'a str,
    pub consistency: pb::Consistency,
}

impl<'a> Ask<'a> {
    pub fn new(web_id: &'a str) -> Self {
        Ask {
            web_id,
            action: Unspecified,
            page_size: 0,
            consistency_token: "",
            consistency: pb::Consistency::Unspecified,
        }
    }
}

pub async fn list_page(
    app: &TestApp,
    token: &str,
    ask: &Ask<'_>,
    page_token: &str,
) -> Result<pb::ListEntitlementsResponse, Status> {
    app.entitlement()
        .list_entitlements(authed(
            pb::ListEntitlementsRequest {
                web_id: ask.web_id.into(),
                action: ask.action as i32,
                page_size: ask.page_size,
                page_token: page_token.into(),
                consistency_token: ask.consistency_token.into(),
                consistency: ask.consistency as i32,
            },
            token,
        ))
        .await
        .map(|r| r.into_inner())
}

/// Every page, from the first to the one without a next token. Every page but the last is
/// full, none is empty (unless the list is), and no entry comes twice, in ICN order.
pub async fn list_all(app: &TestApp, token: &str, ask: &Ask<'_>) -> Vec<pb::Entitlement> {
    let mut all: Vec<pb::Entitlement> = Vec::new();
    let mut page_token = String::new();
    let size = usize::try_from(if ask.page_size == 0 {
        50
    } else {
        ask.page_size
    })
    .unwrap();
    loop {
        let page = list_page(app, token, ask, &page_token).await.expect("list");
        let n = page.entitlements.len();
        assert!(n <= size, "page of {n} > {size}");
        assert!(
            n > 0 || (all.is_empty() && page.next_page_token.is_empty()),
            "an empty page with entries around it: {page:?}"
        );
        assert!(!page.consistency_token.is_empty());
        all.extend(page.entitlements);
        if page.next_page_token.is_empty() {
            break;
        }
        assert_eq!(n, size, "a page short of its size before the end");
        assert_ne!(
            page.next_page_token, page_token,
            "a token that goes nowhere"
        );
        page_token = page.next_page_token;
    }
    let icns: Vec<&str> = all.iter().map(|e| e.icn.as_str()).collect();
    assert!(
        icns.windows(2).all(|w| w[0] < w[1]),
        "in ICN order, once: {icns:?}"
    );
    all
}

pub fn icns(entries: &[pb::Entitlement]) -> Vec<&str> {
    entries.iter().map(|e| e.icn.as_str()).collect()
}

/// ana's accounts. Open service requests: 101, 102 (TC), 104, 107, 112, 113. Not: 103 (the
/// contract ended), 105 (suspended), 106 (pending), 108 (the contract starts later), 109
/// (denied), 110 (removed), 111 (nothing). ben is a member of 101 only.
pub async fn fixture(app: &TestApp) -> i64 {
    let now = whole_second(app);
    let year = (now - DAY, now + 365 * DAY);
    for n in 101..=113 {
        let icn = n.to_string();
        create_account(app, &icn).await;
        add_stc(app, &icn, BOSS).await;
        if n == 101 {
            verify(app, BOSS).await;
        }
        match n {
            102 => {
                contract(
                    app,
                    &icn,
                    "C-P1",
                    &["P1"],
                    (now - DAY, now + 100 * DAY),
                    false,
                )
                .await;
                contract(
                    app,
                    &icn,
                    "C-P2",
                    &["P2"],
                    (now - DAY, now + 200 * DAY),
                    true,
                )
                .await;
            }
            103 => contract(app, &icn, "C-OLD", &[], (now - 9 * DAY, now - DAY), true).await,
            104 => {
                contract(
                    app,
                    &icn,
                    "C-BASIC",
                    &[],
                    (now - DAY, now + 50 * DAY),
                    false,
                )
                .await
            }
            108 => {
                contract(
                    app,
                    &icn,
                    "C-NEXT",
                    &[],
                    (now + 10 * DAY, now + 99 * DAY),
                    true,
                )
                .await
            }
            _ => contract(app, &icn, &format!("C-{icn}"), &[], year, true).await,
        }
    }
    for n in [101, 103, 104, 105, 107, 108, 110, 112, 113] {
        let id = request(app, "ana", &n.to_string(), pb::Role::AuthorizedUser).await;
        approve(app, &id, None).await;
    }
    let id = request(app, "ana", "102", pb::Role::TechnicalContact).await;
    approve(app, &id, None).await;
    request(app, "ana", "106", pb::Role::AuthorizedUser).await;
    let id = request(app, "ana", "109", pb::Role::AuthorizedUser).await;
    deny(app, &id).await;
    remove(app, "110", "ana").await;
    set_status(app, "105", pb::AccountStatus::Suspended).await;
    verify(app, "ana").await;
    let id = request(app, "ben", "101", pb::Role::AuthorizedUser).await;
    approve(app, &id, None).await;
    verify(app, "ben").await;
    now
}

const ANA_OSR: [&str; 6] = ["101", "102", "104", "107", "112", "113"];

/// Every page size from 1 past the number of entries: the same entries, each once, in ICN
/// order; pages full until the last; the other actions list their own accounts.
async fn pages_hold_every_entry_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    fixture(&app).await;
    let checker = app.checker();
    for size in 1..=7 {
        let ask = Ask {
            page_size: size,
            ..Ask::new("ana")
        };
        let all = list_all(&app, &checker, &ask).await;
        assert_eq!(icns(&all), ANA_OSR, "page size {size}");
    }
    // A page size past the cap is served at the cap, not refused.
    let ask = Ask {
        page_size: 100_000,
        ..Ask::new("ana")
    };
    let page = list_page(&app, &checker, &ask, "").await.expect("list");
    assert_eq!(icns(&page.entitlements), ANA_OSR);
    assert!(page.next_page_token.is_empty());

    let view = Ask {
        action: ViewSupportArea,
        page_size: 4,
        ..Ask::new("ana")
    };
    let listed = list_all(&app, &checker, &view).await;
    let want = [
        "101", "102", "103", "104", "106", "107", "108", "112", "113",
    ];
    assert_eq!(icns(&listed), want);
    let pending = listed.iter().find(|e| e.icn == "106").unwrap();
    assert_eq!(pending.role, pb::Role::ProvisionalCaller as i32);
    // No contract decides viewing or managing: nothing about them is listed.
    assert!(
        listed
            .iter()
            .all(|e| e.contracts.is_empty() && e.highest_severity == 0)
    );
    let manage = Ask {
        action: ManageUsers,
        ..Ask::new("ana")
    };
    assert_eq!(icns(&list_all(&app, &checker, &manage).await), ["102"]);
    let ben = list_all(&app, &checker, &Ask::new("ben")).await;
    assert_eq!(icns(&ben), ["101"]);
    assert!(
        list_all(&app, &checker, &Ask::new("nobody"))
            .await
            .is_empty()
    );
}

/// What an entry says: the role, the company, each contract in force with its products and
/// most severe request, all products or their union, the last end.
async fn entries_describe_the_coverage(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let now = fixture(&app).await;
    let all = list_all(&app, &app.checker(), &Ask::new("ana")).await;
    let get = |icn: &str| all.iter().find(|e| e.icn == icn).unwrap().clone();

    let e = get("101");
    assert_eq!(e.company_name, "Company 101");
    assert_eq!(e.role, pb::Role::AuthorizedUser as i32);
    assert!(e.all_products && e.product_ids.is_empty());
    assert_eq!(e.highest_severity, 1);
    assert_eq!(e.contract_end_time, ts(now + 365 * DAY));
    let c = &e.contracts[..];
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].contract_id, "C-101");
    assert!(c[0].all_products && c[0].includes_24x7 && c[0].product_ids.is_empty());
    assert_eq!(c[0].highest_severity, 1);

    let e = get("102");
    assert_eq!(e.role, pb::Role::TechnicalContact as i32);
    assert!(!e.all_products);
    assert_eq!(e.product_ids, ["P1", "P2"]);
    assert_eq!(e.highest_severity, 1);
    assert_eq!(e.contract_end_time, ts(now + 200 * DAY));
    let ids: Vec<&str> = e.contracts.iter().map(|c| c.contract_id.as_str()).collect();
    assert_eq!(ids, ["C-P1", "C-P2"]);
    let (p1, p2) = (&e.contracts[0], &e.contracts[1]);
    assert_eq!(
        (p1.product_ids.clone(), p1.highest_severity),
        (vec!["P1".into()], 2)
    );
    assert!(!p1.all_products && !p1.includes_24x7);
    assert_eq!(p1.end_time, ts(now + 100 * DAY));
    assert_eq!(
        (p2.product_ids.clone(), p2.highest_severity),
        (vec!["P2".into()], 1)
    );

    let e = get("104");
    assert!(e.all_products);
    assert_eq!(e.highest_severity, 2);
    assert_eq!(e.contract_end_time, ts(now + 50 * DAY));

    // The same as the person sees it, and as an operator does.
    let own = list_all(&app, &app.person("ana"), &Ask::new("ana")).await;
    assert_eq!(own, all);
    let op = list_all(&app, &app.operator(), &Ask::new("ana")).await;
    assert_eq!(op, all);
}

/// Page tokens are opaque and belong to the list they came from (person and action); a bad
/// size, token, action, Web ID or consistency names its field.
async fn bad_arguments_name_their_field(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    fixture(&app).await;
    let checker = app.checker();
    let ask = Ask {
        page_size: 2,
        ..Ask::new("ana")
    };
    let first = list_page(&app, &checker, &ask, "").await.expect("list");
    let token = first.next_page_token;
    assert!(!token.is_empty());
    assert!(!token.contains("102") && !token.contains("ana"), "{token}");
    let second = list_page(&app, &checker, &ask, &token).await.expect("list");
    assert_eq!(icns(&second.entitlements), ["104", "107"]);
    // Another page size may continue it (AIP-158); another person or action may not.
    let wider = Ask {
        page_size: 10,
        ..Ask::new("ana")
    };
    let rest = list_page(&app, &checker, &wider, &token)
        .await
        .expect("list");
    assert_eq!(icns(&rest.entitlements), ["104", "107", "112", "113"]);
    let bad_token = |r: Result<pb::ListEntitlementsResponse, Status>| {
        let s = assert_status(r, Code::InvalidArgument, "INVALID_PAGE_TOKEN");
        assert_eq!(field_violation(&s).as_deref(), Some("page_token"));
    };
    let ben = Ask {
        page_size: 2,
        ..Ask::new("ben")
    };
    bad_token(list_page(&app, &checker, &ben, &token).await);
    let view = Ask {
        action: ViewSupportArea,
        page_size: 2,
        ..Ask::new("ana")
    };
    bad_token(list_page(&app, &checker, &view, &token).await);
    bad_token(list_page(&app, &checker, &ask, "not-a-token").await);
    // A token of another list (members) is not one of this list.
    let members = app
        .access()
        .list_members(authed(
            pb::ListMembersRequest {
                icn: "101".into(),
                page_size: 1,
                page_token: String::new(),
            },
            &app.operator(),
        ))
        .await
        .expect("members")
        .into_inner()
        .next_page_token;
    assert!(!members.is_empty());
    bad_token(list_page(&app, &checker, &ask, &members).await);

    let field = |r: Result<pb::ListEntitlementsResponse, Status>, name: &str| {
        let s = assert_status(r, Code::InvalidArgument, "");
        assert_eq!(field_violation(&s).as_deref(), Some(name), "{s:?}");
    };
    let negative = Ask {
        page_size: -1,
        ..Ask::new("ana")
    };
    field(list_page(&app, &checker, &negative, "").await, "page_size");
    field(list_page(&app, &checker, &Ask::new(""), "").await, "web_id");
    let r = app
        .entitlement()
        .list_entitlements(authed(
            pb::ListEntitlementsRequest {
                web_id: "ana".into(),
                action: 99,
                ..Default::default()
            },
            &checker,
        ))
        .await
        .map(tonic::Response::into_inner);
    field(r, "action");
    let at_least = Ask {
        consistency: pb::Consistency::AtLeastAsFresh,
        ..Ask::new("ana")
    };
    field(
        list_page(&app, &checker, &at_least, "").await,
        "consistency_token",
    );
    let r = list_page(
        &app,
        &checker,
        &Ask {
            consistency_token: "garbage",
            ..Ask::new("ana")
        },
        "",
    )
    .await;
    let s = assert_status(r, Code::InvalidArgument, "INVALID_CONSISTENCY_TOKEN");
    assert_eq!(field_violation(&s).as_deref(), Some("consistency_token"));
}

/// The ticketing system and operators list anyone; a person only themself (another person is
/// refused as for checking them); no token, no answer. A list honours the consistency asked.
async fn who_may_list(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    fixture(&app).await;
    let ana = app.person("ana");
    assert_eq!(icns(&list_all(&app, &ana, &Ask::new("ana")).await), ANA_OSR);
    let r = list_page(&app, &ana, &Ask::new("ben"), "").await;
    assert_status(r, Code::PermissionDenied, "CHECK_SCOPE_REQUIRED");
    let no_email = app.token("ana", None, &[]);
    assert_eq!(
        icns(&list_all(&app, &no_email, &Ask::new("ana")).await),
        ANA_OSR
    );
    for token in [app.checker(), app.operator()] {
        assert_eq!(
            icns(&list_all(&app, &token, &Ask::new("ben")).await),
            ["101"]
        );
    }
    let r = app
        .entitlement()
        .list_entitlements(tonic::Request::new(pb::ListEntitlementsRequest {
            web_id: "ana".into(),
            ..Default::default()
        }))
        .await;
    assert_eq!(r.unwrap_err().code(), Code::Unauthenticated);

    // A removal is seen at once with its token, and fully consistently without one.
    let written = app
        .access()
        .remove_member(authed(
            pb::RemoveMemberRequest {
                request_id: String::new(),
                icn: "101".into(),
                web_id: "ben".into(),
                reason: String::new(),
            },
            &app.person(BOSS),
        ))
        .await
        .expect("remove")
        .into_inner()
        .consistency_token;
    let with_token = Ask {
        consistency_token: &written,
        ..Ask::new("ben")
    };
    let page = list_page(&app, &app.checker(), &with_token, "")
        .await
        .unwrap();
    assert!(page.entitlements.is_empty());
    assert!(token_revision(&page.consistency_token) >= token_revision(&written));
    let fully = Ask {
        consistency: pb::Consistency::FullyConsistent,
        ..Ask::new("ben")
    };
    let page = list_page(&app, &app.checker(), &fully, "").await.unwrap();
    assert!(page.entitlements.is_empty());

    // Without a token, a page's token still names what the replica has applied, even for
    // someone with no account to check: once the removal is applied, a token that reflects it.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page = list_page(&app, &app.checker(), &Ask::new("nobody"), "")
            .await
            .unwrap();
        assert!(page.entitlements.is_empty());
        if token_revision(&page.consistency_token) >= token_revision(&written) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a page's token never reached the removal's revision: {}",
            page.consistency_token
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `ctl list-entitlements`: one page with its token, then `--all` from that token on.
async fn ctl_lists_entitlements(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    fixture(&app).await;
    let checker = app.checker();
    let run = |args: Vec<String>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_entitlements"));
        cmd.arg("ctl")
            .arg(format!("--server=http://{}", app.addr))
            .arg(format!("--token={checker}"))
            .arg("--output=json")
            .arg("list-entitlements")
            .arg("--web-id=ana")
            .args(args);
        for var in ["ENTITLEMENTS_SERVER", "ENTITLEMENTS_TOKEN"] {
            cmd.env_remove(var);
        }
        async move {
            let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
                .await
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
        }
    };
    let icns_of = |v: &serde_json::Value| -> Vec<String> {
        v["entitlements"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["icn"].as_str().unwrap().to_owned())
            .collect()
    };
    let first = run(vec!["--page-size=2".into()]).await;
    assert_eq!(icns_of(&first), ["101", "102"]);
    let e = &first["entitlements"][1];
    assert_eq!(e["role"], "ROLE_TECHNICAL_CONTACT");
    assert_eq!(e["product_ids"], serde_json::json!(["P1", "P2"]));
    assert_eq!(e["highest_severity"], 1);
    assert_eq!(e["contracts"][0]["contract_id"], "C-P1");
    assert_eq!(e["contracts"][0]["highest_severity"], 2);
    let token = first["next_page_token"].as_str().unwrap().to_owned();
    assert!(!token.is_empty());
    let rest = run(vec![
        "--page-size=1".into(),
        format!("--page-token={token}"),
        "--all".into(),
    ])
    .await;
    assert_eq!(icns_of(&rest), ["104", "107", "112", "113"]);
    assert_eq!(rest["next_page_token"], "");
    let view = run(vec![
        "--action=view-support-area".into(),
        "--all".into(),
        "--fully-consistent".into(),
    ])
    .await;
    assert_eq!(icns_of(&view).len(), 9);
}

/// A person in more accounts than one store read brings (100): a page that fills exactly at
/// the end of a read still says where the next one starts, and a page left short by a read
/// goes on to the next read.
async fn pages_span_store_reads(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let checker = app.checker();
    let all: Vec<String> = (0..101).map(|i| (2_000_000 + i).to_string()).collect();
    create_account(&app, &all[0]).await;
    add_stc(&app, &all[0], "many").await;
    verify(&app, "many").await;
    for icn in &all[1..] {
        create_account(&app, icn).await;
        add_stc(&app, icn, "many").await;
    }
    let ask = |page_size| Ask {
        action: ViewSupportArea,
        page_size,
        ..Ask::new("many")
    };
    let first = list_page(&app, &checker, &ask(100), "")
        .await
        .expect("list");
    assert_eq!(icns(&first.entitlements), all[..100]);
    assert!(!first.next_page_token.is_empty(), "a 101st account follows");
    let rest = list_page(&app, &checker, &ask(100), &first.next_page_token)
        .await
        .expect("list");
    assert_eq!(icns(&rest.entitlements), all[100..]);
    assert!(rest.next_page_token.is_empty());
    let whole = list_page(&app, &checker, &ask(200), "")
        .await
        .expect("list");
    assert_eq!(icns(&whole.entitlements), all);
}

crate::both_backends!(
    pages_hold_every_entry_once,
    pages_span_store_reads,
    entries_describe_the_coverage,
    bad_arguments_name_their_field,
    who_may_list,
    ctl_lists_entitlements,
);
