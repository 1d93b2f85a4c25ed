//! The audit log page.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;

use super::AppError;
use crate::domain::model::{AuditEvent, Page};

pub const AUDIT_PAGE: usize = 50;

/// Newest first; `action` keeps events whose action starts with it (`auth.`, `operation.`).
#[server(input = GetUrl, prefix = "/sfn", endpoint = "audit")]
pub async fn get_audit(action: Option<String>, cursor: Option<String>) -> Result<Page<AuditEvent>, AppError> {
    use crate::ssr::{audit::AuditFilter, http::server_fns};
    let (state, actor) = (server_fns::state(), server_fns::actor()?);
    let filter = AuditFilter {
        action: action.map(|a| a.trim().to_string()).filter(|a| !a.is_empty()),
        ..AuditFilter::default()
    };
    state
        .audit_trail
        .list(&actor, filter, AUDIT_PAGE, cursor.as_deref().filter(|c| !c.is_empty()))
        .await
        .map_err(server_fns::fail)
}
