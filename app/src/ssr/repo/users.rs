//! Users: the record (with its sign-in state), the email that is unique, the list in email
//! order, and a Sales Manager's team.

use crate::domain::{
    ids::Id,
    model::{Page, Role, User},
};

use super::{
    super::store::{Cond, Item, Query, StoreError, Write, keys},
    Repo, RepoError, UserRecord, from_item, page, resume, to_json,
};

impl Repo {
    pub(super) fn user_item(r: &UserRecord) -> Item {
        let u = &r.user;
        let mut item = Item::new(keys::user(u.id.as_str()), keys::sk::USER, u.rev, to_json(r)).with_index(
            keys::GSI1,
            keys::USERS,
            keys::email_order(&u.email),
        );
        if let Some(m) = &u.manager_id {
            item = item.with_index(keys::GSI2, keys::team(m), keys::email_order(&u.email));
        }
        item
    }

    /// Creates a user; the email is unique (case-insensitive).
    pub async fn create_user(&self, mut record: UserRecord) -> Result<User, RepoError> {
        record.user.rev = 1;
        let email_item =
            Item::new(keys::email(&record.user.email), keys::sk::EMAIL, 1, record.user.id.to_string());
        self.store
            .transact(vec![
                Write::put(Self::user_item(&record), Cond::NotExists),
                Write::put(email_item, Cond::NotExists),
            ])
            .await
            .map_err(|e| match e {
                StoreError::Conflict { .. } => {
                    RepoError::Conflict(format!("{} is already a user", record.user.email))
                }
                e => e.into(),
            })?;
        Ok(record.user)
    }

    /// Saves a changed user (read as `before`): refused when it changed meanwhile.
    pub async fn update_user(&self, before: &UserRecord, mut after: UserRecord) -> Result<User, RepoError> {
        after.user.rev = before.user.rev + 1;
        // The email (and its uniqueness link) does not change here.
        after.user.email = before.user.email.clone();
        self.store.transact(vec![Write::put(Self::user_item(&after), Cond::Rev(before.user.rev))]).await?;
        Ok(after.user)
    }

    pub async fn user(&self, id: &Id) -> Result<UserRecord, RepoError> {
        let item =
            self.store.get(&keys::user(id.as_str()), keys::sk::USER).await?.ok_or(RepoError::NotFound)?;
        from_item(&item)
    }

    pub async fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>, RepoError> {
        let Some(link) = self.store.get(&keys::email(email), keys::sk::EMAIL).await? else { return Ok(None) };
        let id = Id::parse(&link.data).map_err(|e| RepoError::Store(StoreError::Corrupt(e.to_string())))?;
        Ok(Some(self.user(&id).await?))
    }

    pub async fn users(&self, limit: usize, after: Option<&str>) -> Result<Page<User>, RepoError> {
        let p = self.store.query(resume(Query::index(keys::GSI1, keys::USERS).limit(limit), after)?).await?;
        let records: Page<UserRecord> = page(p)?;
        Ok(Page {
            items: records.items.into_iter().map(|r| r.user).collect(),
            next_cursor: records.next_cursor,
        })
    }

    /// Every user with `role` (at most `limit`), in email order: read through all users, kept
    /// for the few lists that need them all (the Sales Managers a new Rep can report to).
    pub async fn users_with_role(&self, role: Role, limit: usize) -> Result<Vec<User>, RepoError> {
        let all = [Query::index(keys::GSI1, keys::USERS)];
        let p = self.query_many(&all, |r: &UserRecord| r.user.role == role, limit, None).await?;
        Ok(p.items.into_iter().map(|r| r.user).collect())
    }

    /// The Reps whose manager is `manager`.
    pub async fn team(&self, manager: &Id) -> Result<Vec<User>, RepoError> {
        let p = self.store.query(Query::index(keys::GSI2, keys::team(manager)).limit(1000)).await?;
        let records: Page<UserRecord> = page(p)?;
        Ok(records.items.into_iter().map(|r| r.user).collect())
    }
}
