//! The approvals inbox.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;

use super::AppError;
use crate::domain::views::InboxItem;

#[server(input = GetUrl, prefix = "/sfn", endpoint = "approvals")]
pub async fn get_approvals() -> Result<Vec<InboxItem>, AppError> {
    use crate::ssr::http::server_fns;
    let (state, actor) = (server_fns::state(), server_fns::actor()?);
    state.operations.inbox(&actor).await.map_err(server_fns::fail)
}
