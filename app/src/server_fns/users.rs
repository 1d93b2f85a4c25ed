//! Users (Executives): list, create, activate or deactivate, unlock.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use serde::{Deserialize, Serialize};

use super::AppError;
use crate::domain::{
    model::{Role, User},
    views::LockedAccount,
};

/// How many users one page of the Users page lists.
pub const USERS_PAGE: usize = 100;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsersPage {
    /// In email order.
    pub users: Vec<User>,
    /// The cursor of the next page, if there is one.
    pub next: Option<String>,
    /// Every Sales Manager (a Rep's manager may be on another page; new Reps pick one).
    pub managers: Vec<User>,
    /// Emails whose password sign-in is locked now.
    pub locked: Vec<LockedAccount>,
}

/// One page of users after `after` (the first without it).
#[server(input = GetUrl, prefix = "/sfn", endpoint = "users")]
pub async fn get_users(after: Option<String>) -> Result<UsersPage, AppError> {
    use crate::ssr::{clock, http::sfn};
    let (state, actor) = (sfn::state(), sfn::actor()?);
    let page = state.users.list(&actor, USERS_PAGE, after.as_deref()).await.map_err(sfn::fail)?;
    let managers = state.users.managers(&actor).await.map_err(sfn::fail)?;
    let locked = state.auth.locked_accounts(&actor, clock::now()).await.map_err(sfn::fail)?;
    Ok(UsersPage { users: page.items, next: page.next_cursor, managers, locked })
}

/// A new user with a first password (they are told it out of band and change it).
#[server(prefix = "/sfn", endpoint = "create-user")]
pub async fn create_user(
    email: String,
    name: String,
    role: Role,
    manager_id: Option<String>,
    password: String,
) -> Result<User, AppError> {
    use crate::ssr::{http::sfn, services::users::NewUser};
    let (state, actor) = (sfn::state(), sfn::actor()?);
    let manager_id = manager_id.filter(|m| !m.trim().is_empty());
    let input = NewUser { email, name, role, manager_id, password };
    state.users.create(&actor, input).await.map_err(sfn::fail)
}

/// Activates or deactivates a user (a deactivated user's sessions stop at once).
#[server(prefix = "/sfn", endpoint = "set-user-active")]
pub async fn set_user_active(id: String, rev: u64, active: bool) -> Result<User, AppError> {
    use crate::{
        domain::ids::Id,
        ssr::{error::ServiceError, http::sfn, services::users::UserChanges},
    };
    let (state, actor) = (sfn::state(), sfn::actor()?);
    let id = Id::parse(&id).map_err(|_| sfn::fail(ServiceError::NotFound("user")))?;
    let changes = UserChanges { rev, name: None, role: None, manager_id: None, active: Some(active) };
    state.users.update(&actor, &id, changes).await.map_err(sfn::fail)
}

/// Lifts a sign-in lockout.
#[server(prefix = "/sfn", endpoint = "unlock-user")]
pub async fn unlock_user(id: String) -> Result<(), AppError> {
    use crate::{
        domain::ids::Id,
        ssr::{clock, error::ServiceError, http::sfn},
    };
    let (state, actor) = (sfn::state(), sfn::actor()?);
    let id = Id::parse(&id).map_err(|_| sfn::fail(ServiceError::NotFound("user")))?;
    let email = state.users.email(&actor, &id).await.map_err(sfn::fail)?;
    state.auth.unlock(&actor, &email, clock::now()).await.map_err(sfn::fail)
}

/// Removes a user's second factors (a lost phone): they set one up again, signed out everywhere.
#[server(prefix = "/sfn", endpoint = "reset-user-mfa")]
pub async fn reset_user_mfa(id: String) -> Result<(), AppError> {
    use crate::{
        domain::ids::Id,
        ssr::{clock, error::ServiceError, http::sfn},
    };
    let (state, actor) = (sfn::state(), sfn::actor()?);
    let id = Id::parse(&id).map_err(|_| sfn::fail(ServiceError::NotFound("user")))?;
    state.auth.reset_mfa(&actor, &id, clock::now()).await.map_err(sfn::fail)
}
