//! The text of every email the service sends: pure functions from facts to [`OutgoingEmail`].
//!
//! Values that come from people (names, company names, reasons) are flattened to one line
//! before they are interpolated, so nobody can forge a line such as `Verification code:` or a
//! fake instruction into a message that goes to someone else, nor reorder what it shows with
//! bidi controls.

use std::fmt::Display;

use super::OutgoingEmail;
pub use super::utc::format_utc;
use crate::clock::Millis;
use crate::domain::ids::sanitize_line;

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
pub const KIND_REQUEST_REMINDER: &str = "request_reminder";
pub const KIND_REQUEST_ESCALATED: &str = "request_escalated";
pub const KIND_REQUEST_FOR_OPERATORS: &str = "request_for_operators";
pub const KIND_ACCOUNT_ORPHANED: &str = "account_orphaned";

/// Who a note about a request that still waits is for, which decides what it asks of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitingFor {
    /// The administrators who were told when it was made.
    Reminder,
    /// The account's Site Technical Contacts, past the administrators who did not decide.
    Escalation,
    /// The operators: nobody on the account can decide it.
    Operators,
}

/// The request a [`request_waiting`] note is about.
#[derive(Debug, Clone, Copy)]
pub struct WaitingRequest<'a> {
    pub requester_name: &'a str,
    pub requester_email: &'a str,
    pub requester_web_id: &'a str,
    pub icn: &'a str,
    pub company_name: &'a str,
    pub requested_role_label: &'a str,
    pub request_id: &'a str,
    pub made_at: Millis,
    pub expires_at: Millis,
}
pub const KIND_MEMBERSHIP_LAPSED: &str = "membership_lapsed";
pub const KIND_MEMBERSHIP_LAPSED_TO_ADMIN: &str = "membership_lapsed_to_admin";
pub const KIND_AUTO_APPROVED_TO_ADMIN: &str = "auto_approved_to_admin";
pub const KIND_CONTRACT_ENDING: &str = "contract_ending";
pub const KIND_RECERTIFICATION_REQUESTED: &str = "recertification_requested";
pub const KIND_NOT_RECERTIFIED: &str = "not_recertified";
pub const KIND_NOT_RECERTIFIED_TO_ADMIN: &str = "not_recertified_to_admin";

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
    let (name, company, icn) = (flat(requester_name), flat(company_name), flat(&icn));
    let mut t = Text::greeting("");
    t.para(format!(
        "{name} has asked for access to the support account of {company} (ICN {icn})."
    ));
    t.line(format!("  Requester:       {name}"));
    t.line(format!("  Email:           {}", flat(&requester_email)));
    t.line(format!("  Web ID:          {}", flat(&requester_web_id)));
    t.line(format!("  Account:         {company} (ICN {icn})"));
    t.line(format!(
        "  Requested role:  {}",
        flat(&requested_role_label)
    ));
    t.line(format!("  Request id:      {}", flat(&request_id)));
    t.blank();
    t.para(
        "You receive this because you are an administrator of this account. Until someone \
         decides, the requester is a Provisional Caller: they can view the account's support \
         area but cannot open service requests.",
    );
    t.para(format!(
        "To approve or deny the request, sign in to {} and open",
        brand.portal_url
    ));
    t.line("  User Administration -> New requests");
    t.blank();
    t.para("Tools using the API can decide it by the request id above.");
    t.para(
        "If you do not recognise this person, deny the request. Requests that nobody decides \
         on expire on their own.",
    );
    t.finish(
        brand,
        admin_email,
        format!("Access request from {name} for {company} (ICN {icn})"),
        KIND_ACCESS_REQUESTED,
    )
}

/// A request nobody has decided yet: a reminder to the administrators, an escalation to the
/// STCs, or a note to the operators when nobody on the account can decide it.
pub fn request_waiting(
    brand: &MailBrand,
    to: &str,
    audience: WaitingFor,
    r: &WaitingRequest<'_>,
) -> OutgoingEmail {
    let (name, company, icn) = (flat(r.requester_name), flat(r.company_name), flat(&r.icn));
    let (since, until) = (format_utc(r.made_at), format_utc(r.expires_at));
    let mut t = Text::greeting("");
    t.para(format!(
        "{name} asked for access to the support account of {company} (ICN {icn}) on {since}, \
         and nobody has decided on it yet. Until someone does, they cannot open service \
         requests for this account."
    ));
    t.line(format!("  Requester:       {name}"));
    t.line(format!("  Email:           {}", flat(&r.requester_email)));
    t.line(format!("  Web ID:          {}", flat(&r.requester_web_id)));
    t.line(format!("  Account:         {company} (ICN {icn})"));
    t.line(format!(
        "  Requested role:  {}",
        flat(&r.requested_role_label)
    ));
    t.line(format!("  Request id:      {}", flat(&r.request_id)));
    t.line(format!("  Waiting since:   {since}"));
    t.line(format!("  Expires:         {until}"));
    t.blank();
    let (why, subject, kind) = match audience {
        WaitingFor::Reminder => (
            "This is a reminder: you are an administrator of this account.",
            format!("Reminder: access request from {name} for {company} (ICN {icn}) is waiting"),
            KIND_REQUEST_REMINDER,
        ),
        WaitingFor::Escalation => (
            "None of the account's administrators has decided on it, so it comes to you as a \
             Site Technical Contact of the account: please decide, or ask an administrator to.",
            format!("Escalated: access request from {name} for {company} (ICN {icn})"),
            KIND_REQUEST_ESCALATED,
        ),
        WaitingFor::Operators => (
            "Nobody on this account can decide it: it has no administrator with a verified email \
             address, or it is suspended. As an operator you can decide it, or designate a Site \
             Technical Contact who can.",
            format!("No administrator can decide: access request for {company} (ICN {icn})"),
            KIND_REQUEST_FOR_OPERATORS,
        ),
    };
    t.para(why);
    t.para(format!(
        "To approve or deny the request, sign in to {} and open",
        brand.portal_url
    ));
    t.line("  User Administration -> New requests");
    t.blank();
    t.para(format!(
        "If nobody decides by {until}, the request expires and the requester is told to ask again."
    ));
    t.finish(brand, to, subject, kind)
}

/// Tells the operators that nobody on an account can decide its requests any more.
pub fn account_orphaned(
    brand: &MailBrand,
    to: &str,
    icn: impl Display,
    company_name: &str,
    administrators: usize,
) -> OutgoingEmail {
    let (company, icn) = (flat(company_name), flat(&icn));
    let mut t = Text::greeting("");
    t.para(format!(
        "The support account of {company} (ICN {icn}) has nobody who can decide its access \
         requests: it has {administrators} Site Technical Contact(s) or Technical Contact(s), \
         and none of them has a verified email address."
    ));
    t.para(
        "Until that changes, its access requests come to you. To give the account back to its \
         company, designate a Site Technical Contact who will verify their address, or ask an \
         existing one to verify theirs.",
    );
    t.finish(
        brand,
        to,
        format!("No administrator can decide for {company} (ICN {icn})"),
        KIND_ACCOUNT_ORPHANED,
    )
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
    let (company, icn) = (flat(company_name), flat(&icn));
    let mut t = Text::greeting(name);
    t.para(format!(
        "We received your request for the role {} on the support account of {company} \
         (ICN {icn}). Your request id is {}.",
        flat(&requested_role_label),
        flat(&request_id)
    ));
    t.para("Until an administrator of this account approves it, you are a Provisional Caller:");
    t.line("  - You MAY view the account's support area.");
    t.line("  - You MAY view the status of your own request.");
    t.line("  - You MAY NOT open service requests for this account.");
    t.blank();
    t.para(
        "The account's administrators have been notified and will approve or deny the \
         request. We will email you when they decide.",
    );
    t.para(format!(
        "You must also verify your email address: we are sending you a separate email with a \
         verification code. You can follow your request at {}",
        brand.portal_url
    ));
    t.finish(
        brand,
        to,
        format!("Your access request for {company} (ICN {icn}) is pending"),
        KIND_PROVISIONAL_CALLER,
    )
}

pub fn verification_code(
    brand: &MailBrand,
    to: &str,
    name: &str,
    code: &str,
    expires_at: Millis,
) -> OutgoingEmail {
    let mut t = Text::greeting(name);
    t.para(format!(
        "Use this code to verify your email address for {}:",
        brand.product_name
    ));
    // Exactly this shape, never wrapped: people copy from it and tests grep for it.
    t.line(format!("{CODE_LABEL} {}", flat(&code)));
    t.blank();
    t.para(format!(
        "The code expires at {}. It works only once, and any code we sent you earlier no \
         longer works.",
        format_utc(expires_at)
    ));
    t.para(
        "If you did not ask for this, ignore this email: nothing changes without the code. \
         Do not share the code with anyone.",
    );
    // The code stays out of the subject, which notification previews show to anyone nearby.
    let subject = format!("Your {} verification code", brand.product_name);
    t.finish(brand, to, subject, KIND_VERIFICATION_CODE)
}

// Positional to match how the service layer holds these facts; a struct would only rename them.
#[allow(clippy::too_many_arguments)]
pub fn request_approved(
    brand: &MailBrand,
    to: &str,
    name: &str,
    icn: impl Display,
    company_name: &str,
    granted_role_label: &str,
    email_verified: bool,
    ends_at: Option<Millis>,
) -> OutgoingEmail {
    let (company, icn) = (flat(company_name), flat(&icn));
    let mut t = Text::greeting(name);
    t.para(format!(
        "An administrator approved your access request for the support account of {company} \
         (ICN {icn})."
    ));
    t.line(format!("Your role: {}", flat(&granted_role_label)));
    if let Some(end) = ends_at {
        t.line(format!("Access ends: {}", format_utc(end)));
    }
    t.blank();
    if email_verified {
        t.para(format!(
            "You can now use the account's support area, including opening service requests \
             where your role allows it: {}",
            brand.portal_url
        ));
    } else {
        t.para(format!(
            "Before you can open service requests, you must verify your email address. Use the \
             code from our verification email, or ask for a new one at {}",
            brand.portal_url
        ));
    }
    t.finish(
        brand,
        to,
        format!("Access approved for {company} (ICN {icn})"),
        KIND_REQUEST_APPROVED,
    )
}

pub fn request_denied(
    brand: &MailBrand,
    to: &str,
    name: &str,
    icn: impl Display,
    company_name: &str,
    reason: &str,
) -> OutgoingEmail {
    let (company, icn) = (flat(company_name), flat(&icn));
    let mut t = Text::greeting(name);
    t.para(format!(
        "An administrator denied your access request for the support account of {company} \
         (ICN {icn})."
    ));
    let reason = reason.trim();
    if reason.is_empty() {
        t.para("No reason was given.");
    } else {
        t.para("Reason given:");
        // Indented and flattened line by line, so the reason reads as a quote and cannot
        // pose as part of our own text.
        for l in reason.lines() {
            t.line(format!("  {}", flat(&l)));
        }
        t.blank();
    }
    t.para(format!(
        "You are no longer a Provisional Caller for this account. If you think this is a \
         mistake, contact an administrator of the account, or submit a new request at {}",
        brand.portal_url
    ));
    t.finish(
        brand,
        to,
        format!("Access request denied for {company} (ICN {icn})"),
        KIND_REQUEST_DENIED,
    )
}

pub fn request_expired(
    brand: &MailBrand,
    to: &str,
    name: &str,
    icn: impl Display,
    company_name: &str,
) -> OutgoingEmail {
    let (company, icn) = (flat(company_name), flat(&icn));
    let mut t = Text::greeting(name);
    t.para(format!(
        "Your access request for the support account of {company} (ICN {icn}) expired \
         because no administrator decided on it in time."
    ));
    t.para(format!(
        "You are no longer a Provisional Caller for this account. If you still need access, \
         submit a new request at {} and, if you can, let an administrator of the account know.",
        brand.portal_url
    ));
    t.finish(
        brand,
        to,
        format!("Access request expired for {company} (ICN {icn})"),
        KIND_REQUEST_EXPIRED,
    )
}

// Positional to match how the service layer holds these facts; a struct would only rename them.
#[allow(clippy::too_many_arguments)]
pub fn member_role_changed(
    brand: &MailBrand,
    to: &str,
    name: &str,
    icn: impl Display,
    company_name: &str,
    old_role_label: &str,
    new_role_label: &str,
    ends_at: Option<Millis>,
) -> OutgoingEmail {
    let (company, icn) = (flat(company_name), flat(&icn));
    let mut t = Text::greeting(name);
    t.para(format!(
        "An administrator changed your role on the support account of {company} (ICN {icn})."
    ));
    t.line(format!("  Previous role: {}", flat(&old_role_label)));
    t.line(format!("  New role:      {}", flat(&new_role_label)));
    match ends_at {
        Some(end) => t.line(format!("  Access ends:   {}", format_utc(end))),
        None => t.line("  Access ends:   never (no end date)"),
    }
    t.blank();
    t.para(format!(
        "What you can do for this account follows the new role from now on. If you think \
         this is a mistake, contact an administrator of the account. Details: {}",
        brand.portal_url
    ));
    t.finish(
        brand,
        to,
        format!("Your role changed for {company} (ICN {icn})"),
        KIND_MEMBER_ROLE_CHANGED,
    )
}

pub fn member_removed(
    brand: &MailBrand,
    to: &str,
    name: &str,
    icn: impl Display,
    company_name: &str,
) -> OutgoingEmail {
    let (company, icn) = (flat(company_name), flat(&icn));
    let mut t = Text::greeting(name);
    t.para(format!(
        "An administrator removed you from the support account of {company} (ICN {icn})."
    ));
    t.para(format!(
        "You can no longer view this account's support area or open service requests for \
         it. If you still need access, contact an administrator of the account or submit a \
         new request at {}",
        brand.portal_url
    ));
    t.finish(
        brand,
        to,
        format!("You were removed from {company} (ICN {icn})"),
        KIND_MEMBER_REMOVED,
    )
}

/// Tells a member that their time-boxed access ended.
pub fn membership_lapsed(
    brand: &MailBrand,
    to: &str,
    name: &str,
    icn: impl Display,
    company_name: &str,
    role_label: &str,
    ended_at: Millis,
) -> OutgoingEmail {
    let (company, icn) = (flat(company_name), flat(&icn));
    let mut t = Text::greeting(name);
    t.para(format!(
        "Your access to the support account of {company} (ICN {icn}) was granted until {} \
         and has now ended.",
        format_utc(ended_at)
    ));
    t.line(format!("  Role held: {}", flat(&role_label)));
    t.blank();
    t.para(format!(
        "You can no longer view this account's support area or open service requests for \
         it. If you still need access, ask an administrator of the account, or submit a new \
         request at {}",
        brand.portal_url
    ));
    t.finish(
        brand,
        to,
        format!("Your access to {company} (ICN {icn}) has ended"),
        KIND_MEMBERSHIP_LAPSED,
    )
}

/// Tells an account administrator that a member's time-boxed access ended.
// Positional to match how the service layer holds these facts; a struct would only rename them.
#[allow(clippy::too_many_arguments)]
pub fn membership_lapsed_to_admin(
    brand: &MailBrand,
    admin_email: &str,
    member_name: &str,
    member_web_id: impl Display,
    icn: impl Display,
    company_name: &str,
    role_label: &str,
    ended_at: Millis,
) -> OutgoingEmail {
    let (name, company, icn) = (flat(member_name), flat(company_name), flat(&icn));
    let mut t = Text::greeting("");
    t.para(format!(
        "The time-boxed access of {name} to the support account of {company} (ICN {icn}) \
         has ended."
    ));
    t.line(format!("  Member:     {name}"));
    t.line(format!("  Web ID:     {}", flat(&member_web_id)));
    t.line(format!("  Role held:  {}", flat(&role_label)));
    t.line(format!("  Ended:      {}", format_utc(ended_at)));
    t.blank();
    t.para(format!(
        "You receive this because you are an administrator of this account. If they still \
         need access, they can submit a new request, which you can approve (with or without \
         an end date) at {}",
        brand.portal_url
    ));
    t.finish(
        brand,
        admin_email,
        format!("Access of {name} to {company} (ICN {icn}) has ended"),
        KIND_MEMBERSHIP_LAPSED_TO_ADMIN,
    )
}

/// Tells an account administrator that the account's email-domain policy approved a request
/// on its own.
// Positional to match how the service layer holds these facts; a struct would only rename them.
#[allow(clippy::too_many_arguments)]
pub fn auto_approved_to_admin(
    brand: &MailBrand,
    admin_email: &str,
    member_name: &str,
    member_email: &str,
    member_web_id: impl Display,
    icn: impl Display,
    company_name: &str,
    role_label: &str,
    domain: &str,
    request_id: impl Display,
) -> OutgoingEmail {
    let (name, company, icn) = (flat(member_name), flat(company_name), flat(&icn));
    let domain = flat(&domain);
    let mut t = Text::greeting("");
    t.para(format!(
        "{name} asked for access to the support account of {company} (ICN {icn}) and was \
         approved automatically: the account's email-domain policy approves requests from \
         addresses in {domain}."
    ));
    t.line(format!("  Member:       {name}"));
    t.line(format!("  Email:        {}", flat(&member_email)));
    t.line(format!("  Web ID:       {}", flat(&member_web_id)));
    t.line(format!("  Role granted: {}", flat(&role_label)));
    t.line(format!("  Request id:   {}", flat(&request_id)));
    t.blank();
    t.para(format!(
        "You receive this because you are an administrator of this account. If this person \
         should not have access, remove them under User Administration at {}. The account's \
         Site Technical Contacts can change or delete the policy for {domain}.",
        brand.portal_url
    ));
    t.finish(
        brand,
        admin_email,
        format!("{name} was approved automatically for {company} (ICN {icn})"),
        KIND_AUTO_APPROVED_TO_ADMIN,
    )
}

/// Warns a Site Technical Contact that the last support contract of their account in force
/// ends soon: after it, nobody on the account may open service requests.
pub fn contract_ending(
    brand: &MailBrand,
    to: &str,
    name: &str,
    icn: impl Display,
    company_name: &str,
    ends_at: Millis,
) -> OutgoingEmail {
    let (company, icn) = (flat(company_name), flat(&icn));
    let mut t = Text::greeting(name);
    t.para(format!(
        "The support contracts of {company} (ICN {icn}) end on {}: no contract of the \
         account is in force after that.",
        format_utc(ends_at)
    ));
    t.para(
        "From then on, nobody on the account can open service requests. To keep support \
         without a gap, renew or extend a contract with your IBM representative before that \
         date.",
    );
    t.para(format!(
        "You receive this because you are a Site Technical Contact of this account. Manage \
         the account at {}",
        brand.portal_url
    ));
    t.finish(
        brand,
        to,
        format!(
            "Support for {company} (ICN {icn}) ends on {}",
            format_utc(ends_at)
        ),
        KIND_CONTRACT_ENDING,
    )
}

/// One member an administrator is asked to confirm.
#[derive(Debug, Clone, Copy)]
pub struct MemberToConfirm<'a> {
    pub name: &'a str,
    pub web_id: &'a str,
    pub role_label: &'a str,
}

/// Asks an administrator, after the account's contract was renewed, to confirm who still
/// needs access; members not confirmed by `due_at` lose it.
pub fn recertification_requested(
    brand: &MailBrand,
    to: &str,
    name: &str,
    icn: impl Display,
    company_name: &str,
    members: &[MemberToConfirm<'_>],
    due_at: Millis,
) -> OutgoingEmail {
    let (company, icn) = (flat(company_name), flat(&icn));
    let mut t = Text::greeting(name);
    t.para(format!(
        "The support contract of {company} (ICN {icn}) was renewed. Please confirm that \
         these people still need access to the account by {}:",
        format_utc(due_at)
    ));
    for m in members {
        t.line(format!(
            "  {} ({}), {}",
            flat(m.name),
            flat(m.web_id),
            flat(m.role_label)
        ));
    }
    t.blank();
    t.para(format!(
        "Whoever is not confirmed by then loses their access and is told so. Confirm each \
         member at {} (you cannot confirm yourself: another administrator of the account \
         does that). Site Technical Contacts need no confirmation.",
        brand.portal_url
    ));
    t.finish(
        brand,
        to,
        format!("Confirm who keeps access to {company} (ICN {icn})"),
        KIND_RECERTIFICATION_REQUESTED,
    )
}

/// Tells a member that they lost their access because nobody confirmed it after a renewal.
pub fn not_recertified(
    brand: &MailBrand,
    to: &str,
    name: &str,
    icn: impl Display,
    company_name: &str,
) -> OutgoingEmail {
    let (company, icn) = (flat(company_name), flat(&icn));
    let mut t = Text::greeting(name);
    t.para(format!(
        "The support contract of {company} (ICN {icn}) was renewed, and no administrator of \
         the account confirmed in time that you still need access. Your access has ended."
    ));
    t.para(format!(
        "You can no longer view this account's support area or open service requests for \
         it. If you still need access, ask an administrator of the account, or submit a new \
         request at {}",
        brand.portal_url
    ));
    t.finish(
        brand,
        to,
        format!("Your access to {company} (ICN {icn}) has ended"),
        KIND_NOT_RECERTIFIED,
    )
}

/// Tells an administrator that a member lost their access because nobody confirmed it.
pub fn not_recertified_to_admin(
    brand: &MailBrand,
    to: &str,
    member_name: &str,
    member_web_id: impl Display,
    icn: impl Display,
    company_name: &str,
    role_label: &str,
) -> OutgoingEmail {
    let (name, company, icn) = (flat(member_name), flat(company_name), flat(&icn));
    let mut t = Text::greeting("");
    t.para(format!(
        "Nobody confirmed in time that {name} still needs access to the support account of \
         {company} (ICN {icn}) after its contract was renewed, so their access has ended."
    ));
    t.line(format!("  Member:     {name}"));
    t.line(format!("  Web ID:     {}", flat(&member_web_id)));
    t.line(format!("  Role held:  {}", flat(&role_label)));
    t.blank();
    t.para(format!(
        "You receive this because you are an administrator of this account. If they still \
         need access, they can submit a new request, which you can approve at {}",
        brand.portal_url
    ));
    t.finish(
        brand,
        to,
        format!("Access of {name} to {company} (ICN {icn}) has ended"),
        KIND_NOT_RECERTIFIED_TO_ADMIN,
    )
}

/// Wrap width for prose: plain-text mail is read in fixed-width clients and quoted with `> `.
const WRAP: usize = 72;

/// The label of the line that carries a verification code. No wrapped line may begin with it:
/// a long enough name would otherwise start a line of someone else's email with
/// "Verification code: <digits of its choosing>".
const CODE_LABEL: &str = "Verification code:";

/// A plain-text body built from wrapped paragraphs and verbatim lines.
struct Text(String);

impl Text {
    fn greeting(name: &str) -> Self {
        let name = flat(&name);
        let mut t = Self(String::new());
        if name.is_empty() {
            t.para("Hello,");
        } else {
            t.para(format!("Hello {name},"));
        }
        t
    }

    /// Word-wrapped, followed by a blank line; words longer than the width (URLs) stay whole.
    /// A line that would begin with a label of the service's own ([`CODE_LABEL`]) keeps its
    /// first word on the line before, a little past the width (or, opening the paragraph, is
    /// quoted with "> ").
    fn para(&mut self, text: impl AsRef<str>) {
        let words: Vec<&str> = text.as_ref().split_whitespace().collect();
        let label: Vec<&str> = CODE_LABEL.split_whitespace().collect();
        let mut width = 0;
        for (i, word) in words.iter().enumerate() {
            let len = word.chars().count();
            let forged = words[i..].starts_with(&label);
            if i == 0 && forged {
                // Only someone's chosen text can open a paragraph with the label: quote it.
                self.0.push('>');
                width = 1;
            }
            if width > 0 && width + 1 + len > WRAP && !forged {
                self.0.push('\n');
                width = 0;
            } else if width > 0 {
                self.0.push(' ');
                width += 1;
            }
            self.0.push_str(word);
            width += len;
        }
        self.0.push_str("\n\n");
    }

    fn line(&mut self, text: impl AsRef<str>) {
        self.0.push_str(text.as_ref());
        self.0.push('\n');
    }

    fn blank(&mut self) {
        self.0.push('\n');
    }

    fn finish(
        mut self,
        brand: &MailBrand,
        to: &str,
        subject: String,
        kind: &'static str,
    ) -> OutgoingEmail {
        self.para("This message was sent automatically; replies are not read.");
        self.line(&brand.product_name);
        OutgoingEmail {
            to: to.to_owned(),
            subject,
            body: self.0,
            kind,
        }
    }
}

/// One line, without control, bidi or separator characters: see the module comment. The edge
/// refuses them in what callers send and cleans names from tokens, so this guards against
/// records written before it did.
fn flat<T: Display + ?Sized>(s: &T) -> String {
    sanitize_line(&s.to_string(), usize::MAX)
}

#[cfg(test)]
#[path = "templates_tests.rs"]
mod tests;
