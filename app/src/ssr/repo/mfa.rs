//! Each user's second factors (`auth::mfa::MfaRecord`), one item per user, written under its
//! revision so two sign-ins with the same code cannot both record it.

use crate::{
    domain::ids::Id,
    ssr::{
        auth::mfa::MfaRecord,
        store::{Cond, Item, Write, keys},
    },
};

use super::{Repo, RepoError, from_item, to_json};

impl Repo {
    /// The user's second factors (an empty record when there are none).
    pub async fn mfa(&self, user: &Id) -> Result<MfaRecord, RepoError> {
        match self.store.get(&keys::mfa(user), keys::sk::MFA).await? {
            None => Ok(MfaRecord::default()),
            Some(item) => {
                let mut r: MfaRecord = from_item(&item)?;
                r.rev = item.rev;
                Ok(r)
            }
        }
    }

    /// Saves the record read at `r.rev`; a concurrent change answers `Conflict`.
    pub async fn save_mfa(&self, user: &Id, r: &MfaRecord) -> Result<(), RepoError> {
        let cond = if r.rev == 0 { Cond::NotExists } else { Cond::Rev(r.rev) };
        let item = Item::new(keys::mfa(user), keys::sk::MFA, r.rev + 1, to_json(r));
        self.store.transact(vec![Write::put(item, cond)]).await?;
        Ok(())
    }

    /// Removes every second factor of the user (their own removal, an Executive's reset). The
    /// record stays, empty, so its revision keeps counting: a write still holding an older
    /// revision (a sign-in recording a code) can never land on a record enrolled afterwards.
    pub async fn delete_mfa(&self, user: &Id) -> Result<(), RepoError> {
        for _ in 0..5 {
            let current = self.mfa(user).await?;
            let empty = MfaRecord { rev: current.rev, ..Default::default() };
            match self.save_mfa(user, &empty).await {
                Err(RepoError::Conflict(_)) => continue,
                other => return other,
            }
        }
        Err(RepoError::Conflict("the second factors changed meanwhile".into()))
    }

    /// Records that the session's user just proved a second factor (sign-in, step-up,
    /// enrolment): the session is no longer waiting for enrolment either.
    pub async fn mark_session_mfa(
        &self,
        session: &Id,
        at: crate::domain::time::Timestamp,
    ) -> Result<(), RepoError> {
        self.update_session(session, |s| {
            s.mfa_at = Some(at);
            s.must_enrol = false;
        })
        .await
    }

    /// Changes one session under its revision (retried on a concurrent change).
    pub async fn update_session(
        &self,
        session: &Id,
        change: impl Fn(&mut super::Session),
    ) -> Result<(), RepoError> {
        for _ in 0..5 {
            let item = self
                .store
                .get(&keys::session(session.as_str()), keys::sk::SESSION)
                .await?
                .ok_or(RepoError::NotFound)?;
            let mut s: super::Session = from_item(&item)?;
            change(&mut s);
            let next = Item::new(item.pk.clone(), item.sk.clone(), item.rev + 1, to_json(&s));
            match self.store.transact(vec![Write::put(next, Cond::Rev(item.rev))]).await {
                Ok(()) => return Ok(()),
                Err(e) => match RepoError::from(e) {
                    RepoError::Conflict(_) => continue,
                    other => return Err(other),
                },
            }
        }
        Err(RepoError::Conflict("the session changed meanwhile".into()))
    }

    /// Files the passkey user handle under its user (once; the same user again is fine).
    pub async fn link_webauthn_handle(&self, handle: &str, user: &Id) -> Result<(), RepoError> {
        let item = Item::new(keys::webauthn_handle(handle), keys::sk::WEBAUTHN, 1, user.as_str());
        match self.store.transact(vec![Write::put(item, Cond::NotExists)]).await.map_err(RepoError::from) {
            Err(RepoError::Conflict(_)) if self.webauthn_user(handle).await?.as_ref() == Some(user) => Ok(()),
            other => other,
        }
    }

    /// The user a passkey user handle belongs to.
    pub async fn webauthn_user(&self, handle: &str) -> Result<Option<Id>, RepoError> {
        let Some(item) = self.store.get(&keys::webauthn_handle(handle), keys::sk::WEBAUTHN).await? else {
            return Ok(None);
        };
        Ok(Id::parse(&item.data).ok())
    }

    /// Marks a passkey ceremony finished: `Conflict` when it was already (a replay).
    pub async fn use_ceremony(&self, id: &str) -> Result<(), RepoError> {
        let item = Item::new(keys::ceremony(id), keys::sk::CEREMONY_USED, 1, "");
        self.store.transact(vec![Write::put(item, Cond::NotExists)]).await?;
        Ok(())
    }
}
