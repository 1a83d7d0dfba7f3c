//! The text of every email the service sends: pure functions from facts to [`OutgoingEmail`].
//!
//! Values that come from people (names, company names, reasons) are flattened to one line
//! before they are interpolated, so nobody can forge a line such as `Verification code:` or a
//! fake instruction into a message that goes to someone else.

use std::fmt::{Display, Write as _};

use super::OutgoingEmail;
use crate::clock::Millis;

/// Who the emails say they come from and where people go to act on them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailBrand {
    pub product_name: String,
    pub portal_url: String,
}

impl Default for MailBrand {
    fn default() -> Self {
        Self {
            product_name: "IBM Support entitlements".to_owned(),
            portal_url: "https://www.ibm.com/mysupport".to_owned(),
        }
    }
}

pub const KIND_ACCESS_REQUESTED: &str = "access_requested";
pub const KIND_PROVISIONAL_CALLER: &str = "provisional_caller_notice";
pub const KIND_VERIFICATION_CODE: &str = "verification_code";
pub const KIND_REQUEST_APPROVED: &str = "request_approved";
pub const KIND_REQUEST_DENIED: &str = "request_denied";
pub const KIND_REQUEST_EXPIRED: &str = "request_expired";
pub const KIND_MEMBER_ROLE_CHANGED: &str = "member_role_changed";
pub const KIND_MEMBER_REMOVED: &str = "member_removed";

/// Tells an account administrator that someone asked for access and how to decide.
// Positional to match how the service layer holds these facts; a struct would only rename them.
#[allow(clippy::too_many_arguments)]
pub fn access_requested_to_admin(
    brand: &MailBrand,
    admin_email: &str,
    requester_name: &str,
    requester_email: &str,
    requester_web_id: impl Display,
    icn: impl Display,
    company_name: &str,
    requested_role_label: &str,
    request_id: impl Display,
) -> OutgoingEmail {
    let (name, company) = (line(requester_name), line(company_name));
    let (icn, role) = (line(&icn.to_string()), line(requested_role_label));
    let mut b = String::new();
    let _ = writeln!(b, "Hello,\n");
    let _ = writeln!(
        b,
        "{name} has asked for access to the support account of {company} (ICN {icn}).\n"
    );
    let _ = writeln!(b, "  Requester:       {name}");
    let _ = writeln!(b, "  Email:           {}", line(requester_email));
    let _ = writeln!(
        b,
        "  Web ID:          {}",
        line(&requester_web_id.to_string())
    );
    let _ = writeln!(b, "  Account:         {company} (ICN {icn})");
    let _ = writeln!(b, "  Requested role:  {role}");
    let _ = writeln!(b, "  Request id:      {}\n", line(&request_id.to_string()));
    let _ = writeln!(
        b,
        "You receive this because you are an administrator of this account. Until someone \
         decides, the requester is a Provisional Caller: they can view the account's support \
         area but cannot open service requests.\n"
    );
    let _ = writeln!(
        b,
        "To approve or deny the request, sign in to {}",
        brand.portal_url
    );
    let _ = writeln!(
        b,
        "and open User Administration -> New requests. Tools using the API can decide it by \
         the request id above.\n"
    );
    let _ = writeln!(
        b,
        "If you do not recognise this person, deny the request. Requests nobody decides on \
         expire on their own."
    );
    OutgoingEmail {
        to: admin_email.to_owned(),
        subject: format!("Access request from {name} for {company} (ICN {icn})"),
        body: finish(brand, b),
        kind: KIND_ACCESS_REQUESTED,
    }
}

/// Tells a requester what they can do while their request waits for an administrator.
pub fn provisional_caller_notice(
    brand: &MailBrand,
    to: &str,
    name: &str,
    icn: impl Display,
    company_name: &str,
    requested_role_label: &str,
    request_id: impl Display,
) -> OutgoingEmail {
    let (company, icn) = (line(company_name), line(&icn.to_string()));
    let mut b = greeting(name);
    let _ = writeln!(
        b,
        "We received your request for the role {} on the support account of {company} \
         (ICN {icn}). Your request id is {}.\n",
        line(requested_role_label),
        line(&request_id.to_string())
    );
    let _ = writeln!(
        b,
        "Until an administrator of this account approves it, you are a Provisional Caller:\n"
    );
    let _ = writeln!(b, "  - You MAY view the account's support area.");
    let _ = writeln!(b, "  - You MAY view the status of your own request.");
    let _ = writeln!(
        b,
        "  - You MAY NOT open service requests for this account.\n"
    );
    let _ = writeln!(
        b,
        "The account's administrators have been notified and will approve or deny the request. \
         We will email you when they decide.\n"
    );
    let _ = writeln!(
        b,
        "You must also verify your email address: we are sending you a separate email with a \
         verification code. You can follow your request at {}",
        brand.portal_url
    );
    OutgoingEmail {
        to: to.to_owned(),
        subject: format!("Your access request for {company} (ICN {icn}) is pending"),
        body: finish(brand, b),
        kind: KIND_PROVISIONAL_CALLER,
    }
}

pub fn verification_code(
    brand: &MailBrand,
    to: &str,
    name: &str,
    code: &str,
    expires_at: Millis,
) -> OutgoingEmail {
    let mut b = greeting(name);
    let _ = writeln!(
        b,
        "Use this code to verify your email address for {}:\n",
        brand.product_name
    );
    let _ = writeln!(b, "Verification code: {}\n", line(code));
    let _ = writeln!(b, "The code expires at {}.", format_utc(expires_at));
    let _ = writeln!(
        b,
        "It works only once, and any code we sent you earlier no longer works.\n"
    );
    let _ = writeln!(
        b,
        "If you did not ask for this, ignore this email: nothing changes without the code. \
         Do not share the code with anyone."
    );
    OutgoingEmail {
        to: to.to_owned(),
        subject: format!("Your {} verification code", brand.product_name),
        body: finish(brand, b),
        kind: KIND_VERIFICATION_CODE,
    }
}

pub fn request_approved(
    brand: &MailBrand,
    to: &str,
    name: &str,
    icn: impl Display,
    company_name: &str,
    granted_role_label: &str,
    email_verified: bool,
) -> OutgoingEmail {
    let (company, icn) = (line(company_name), line(&icn.to_string()));
    let mut b = greeting(name);
    let _ = writeln!(
        b,
        "An administrator approved your access request for the support account of {company} \
         (ICN {icn}).\n"
    );
    let _ = writeln!(b, "Your role: {}\n", line(granted_role_label));
    if email_verified {
        let _ = writeln!(
            b,
            "You can now use the account's support area, including opening service requests \
             where your role allows it: {}",
            brand.portal_url
        );
    } else {
        let _ = writeln!(
            b,
            "Before you can open service requests, you must verify your email address. Use the \
             code from our verification email, or ask for a new one at {}",
            brand.portal_url
        );
    }
    OutgoingEmail {
        to: to.to_owned(),
        subject: format!("Access approved for {company} (ICN {icn})"),
        body: finish(brand, b),
        kind: KIND_REQUEST_APPROVED,
    }
}

pub fn request_denied(
    brand: &MailBrand,
    to: &str,
    name: &str,
    icn: impl Display,
    company_name: &str,
    reason: &str,
) -> OutgoingEmail {
    let (company, icn) = (line(company_name), line(&icn.to_string()));
    let mut b = greeting(name);
    let _ = writeln!(
        b,
        "An administrator denied your access request for the support account of {company} \
         (ICN {icn}).\n"
    );
    let reason = reason.trim();
    if reason.is_empty() {
        let _ = writeln!(b, "No reason was given.\n");
    } else {
        let _ = writeln!(b, "Reason given:\n");
        for l in reason.lines() {
            let _ = writeln!(b, "  {}", line(l));
        }
        b.push('\n');
    }
    let _ = writeln!(
        b,
        "You are no longer a Provisional Caller for this account. If you think this is a \
         mistake, contact an administrator of the account, or submit a new request at {}",
        brand.portal_url
    );
    OutgoingEmail {
        to: to.to_owned(),
        subject: format!("Access request denied for {company} (ICN {icn})"),
        body: finish(brand, b),
        kind: KIND_REQUEST_DENIED,
    }
}

pub fn request_expired(
    brand: &MailBrand,
    to: &str,
    name: &str,
    icn: impl Display,
    company_name: &str,
) -> OutgoingEmail {
    let (company, icn) = (line(company_name), line(&icn.to_string()));
    let mut b = greeting(name);
    let _ = writeln!(
        b,
        "Your access request for the support account of {company} (ICN {icn}) expired because \
         no administrator decided on it in time.\n"
    );
    let _ = writeln!(
        b,
        "You are no longer a Provisional Caller for this account. If you still need access, \
         submit a new request at {} and, if you can, let an administrator of the account know.",
        brand.portal_url
    );
    OutgoingEmail {
        to: to.to_owned(),
        subject: format!("Access request expired for {company} (ICN {icn})"),
        body: finish(brand, b),
        kind: KIND_REQUEST_EXPIRED,
    }
}

pub fn member_role_changed(
    brand: &MailBrand,
    to: &str,
    name: &str,
    icn: impl Display,
    company_name: &str,
    old_role_label: &str,
    new_role_label: &str,
) -> OutgoingEmail {
    let (company, icn) = (line(company_name), line(&icn.to_string()));
    let mut b = greeting(name);
    let _ = writeln!(
        b,
        "An administrator changed your role on the support account of {company} (ICN {icn}).\n"
    );
    let _ = writeln!(b, "  Previous role: {}", line(old_role_label));
    let _ = writeln!(b, "  New role:      {}\n", line(new_role_label));
    let _ = writeln!(
        b,
        "What you can do for this account follows the new role from now on. If you think this \
         is a mistake, contact an administrator of the account. Details: {}",
        brand.portal_url
    );
    OutgoingEmail {
        to: to.to_owned(),
        subject: format!("Your role changed for {company} (ICN {icn})"),
        body: finish(brand, b),
        kind: KIND_MEMBER_ROLE_CHANGED,
    }
}

pub fn member_removed(
    brand: &MailBrand,
    to: &str,
    name: &str,
    icn: impl Display,
    company_name: &str,
) -> OutgoingEmail {
    let (company, icn) = (line(company_name), line(&icn.to_string()));
    let mut b = greeting(name);
    let _ = writeln!(
        b,
        "An administrator removed you from the support account of {company} (ICN {icn}).\n"
    );
    let _ = writeln!(
        b,
        "You can no longer view this account's support area or open service requests for it. \
         If you still need access, contact an administrator of the account or submit a new \
         request at {}",
        brand.portal_url
    );
    OutgoingEmail {
        to: to.to_owned(),
        subject: format!("You were removed from {company} (ICN {icn})"),
        body: finish(brand, b),
        kind: KIND_MEMBER_REMOVED,
    }
}

fn greeting(name: &str) -> String {
    let name = line(name);
    if name.is_empty() {
        "Hello,\n\n".to_owned()
    } else {
        format!("Hello {name},\n\n")
    }
}

fn finish(brand: &MailBrand, mut body: String) -> String {
    let _ = write!(
        body,
        "\nThis message was sent automatically; replies are not read.\n\n{}\n",
        brand.product_name
    );
    body
}

/// One line, no control characters: see the module comment.
fn line(s: &str) -> String {
    let flat: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    flat.trim().to_owned()
}

/// `2025-01-31 14:05 UTC`. Minutes are truncated, so an expiry never reads later than it is.
pub fn format_utc(ms: Millis) -> String {
    let secs = ms.div_euclid(1000);
    let (days, secs_of_day) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    let (hh, mm) = (secs_of_day / 3600, secs_of_day % 3600 / 60);
    format!("{y:04}-{m:02}-{d:02} {hh:02}:{mm:02} UTC")
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm), so
/// formatting needs no date crate.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
#[path = "templates_tests.rs"]
mod tests;
