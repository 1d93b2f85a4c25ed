//! The catalog: capabilities, their versions and changelogs.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;

use super::AppError;
use crate::domain::views::{CapabilityDetail, CapabilityUsage};

#[server(input = GetUrl, prefix = "/sfn", endpoint = "catalog")]
pub async fn get_catalog() -> Result<Vec<CapabilityDetail>, AppError> {
    use crate::ssr::http::sfn;
    let (state, actor) = (sfn::state(), sfn::actor()?);
    state.capabilities.details(&actor).map_err(sfn::fail)
}

/// Which customers run which version of one capability.
#[server(input = GetUrl, prefix = "/sfn", endpoint = "catalog-usage")]
pub async fn get_capability_usage(slug: String) -> Result<CapabilityUsage, AppError> {
    use crate::ssr::http::sfn;
    let (state, actor) = (sfn::state(), sfn::actor()?);
    state.deployments.usage(&actor, &slug).await.map_err(sfn::fail)
}
