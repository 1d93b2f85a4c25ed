//! The lockout: failed sign-ins counted per submitted email (known or not), the lock at the
//! threshold, the notice to the account's owner, and the Executives' list with unlock.

use crate::{
    domain::{
        ids::Id,
        permissions::Action,
        time::Timestamp,
        views::{AccountNotice, AccountNoticeKind, LockedAccount},
    },
    ssr::{
        error::ServiceError,
        repo::{LoginAttempts, RepoError},
    },
};

use super::{Actor, AuthService, ClientInfo, normalize_email};

/// Sign-in limits (`NEXUS_LOCKOUT_THRESHOLD`, `NEXUS_LOCKOUT_MINUTES`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockoutPolicy {
    pub threshold: u32,
    pub lock_ms: i64,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        LockoutPolicy { threshold: 5, lock_ms: 15 * 60 * 1000 }
    }
}

/// The outcome of counting a sign-in attempt before checking it.
pub(super) enum Reservation {
    /// The email is locked until then: no verification.
    Locked(Timestamp),
    /// Go ahead; `locks` is set when this attempt reached the threshold (it stands unless the
    /// password is right).
    Granted { locks: Option<Timestamp> },
}

/// A user's notifications show this many notices about their own account.
const ACCOUNT_NOTICES_LIMIT: usize = 10;
/// The Executives' list of locked accounts shows at most this many (more would be an attack,
/// and the audit log holds every one).
const LOCKED_LIST_LIMIT: usize = 500;

impl AuthService {
    /// Tells a user their password sign-in was locked (their notifications show it); answers
    /// whether the notice was stored. A failure is logged, never stops the sign-in's answer.
    pub(super) async fn notify_lock(
        &self,
        user: &Id,
        until: Timestamp,
        client: &ClientInfo,
        now: Timestamp,
    ) -> bool {
        let notice = AccountNotice {
            kind: AccountNoticeKind::Locked,
            at: now,
            until: Some(until),
            failures: self.policy.threshold,
            source_ip: client.ip_string(),
        };
        match self.repo.put_account_notice(user, &notice).await {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(error = %e, "could not store a lockout notice");
                false
            }
        }
    }

    /// The newest notices about the signed-in user's own account.
    pub async fn account_notices(&self, actor: &Actor) -> Result<Vec<AccountNotice>, ServiceError> {
        Ok(self.repo.account_notices(&actor.user.id, ACCOUNT_NOTICES_LIMIT).await?)
    }

    /// Emails whose password sign-in is locked now, with their users (Executives).
    pub async fn locked_accounts(
        &self,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<Vec<LockedAccount>, ServiceError> {
        actor.require(Action::ManageUsers)?;
        let mut out = Vec::new();
        for (email, attempts) in self.repo.locked_logins(LOCKED_LIST_LIMIT).await? {
            // Latest-ending first: the first run-out lock means the rest ran out too.
            let Some(until) = attempts.locked_until.filter(|u| *u > now) else { break };
            let user = self.repo.user_by_email(&email).await?;
            out.push(LockedAccount {
                email,
                user_id: user.as_ref().map(|u| u.user.id.clone()),
                name: user.map(|u| u.user.name),
                locked_until: until,
            });
        }
        Ok(out)
    }

    /// Counts one attempt for `email` before its password is checked.
    pub(super) async fn reserve_attempt(
        &self,
        email: &str,
        now: Timestamp,
    ) -> Result<Reservation, ServiceError> {
        for _ in 0..20 {
            let mut a = self.repo.login_attempts(email).await?;
            if let Some(until) = a.locked_until.filter(|u| *u > now) {
                return Ok(Reservation::Locked(until));
            }
            if a.locked_until.is_some() {
                // An expired lock: start counting again.
                a.locked_until = None;
                a.failures = 0;
            }
            a.failures += 1;
            let locks = a.failures >= self.policy.threshold;
            if locks {
                a.failures = 0;
                a.locked_until = Some(Timestamp::from_millis(now.millis() + self.policy.lock_ms));
            }
            match self.repo.save_login_attempts(email, &a).await {
                Ok(()) => {
                    return Ok(Reservation::Granted { locks: a.locked_until.filter(|_| locks) });
                }
                Err(RepoError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ServiceError::Unavailable)
    }

    pub(super) async fn reset_failures(&self, email: &str) -> Result<(), ServiceError> {
        for _ in 0..10 {
            let a = self.repo.login_attempts(email).await?;
            let cleared = LoginAttempts { failures: 0, locked_until: None, rev: a.rev };
            match self.repo.save_login_attempts(email, &cleared).await {
                Ok(()) => return Ok(()),
                Err(RepoError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ServiceError::Unavailable)
    }

    /// Unlocks an email (an Executive's action).
    pub async fn unlock(&self, actor: &Actor, email: &str, now: Timestamp) -> Result<(), ServiceError> {
        actor.require(Action::ManageUsers)?;
        let email = normalize_email(email);
        self.reset_failures(&email).await?;
        self.record(actor.audit("user.unlock", format!("user/{email}"), "success"), now).await;
        Ok(())
    }
}
