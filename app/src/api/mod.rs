//! Types and server functions shared by the pages and the server.
//!
//! Server functions are thin: they fetch the state from context, call one service and map its
//! error. Reads are `GET` under `/sfn/` so the service worker can cache them for offline use.

pub mod account;
pub mod approvals;
pub mod audit;
pub mod catalog;
pub mod customers;
pub mod deploy;
pub mod deployments;
mod error;
pub mod fleet;
pub mod notifications;
pub mod session;
pub mod users;

pub use error::AppError;

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use serde::{Deserialize, Serialize};

/// One dependency check as reported by `/health` and the status panel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckReport {
    pub name: String,
    pub ok: bool,
    /// Why the check failed (user-safe), `None` when it passed.
    pub error: Option<String>,
}

/// What the platform status panel shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformStatus {
    pub version: String,
    /// `embedded` or `dynamodb`.
    pub store: String,
    pub checks: Vec<CheckReport>,
    /// When the server answered, RFC 3339 in UTC.
    pub checked_at: String,
}

impl PlatformStatus {
    pub fn healthy(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }
}

/// The platform's status: version, store and dependency checks.
#[server(input = GetUrl, prefix = "/sfn", endpoint = "status")]
pub async fn get_platform_status() -> Result<PlatformStatus, ServerFnError> {
    let state = expect_context::<crate::ssr::state::AppState>();
    Ok(state.health.platform_status().await)
}
