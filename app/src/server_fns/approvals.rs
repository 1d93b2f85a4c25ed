//! The approvals inbox.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;

use super::AppError;
use crate::domain::views::InboxItem;

#[server(input = GetUrl, prefix = "/sfn", endpoint = "approvals")]
pub async fn get_approvals() -> Result<Vec<InboxItem>, AppError> {
    use crate::ssr::http::sfn;
    let (state, actor) = (sfn::state(), sfn::actor()?);
    state.operations.inbox(&actor).await.map_err(sfn::fail)
}
