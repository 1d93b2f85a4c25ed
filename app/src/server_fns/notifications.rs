//! The user's notification feed: operation state changes on the customers they see.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;

use super::AppError;
use crate::domain::views::{AccountNotice, Notification};

#[server(input = GetUrl, prefix = "/sfn", endpoint = "notifications")]
pub async fn get_notifications() -> Result<Vec<Notification>, AppError> {
    use crate::ssr::http::sfn;
    let (state, actor) = (sfn::state(), sfn::actor()?);
    state.operations.notifications(&actor).await.map_err(sfn::fail)
}

/// Notices about the user's own account (a lock on their password sign-in).
#[server(input = GetUrl, prefix = "/sfn", endpoint = "account-notices")]
pub async fn get_account_notices() -> Result<Vec<AccountNotice>, AppError> {
    use crate::ssr::http::sfn;
    let (state, actor) = (sfn::state(), sfn::actor()?);
    state.auth.account_notices(&actor).await.map_err(sfn::fail)
}
