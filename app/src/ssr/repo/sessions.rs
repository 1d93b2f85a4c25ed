//! Sign-in state: failed attempts per submitted email (whether or not a user has it, so the
//! answers cannot tell who exists) and sessions, which sign-out revokes.

use serde::{Deserialize, Serialize};

use crate::domain::{ids::Id, time::Timestamp, views::AccountNotice};

use super::{Repo, RepoError, from_item, to_json};
use crate::ssr::store::{Cond, Item, Query, Write, keys};

/// Failed sign-ins for one email since the last success or lockout.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginAttempts {
    pub failures: u32,
    pub locked_until: Option<Timestamp>,
    /// 0: nothing stored yet.
    #[serde(skip)]
    pub rev: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub id: Id,
    pub user_id: Id,
    pub created_at: Timestamp,
    /// However active the user, a session ends here (renewal stops).
    pub expires_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
    /// `local` or `cognito`.
    pub method: String,
    /// When the user last proved a second factor in this session (sign-in or step-up).
    #[serde(default)]
    pub mfa_at: Option<Timestamp>,
    /// The user's role requires a factor they have not set up: only enrolment is open.
    #[serde(default)]
    pub must_enrol: bool,
}

impl Repo {
    pub async fn login_attempts(&self, email: &str) -> Result<LoginAttempts, RepoError> {
        match self.store.get(&keys::login(email), keys::sk::LOGIN).await? {
            None => Ok(LoginAttempts::default()),
            Some(item) => {
                let mut a: LoginAttempts = from_item(&item)?;
                a.rev = item.rev;
                Ok(a)
            }
        }
    }

    /// Saves the attempts read at `a.rev`; a concurrent change answers `Conflict`. A locked
    /// email is also filed in the `LOCKS` index, for the Executives' list of locked accounts.
    pub async fn save_login_attempts(&self, email: &str, a: &LoginAttempts) -> Result<(), RepoError> {
        let cond = if a.rev == 0 { Cond::NotExists } else { Cond::Rev(a.rev) };
        let mut item = Item::new(keys::login(email), keys::sk::LOGIN, a.rev + 1, to_json(a));
        if let Some(until) = a.locked_until {
            // Sorted by when the lock ends: the list reads the live ones first, however many
            // expired ones (left until their email is tried again) sort before them by name.
            let sk = keys::lock_order(until, email);
            item = item.with_index(keys::GSI1, keys::LOCKS, sk);
        }
        self.store.transact(vec![Write::put(item, cond)]).await?;
        Ok(())
    }

    /// Emails whose sign-in lock has been set and not yet cleared, the latest-ending first, at
    /// most `limit` (some may have run out: `locked_until` says; they come last).
    pub async fn locked_logins(&self, limit: usize) -> Result<Vec<(String, LoginAttempts)>, RepoError> {
        let page = self.store.query(Query::index(keys::GSI1, keys::LOCKS).descending().limit(limit)).await?;
        page.items
            .iter()
            .map(|item| {
                let mut a: LoginAttempts = from_item(item)?;
                a.rev = item.rev;
                let email = keys::login_email(&item.pk).to_string();
                Ok((email, a))
            })
            .collect()
    }

    /// Tells a user something about their own account (a lock on their sign-in).
    pub async fn put_account_notice(&self, user: &Id, n: &AccountNotice) -> Result<(), RepoError> {
        let sk = keys::account_notice(n.at, n.kind.as_str());
        let item = Item::new(keys::account_notices(user), sk, 1, to_json(n));
        self.store.transact(vec![Write::put(item, Cond::None)]).await?;
        Ok(())
    }

    /// The newest `limit` notices about a user's own account.
    pub async fn account_notices(&self, user: &Id, limit: usize) -> Result<Vec<AccountNotice>, RepoError> {
        let p = self.store.query(Query::table(keys::account_notices(user)).descending().limit(limit)).await?;
        p.items.iter().map(from_item).collect()
    }

    pub async fn create_session(&self, s: &Session) -> Result<(), RepoError> {
        let item = Item::new(keys::session(s.id.as_str()), keys::sk::SESSION, 1, to_json(s));
        self.store.transact(vec![Write::put(item, Cond::NotExists)]).await?;
        Ok(())
    }

    pub async fn session(&self, id: &Id) -> Result<Option<Session>, RepoError> {
        self.store
            .get(&keys::session(id.as_str()), keys::sk::SESSION)
            .await?
            .map(|i| from_item(&i))
            .transpose()
    }

    pub async fn revoke_session(&self, id: &Id, at: Timestamp) -> Result<(), RepoError> {
        let item = self
            .store
            .get(&keys::session(id.as_str()), keys::sk::SESSION)
            .await?
            .ok_or(RepoError::NotFound)?;
        let mut s: Session = from_item(&item)?;
        if s.revoked_at.is_some() {
            return Ok(());
        }
        s.revoked_at = Some(at);
        let next = Item::new(item.pk.clone(), item.sk.clone(), item.rev + 1, to_json(&s));
        self.store.transact(vec![Write::put(next, Cond::Rev(item.rev))]).await?;
        Ok(())
    }
}

impl Repo {
    /// The user a Cognito subject is linked to.
    pub async fn cognito_link(&self, sub: &str) -> Result<Option<Id>, RepoError> {
        let Some(item) = self.store.get(&keys::cognito(sub), keys::sk::COGNITO_LINK).await? else {
            return Ok(None);
        };
        Id::parse(&item.data)
            .map(Some)
            .map_err(|e| RepoError::Store(crate::ssr::store::StoreError::Corrupt(e.to_string())))
    }

    /// Links a Cognito subject to a user, once (a second link of the same subject conflicts).
    pub async fn link_cognito(&self, sub: &str, user: &Id) -> Result<(), RepoError> {
        let item = Item::new(keys::cognito(sub), keys::sk::COGNITO_LINK, 1, user.to_string());
        self.store.transact(vec![Write::put(item, Cond::NotExists)]).await?;
        Ok(())
    }
}
