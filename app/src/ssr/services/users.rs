//! Executives manage users: create, change role, team and name, deactivate, reset a password,
//! unlock a locked sign-in. Every change is audited (never with the password).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::domain::{
    ids::Id,
    model::{Page, Role, User},
    parameters::FieldError,
    password_policy,
    permissions::Action,
};

use super::super::{
    audit::AuditLog,
    auth::{Actor, normalize_email},
    clock,
    error::ServiceError,
    ids::new_id,
    password::Hasher,
    repo::{Repo, RepoError, UserRecord},
};

/// `POST /api/v1/users`.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub email: String,
    pub name: String,
    pub role: Role,
    /// A Rep's Sales Manager.
    #[serde(default)]
    pub manager_id: Option<String>,
    pub password: String,
}

/// `PATCH /api/v1/users/{id}`: only the given fields change; `rev` is the revision read.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserChanges {
    pub rev: u64,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub role: Option<Role>,
    /// `""` removes the manager.
    #[serde(default)]
    pub manager_id: Option<String>,
    #[serde(default)]
    pub active: Option<bool>,
}

/// `POST /api/v1/users/{id}/password`.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordReset {
    pub password: String,
}

#[derive(Clone)]
pub struct UserService {
    repo: Repo,
    audit: Arc<AuditLog>,
    hasher: Arc<dyn Hasher>,
}

fn password_errors(password: &str, out: &mut Vec<FieldError>) {
    let unmet = password_policy::check(password);
    if !unmet.is_empty() {
        out.push(FieldError::new("password", "weak_password", password_policy::describe(&unmet)));
    }
}

fn name_errors(name: &str, out: &mut Vec<FieldError>) {
    let n = name.trim().chars().count();
    if n == 0 || n > 100 || name.chars().any(char::is_control) {
        out.push(FieldError::new("name", "invalid_name", "1 to 100 characters, no control characters"));
    }
}

/// Argon2 takes tens of milliseconds of CPU: off the async workers.
async fn hash_blocking(hasher: Arc<dyn Hasher>, password: String) -> Result<String, ServiceError> {
    tokio::task::spawn_blocking(move || hasher.hash(&password)).await.map_err(|_| ServiceError::Internal)
}

impl UserService {
    pub fn new(repo: Repo, audit: Arc<AuditLog>, hasher: Arc<dyn Hasher>) -> Self {
        UserService { repo, audit, hasher }
    }

    async fn load(&self, id: &Id) -> Result<UserRecord, ServiceError> {
        match self.repo.user(id).await {
            Err(RepoError::NotFound) => Err(ServiceError::NotFound("user")),
            other => Ok(other?),
        }
    }

    /// A Rep's manager must be an active Sales Manager; other roles have none.
    async fn check_manager(
        &self,
        role: Role,
        manager: Option<&str>,
        out: &mut Vec<FieldError>,
    ) -> Result<Option<Id>, ServiceError> {
        let Some(m) = manager.filter(|m| !m.is_empty()) else { return Ok(None) };
        if role != Role::Rep {
            out.push(FieldError::new("manager_id", "not_a_rep", "only Reps have a Sales Manager"));
            return Ok(None);
        }
        let Ok(id) = Id::parse(m) else {
            out.push(FieldError::new("manager_id", "invalid_id", "not a valid user id"));
            return Ok(None);
        };
        match self.repo.user(&id).await {
            Ok(r) if r.user.role == Role::SalesManager && r.user.active => Ok(Some(id)),
            Ok(_) | Err(RepoError::NotFound) => {
                out.push(FieldError::new(
                    "manager_id",
                    "invalid_manager",
                    "the manager must be an active Sales Manager",
                ));
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn list(
        &self,
        actor: &Actor,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<User>, ServiceError> {
        actor.require(Action::ManageUsers)?;
        Ok(self.repo.users(limit, cursor).await?)
    }

    /// The Sales Managers (a new Rep's manager is one of them).
    pub async fn managers(&self, actor: &Actor) -> Result<Vec<User>, ServiceError> {
        actor.require(Action::ManageUsers)?;
        Ok(self.repo.users_with_role(Role::SalesManager, 1000).await?)
    }

    pub async fn create(&self, actor: &Actor, input: NewUser) -> Result<User, ServiceError> {
        actor.require(Action::ManageUsers)?;
        let mut errors = Vec::new();
        let email = normalize_email(&input.email);
        if email.len() > 254
            || email.split('@').count() != 2
            || email.starts_with('@')
            || email.ends_with('@')
        {
            errors.push(FieldError::new("email", "invalid_email", "this is not an email address"));
        }
        name_errors(&input.name, &mut errors);
        let manager = self.check_manager(input.role, input.manager_id.as_deref(), &mut errors).await?;
        password_errors(&input.password, &mut errors);
        if !errors.is_empty() {
            return Err(ServiceError::fields(errors));
        }
        let now = clock::now();
        let record = UserRecord {
            user: User {
                id: new_id(),
                email: email.clone(),
                name: input.name.trim().to_string(),
                role: input.role,
                manager_id: manager,
                active: true,
                created_at: now,
                rev: 0,
            },
            password_hash: Some(hash_blocking(self.hasher.clone(), input.password.clone()).await?),
            sessions_valid_after: None,
        };
        let mut event = actor.audit("user.create", format!("user/{email}"), "success");
        // As stored: the first revision.
        event.details = serde_json::json!({ "after": User { rev: 1, ..record.user.clone() } });
        // The user and its audit event in one transaction.
        let created = self.audit.with_change(event, now, |repo| {
            let record = record.clone();
            async move { repo.create_user(record).await }
        });
        Ok(created.await?)
    }

    pub async fn update(&self, actor: &Actor, id: &Id, changes: UserChanges) -> Result<User, ServiceError> {
        actor.require(Action::ManageUsers)?;
        let before = self.load(id).await?;
        if changes.rev != before.user.rev {
            return Err(ServiceError::stale("user", before.user.rev, changes.rev));
        }
        let mut after = before.clone();
        let mut errors = Vec::new();
        if let Some(name) = &changes.name {
            name_errors(name, &mut errors);
            after.user.name = name.trim().to_string();
        }
        if let Some(role) = changes.role {
            if actor.user.id == *id && role != Role::Executive {
                errors.push(FieldError::new(
                    "role",
                    "own_role",
                    "you cannot take away your own Executive role",
                ));
            }
            after.user.role = role;
        }
        if let Some(active) = changes.active {
            if actor.user.id == *id && !active {
                errors.push(FieldError::new("active", "own_account", "you cannot deactivate yourself"));
            }
            if before.user.active && !active {
                after.sessions_valid_after = Some(clock::now());
            }
            after.user.active = active;
        }
        let manager = match changes.manager_id.as_deref() {
            Some(m) => self.check_manager(after.user.role, Some(m), &mut errors).await?,
            // A Rep keeps their manager unless told otherwise; other roles have none.
            None if after.user.role == Role::Rep => after.user.manager_id.clone(),
            None => None,
        };
        after.user.manager_id = manager;
        if !errors.is_empty() {
            return Err(ServiceError::fields(errors));
        }
        let mut event = actor.audit("user.update", format!("user/{}", before.user.email), "success");
        // As stored: the next revision, the email unchanged.
        let stored =
            User { rev: before.user.rev + 1, email: before.user.email.clone(), ..after.user.clone() };
        event.details = serde_json::json!({ "before": before.user, "after": stored });
        // The change and its audit event in one transaction.
        let saved = self.audit.with_change(event, clock::now(), |repo| {
            let (before, after) = (&before, after.clone());
            async move { repo.update_user(before, after).await }
        });
        Ok(saved.await?)
    }

    pub async fn reset_password(
        &self,
        actor: &Actor,
        id: &Id,
        reset: PasswordReset,
    ) -> Result<(), ServiceError> {
        actor.require(Action::ManageUsers)?;
        let before = self.load(id).await?;
        let mut errors = Vec::new();
        password_errors(&reset.password, &mut errors);
        if !errors.is_empty() {
            return Err(ServiceError::fields(errors));
        }
        let mut after = before.clone();
        after.password_hash = Some(hash_blocking(self.hasher.clone(), reset.password.clone()).await?);
        // A reset usually follows a compromise: every open session ends.
        after.sessions_valid_after = Some(clock::now());
        let event = actor.audit("user.password_reset", format!("user/{}", before.user.email), "success");
        // The new password and its audit event in one transaction.
        let saved = self.audit.with_change(event, clock::now(), |repo| {
            let (before, after) = (&before, after.clone());
            async move { repo.update_user(before, after).await }
        });
        saved.await?;
        Ok(())
    }

    /// The user's email, for unlocking its sign-in.
    pub async fn email(&self, actor: &Actor, id: &Id) -> Result<String, ServiceError> {
        actor.require(Action::ManageUsers)?;
        Ok(self.load(id).await?.user.email)
    }
}
