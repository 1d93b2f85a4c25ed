//! The platform status panel's one read.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;

use crate::domain::views::PlatformStatus;

/// The platform's status: version, store and dependency checks.
#[server(input = GetUrl, prefix = "/sfn", endpoint = "status")]
pub async fn get_platform_status() -> Result<PlatformStatus, ServerFnError> {
    let state = expect_context::<crate::ssr::state::AppState>();
    Ok(state.health.platform_status().await)
}
