//! Transport only: decode, authenticate, validate into domain types, call a use case, encode.

mod access;
mod admin;
pub mod args;
pub mod auth;
pub mod convert;
mod deadline;
mod entitlement;
pub mod idempotent;
mod overload;
pub mod status;

pub use deadline::DeadlineLayer;
pub use overload::ConnectionLimitLayer;
use std::sync::Arc;

use tonic::{Request, Status};

use crate::auth::Authenticator;
use crate::domain::Reason;
use crate::service::{Caller, ServiceError, Services};

/// What every handler shares. The services appear once the database is migrated; until then
/// calls answer UNAVAILABLE (and health says NOT_SERVING).
#[derive(Clone)]
pub struct Api {
    services: Arc<tokio::sync::OnceCell<Services>>,
    auth: Authenticator,
    recent: Arc<auth::RecentCallers>,
}

impl Api {
    pub fn new(services: Arc<tokio::sync::OnceCell<Services>>, auth: Authenticator) -> Self {
        Self {
            services,
            auth,
            recent: Arc::default(),
        }
    }

    /// Authenticates the call and returns the caller (with its trace id) and the use cases.
    async fn enter<T>(&self, req: &Request<T>) -> Result<(Caller, &Services), Status> {
        self.enter_with(req, true).await
    }

    /// As `enter`, for reads that write no audit event and so need no trace id.
    async fn enter_read<T>(&self, req: &Request<T>) -> Result<(Caller, &Services), Status> {
        self.enter_with(req, false).await
    }

    async fn enter_with<T>(
        &self,
        req: &Request<T>,
        with_trace: bool,
    ) -> Result<(Caller, &Services), Status> {
        let caller = auth::caller(&self.auth, &self.recent, req, with_trace).await?;
        let services = self.services.get().ok_or_else(|| {
            status::status(
                tonic::Code::Unavailable,
                Reason::Starting,
                "the service is starting; retry shortly",
                Default::default(),
            )
        })?;
        Ok((caller, services))
    }
}

/// Lets handlers use `?` on use-case results.
fn svc<T>(r: Result<T, ServiceError>) -> Result<T, Status> {
    r.map_err(status::from_service)
}

pub use access::AccessServer;
pub use admin::AdminServer;
pub use entitlement::EntitlementServer;
