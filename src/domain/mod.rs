//! Types and rules of the entitlement domain. No tonic, no sqlx: only the language of the
//! support organisation, so every rule here is testable as a pure function.

pub mod access_request;
pub mod contract_end;
pub mod decision;
pub mod email_domain;
pub mod feed;
pub mod ids;
pub mod limits;
pub mod model;
pub mod next_step;
pub mod policy;
pub mod reason;
pub mod role;
pub mod verification;

pub use access_request::{
    AccessRequest, AccessRequestState, DeciderGroup, Nudge, TransitionError, Waiting,
};
pub use decision::{
    Action, CheckFacts, Coverage, Decision, DecisionReason, LatestRequest, MemberStatus, coverage,
    decide,
};
pub use email_domain::{DomainAction, DomainRule, EmailDomain};
pub use feed::{ChangeKey, ChangeRecord, Revision};
pub use ids::{AccessRequestId, ContractId, CountryCode, Email, Icn, ParseError, ProductId, WebId};
pub use model::{
    AccessRequestView, Account, AccountStatus, AuditRecord, Contract, MemberView, Membership,
    Person,
};
pub use next_step::{Contacts, NextStep, NextStepKind};
pub use reason::Reason;
pub use role::Role;
