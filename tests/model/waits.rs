//! Waiting, with deadlines, for what the servers do in the background: delivering email and
//! sweeping expired requests.

use std::time::{Duration, Instant};

use entitlements::proto::v1 as pb;

use super::exec::Tokens;
use super::ops::{Actor, ICNS, PEOPLE};
use crate::support::{TestApp, authed, header};

/// The verification codes delivered to `to`, in the order they were queued.
fn codes_to(app: &TestApp, to: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(app.mail_dir()) else {
        return Vec::new();
    };
    let mut found: Vec<(i64, String)> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .filter_map(|p| {
            let id: i64 = p.file_stem()?.to_str()?.rsplit('-').next()?.parse().ok()?;
            let mail = std::fs::read_to_string(&p).ok()?;
            let addressed =
                header(&mail, "To").is_some_and(|v| v == to || v.ends_with(&format!("<{to}>")));
            let code = mail
                .lines()
                .find_map(|l| l.trim_end().strip_prefix("Verification code: "))
                .map(|c| c.trim().to_owned());
            code.filter(|_| addressed).map(|c| (id, c))
        })
        .collect();
    found.sort();
    found.into_iter().map(|(_, c)| c).collect()
}

/// The `nth` verification code sent to `to`, once delivered (polled, with a deadline).
pub async fn nth_code(app: &TestApp, to: &str, nth: usize) -> Result<String, String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let codes = codes_to(app, to);
        if let Some(c) = codes.get(nth - 1) {
            return Ok(c.clone());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "verification email #{nth} to {to} never arrived (the server sent {} to it)",
                codes.len()
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// How many verification codes went to `to` once the outbox has settled on `expected`
/// (or the deadline passed).
pub async fn codes_sent(app: &TestApp, to: &str, expected: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let n = codes_to(app, to).len();
        if n >= expected || Instant::now() > deadline {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the expiry sweeper has recorded every request in `ids` (of account `icn`) as
/// no longer pending, so later steps do not race it.
pub async fn wait_swept(
    app: &TestApp,
    t: &Tokens,
    icn: usize,
    ids: &[String],
) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut access = app.access();
    loop {
        let m = pb::ListAccessRequestsRequest {
            icn: ICNS[icn].into(),
            state: pb::AccessRequestState::Pending as i32,
            page_size: 100,
            page_token: String::new(),
        };
        let still: Vec<String> = match access
            .list_access_requests(authed(m, t.of(Actor::Operator)))
            .await
        {
            Ok(r) => r
                .into_inner()
                .access_requests
                .into_iter()
                .map(|r| r.access_request_id)
                .filter(|id| ids.contains(id))
                .collect(),
            Err(s) => vec![format!("(listing failed: {s:?})")],
        };
        if still.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the expiry sweeper left overdue requests pending for 10 s: {still:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// How many lapses of time-boxed grants the server recorded per (account, person): its
/// `membership.lapse` audit events.
pub async fn lapses_recorded(
    app: &TestApp,
    t: &Tokens,
) -> Result<std::collections::BTreeMap<(usize, usize), usize>, String> {
    recorded(app, t, "membership.lapse").await
}

/// How many removals for want of recertification the server recorded per (account, person):
/// its `membership.not_recertified` audit events.
pub async fn unrecertified_recorded(
    app: &TestApp,
    t: &Tokens,
) -> Result<std::collections::BTreeMap<(usize, usize), usize>, String> {
    recorded(app, t, "membership.not_recertified").await
}

/// Waits until the sweeper has recorded at least the removals for want of recertification
/// the model has.
pub async fn wait_unrecertified(
    app: &TestApp,
    t: &Tokens,
    want: &std::collections::BTreeMap<(usize, usize), usize>,
) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = unrecertified_recorded(app, t).await?;
        if want
            .iter()
            .all(|(k, n)| got.get(k).copied().unwrap_or(0) >= *n)
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the sweeper did not remove the members not recertified in 10 s: model {want:?}, server {got:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The system's events `action` on memberships, counted per (account, person).
async fn recorded(
    app: &TestApp,
    t: &Tokens,
    action: &str,
) -> Result<std::collections::BTreeMap<(usize, usize), usize>, String> {
    let mut admin = app.admin();
    let mut found = std::collections::BTreeMap::new();
    let mut page_token = String::new();
    loop {
        let m = pb::ListAuditEventsRequest {
            icn: String::new(),
            page_size: 500,
            page_token: page_token.clone(),
        };
        let r = admin
            .list_audit_events(authed(m, t.of(Actor::Operator)))
            .await
            .map_err(|s| format!("listing the audit trail failed: {s:?}"))?
            .into_inner();
        for e in r.audit_events {
            if e.action != action {
                continue;
            }
            let key = e.target_id.split_once('/').and_then(|(icn, web_id)| {
                let i = ICNS.iter().position(|x| *x == icn)?;
                let p = PEOPLE.iter().position(|x| *x == web_id)?;
                Some((i, p))
            });
            match key {
                Some(k) if e.actor == "system" => *found.entry(k).or_default() += 1,
                _ => return Err(format!("an unexpected {action} event: {e:?}")),
            }
        }
        if r.next_page_token.is_empty() {
            return Ok(found);
        }
        page_token = r.next_page_token;
    }
}

/// Waits until the sweeper has recorded at least the lapses the model has (so later steps do
/// not race it); returns what the server recorded.
pub async fn wait_lapses(
    app: &TestApp,
    t: &Tokens,
    want: &std::collections::BTreeMap<(usize, usize), usize>,
) -> Result<std::collections::BTreeMap<(usize, usize), usize>, String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = lapses_recorded(app, t).await?;
        if want
            .iter()
            .all(|(k, n)| got.get(k).copied().unwrap_or(0) >= *n)
        {
            return Ok(got);
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the sweeper did not record the lapses of time-boxed grants in 10 s: model {want:?}, server {got:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
