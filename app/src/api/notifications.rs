//! The user's notification feed: operation state changes on the customers they see.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;

use super::AppError;
use crate::domain::views::Notification;

#[server(input = GetUrl, prefix = "/sfn", endpoint = "notifications")]
pub async fn get_notifications() -> Result<Vec<Notification>, AppError> {
    use crate::ssr::http::server_fns;
    let (state, actor) = (server_fns::state(), server_fns::actor()?);
    state.operations.notifications(&actor).await.map_err(server_fns::fail)
}
