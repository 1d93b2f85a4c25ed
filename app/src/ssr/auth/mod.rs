//! Who is calling: sign-in with the review's rules, sessions, and the [`Actor`] every service
//! call is made as (`actor`). Here: the service, password sign-in, sessions and their tokens;
//! `lockout` counts failures, `sso` signs in through Cognito, `second_factor` and `passkeys`
//! hold the second factors.
//!
//! - Failed sign-ins are counted per submitted email, whether or not a user has it, and an
//!   unknown email still costs one Argon2 verification, so neither the answers nor their timing
//!   tell who exists. The fifth failure locks the email's password sign-in for the configured
//!   time (423), tells the user with that email (a notice in their notifications, and the audit
//!   event says so), and lists it for Executives, who may unlock it. Single sign-on is not
//!   locked: a lock someone else causes by guessing cannot keep a user out.
//! - A session is a stored record; tokens name it, so sign-out (revoking the session) ends every
//!   token renewed from it, and a deactivated user's tokens stop working at once.

mod actor;
pub mod cognito;
pub mod hosted_ui;
mod lockout;
pub mod mfa;
mod passkeys;
mod second_factor;
mod sso;
pub mod tokens;

pub use actor::{Actor, ClientInfo};
pub use lockout::LockoutPolicy;
pub use passkeys::relying_party;
pub use second_factor::require_step_up;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::domain::{
    ids::Id,
    model::{Role, User},
    second_factor::FactorState,
    time::Timestamp,
};

use super::{
    audit::{AuditLog, NewEvent},
    error::ServiceError,
    ids::new_id,
    password::Hasher,
    repo::{Repo, RepoError, Session},
};
use lockout::Reservation;
use tokens::{Claims, RENEW_BELOW_MS, TokenError, TokenSigner};

/// However active the user, a session ends after this long.
pub const SESSION_MAX_MS: i64 = 12 * 60 * 60 * 1000;

/// A successful sign-in.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LoginResponse {
    pub token: String,
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Timestamp,
    pub user: User,
    /// The role requires a second factor the user has not set up: until they do, this session
    /// reaches only enrolment (`/api/v1/me/mfa/totp`), the rest answers 403
    /// `mfa_enrolment_required`.
    pub mfa_enrolment_required: bool,
}

/// The result of checking a token.
pub struct Authenticated {
    pub actor: Actor,
    /// A fresh token for the same session when the presented one is past half its life.
    pub renewed: Option<(String, Claims)>,
}

pub struct AuthService {
    repo: Repo,
    audit: Arc<AuditLog>,
    signer: TokenSigner,
    hasher: Arc<dyn Hasher>,
    /// Verified against when the email is unknown, so that costs the same as a wrong password.
    dummy_hash: String,
    policy: LockoutPolicy,
    cognito: Option<cognito::CognitoVerifier>,
    metrics: Arc<crate::ssr::metrics::Metrics>,
    /// Seals TOTP secrets at rest (the `NoEcho` parameters' key).
    cipher: crate::ssr::lifecycle::secrets::ParameterCipher,
    /// The roles that must have a second factor (`NEXUS_MFA_REQUIRED_ROLES`).
    factor_required_roles: Vec<Role>,
    /// How recent a factor sensitive actions need (`NEXUS_MFA_STEP_UP_MINUTES`).
    step_up_ms: i64,
    /// This toolkit as a WebAuthn relying party (none: no passkeys).
    webauthn: Option<Arc<webauthn_rs::prelude::Webauthn>>,
}

/// Emails are compared trimmed and lower-case.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

impl AuthService {
    pub fn new(
        repo: Repo,
        audit: Arc<AuditLog>,
        signer: TokenSigner,
        hasher: Arc<dyn Hasher>,
        policy: LockoutPolicy,
    ) -> Self {
        let mut random = [0u8; 24];
        getrandom::fill(&mut random).expect("the operating system's random source is unavailable");
        let dummy_hash = hasher.hash(&format!("{random:?}"));
        AuthService {
            repo,
            audit,
            signer,
            hasher,
            dummy_hash,
            policy,
            cognito: None,
            metrics: Default::default(),
            // A key of its own until `with_cipher` gives the server's (tests need no other).
            cipher: crate::ssr::lifecycle::secrets::ParameterCipher::new(&random),
            factor_required_roles: Vec::new(),
            step_up_ms: 5 * 60 * 1000,
            webauthn: None,
        }
    }

    /// The roles that must have a second factor: their users sign in to enrolment only, until
    /// they have one.
    /// `step_up_ms` is how recent a factor sensitive actions need.
    pub fn with_factor_policy(mut self, roles: Vec<Role>, step_up_ms: i64) -> Self {
        self.factor_required_roles = roles;
        self.step_up_ms = step_up_ms;
        self
    }

    /// Offers passkeys as this relying party.
    pub fn with_passkeys(mut self, rp: Option<webauthn_rs::prelude::Webauthn>) -> Self {
        self.webauthn = rp.map(Arc::new);
        self
    }

    /// Whether the role must have a second factor.
    pub fn role_requires_factor(&self, role: Role) -> bool {
        self.factor_required_roles.contains(&role)
    }

    /// Seals second-factor secrets with the server's parameter key.
    pub fn with_cipher(mut self, cipher: crate::ssr::lifecycle::secrets::ParameterCipher) -> Self {
        self.cipher = cipher;
        self
    }

    /// Counts lockouts into the process's metrics.
    pub fn with_metrics(mut self, metrics: Arc<crate::ssr::metrics::Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Turns on single sign-on with this user pool.
    pub fn with_cognito(mut self, verifier: cognito::CognitoVerifier) -> Self {
        self.cognito = Some(verifier);
        self
    }

    pub fn signer(&self) -> &TokenSigner {
        &self.signer
    }

    async fn record(&self, event: NewEvent, now: Timestamp) {
        // An audit failure must not hide the sign-in's own answer; it is logged loudly.
        if let Err(e) = self.audit.append(event, now).await {
            tracing::error!(error = %e, "could not write an audit event");
        }
    }

    /// Checks email and password (and the second factor, `otp`: a TOTP or recovery code, when
    /// the account has one) and opens a session.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        otp: Option<&str>,
        client: &ClientInfo,
        now: Timestamp,
    ) -> Result<LoginResponse, ServiceError> {
        let email = normalize_email(email);
        if email.is_empty() {
            return Err(ServiceError::invalid("email", "required", "enter your email address"));
        }
        if email.len() > 254 || !email.contains('@') {
            return Err(ServiceError::invalid("email", "invalid_email", "this is not an email address"));
        }
        if password.is_empty() {
            return Err(ServiceError::invalid("password", "required", "enter your password"));
        }
        if password.len() > crate::domain::password_policy::MAX_LENGTH * 4 {
            return Err(ServiceError::invalid("password", "too_long", "the password is too long"));
        }
        let event = |action: &str, outcome: &str, details: serde_json::Value| NewEvent {
            actor_email: Some(email.clone()),
            source_ip: client.ip_string(),
            action: action.into(),
            target: format!("user/{email}"),
            outcome: outcome.into(),
            details,
            ..Default::default()
        };

        // The attempt is counted before the password is checked, with a conditional write: of
        // many guesses sent at once, only the threshold's worth get a verification; the rest
        // meet the lock. A success clears the count.
        let locked_by_this = match self.reserve_attempt(&email, now).await? {
            Reservation::Locked(until) => {
                self.record(event("auth.login", "denied", serde_json::json!({"reason": "locked"})), now)
                    .await;
                return Err(ServiceError::Locked { until });
            }
            Reservation::Granted { locks } => locks,
        };

        let user = self.repo.user_by_email(&email).await?;
        let owner = user.as_ref().map(|u| u.user.id.clone());
        // Exactly one verification whatever the case, so timing does not tell users apart; on a
        // blocking thread, since Argon2 takes tens of milliseconds of CPU.
        let hash =
            user.as_ref().and_then(|u| u.password_hash.clone()).unwrap_or_else(|| self.dummy_hash.clone());
        let (hasher, submitted) = (self.hasher.clone(), password.to_string());
        let password_ok = tokio::task::spawn_blocking(move || hasher.verify(&submitted, &hash))
            .await
            .map_err(|_| ServiceError::Internal)?;
        let user = user.filter(|u| password_ok && u.password_hash.is_some() && u.user.active);

        // A failed attempt (password or second factor): audited, and the lock it may have set
        // is reported, to the caller and to the account's owner.
        let failed = async |reason: &str, actor_id: Option<Id>| -> ServiceError {
            let mut failure = event("auth.login", "failure", serde_json::json!({"reason": reason}));
            failure.actor_id = actor_id;
            self.record(failure, now).await;
            let Some(until) = locked_by_this else { return ServiceError::Unauthenticated };
            let notified = match &owner {
                Some(owner) => self.notify_lock(owner, until, client, now).await,
                None => false,
            };
            let details = serde_json::json!({"until": until.to_string(), "failures": self.policy.threshold,
                "owner_notified": notified});
            let mut lockout = event("auth.lockout", "success", details);
            lockout.actor_id = owner.clone();
            self.record(lockout, now).await;
            self.metrics.lockout();
            ServiceError::Locked { until }
        };
        let Some(record) = user else {
            return Err(failed("bad_credentials", None).await);
        };

        // The second factor, when the account has one: without a code the answer is
        // `mfa_required` (the attempt stays counted until a sign-in succeeds); a wrong code is a
        // failed sign-in like a wrong password.
        let mut mfa_at = None;
        let mfa = self.repo.mfa(&record.user.id).await?;
        if mfa.has_factor() {
            let Some(code) = otp.map(str::trim).filter(|c| !c.is_empty()) else {
                // This attempt reached the threshold: the lock it set is reported like any other.
                if locked_by_this.is_some() {
                    return Err(failed("second_factor_missing", Some(record.user.id.clone())).await);
                }
                let mut asked = event("auth.login", "mfa_required", serde_json::json!({}));
                asked.actor_id = Some(record.user.id.clone());
                self.record(asked, now).await;
                return Err(ServiceError::MfaRequired);
            };
            match self.use_code(&record.user.id, code, now).await? {
                Some(kind) => {
                    mfa_at = Some(now);
                    let mut used = event("auth.mfa", "success", serde_json::json!({"factor": kind}));
                    used.actor_id = Some(record.user.id.clone());
                    self.record(used, now).await;
                }
                None => return Err(failed("bad_second_factor", Some(record.user.id.clone())).await),
            }
        }

        // Every attempt was counted when it began, this one too: a success clears the count (a
        // success that left its own count behind made the next lock come one failure early).
        self.reset_failures(&email).await?;
        let session = Session {
            id: new_id(),
            user_id: record.user.id.clone(),
            created_at: now,
            expires_at: Timestamp::from_millis(now.millis() + SESSION_MAX_MS),
            revoked_at: None,
            method: "local".into(),
            mfa_at,
            // The policy: a role that requires a factor, without one, goes to enrolment only.
            must_enrol: !mfa.has_factor() && self.role_requires_factor(record.user.role),
        };
        self.repo.create_session(&session).await?;
        let (token, claims) = self.signer.issue(record.user.id.as_str(), session.id.as_str(), now);
        let mut success = event("auth.login", "success", serde_json::json!({"session": session.id}));
        success.actor_id = Some(record.user.id.clone());
        success.actor_role = Some(record.user.role);
        self.record(success, now).await;
        Ok(LoginResponse {
            token,
            expires_at: claims.expires_at(),
            user: record.user,
            mfa_enrolment_required: session.must_enrol,
        })
    }

    /// Checks a session token and loads who it belongs to.
    pub async fn authenticate(
        &self,
        token: &str,
        client: &ClientInfo,
        now: Timestamp,
    ) -> Result<Authenticated, ServiceError> {
        let claims = self.signer.verify(token, now).map_err(|e| {
            if e != TokenError::Expired {
                tracing::info!(reason = %e, "refused a session token");
            }
            ServiceError::Unauthenticated
        })?;
        let (Ok(sid), Ok(uid)) = (Id::parse(&claims.sid), Id::parse(&claims.sub)) else {
            return Err(ServiceError::Unauthenticated);
        };
        let (actor, session_expires) = self.session_actor(&sid, &uid, client, now).await?;
        let renewed = (claims.exp * 1000 - now.millis() < RENEW_BELOW_MS
            && session_expires.millis() > now.millis() + RENEW_BELOW_MS)
            .then(|| self.signer.issue(uid.as_str(), sid.as_str(), now));
        Ok(Authenticated { actor, renewed })
    }

    /// Checks again, for a long-lived request (a live event stream), that the actor's session
    /// still stands as it did when the request began: not signed out, not expired, the user still
    /// active with the same role. Answers the actor as they are now (a Sales Manager's team may
    /// have changed), or `Unauthenticated` once any of that no longer holds.
    pub async fn recheck(&self, actor: &Actor, now: Timestamp) -> Result<Actor, ServiceError> {
        let (fresh, _) = self.session_actor(&actor.session_id, &actor.user.id, &actor.client, now).await?;
        if fresh.user.role != actor.user.role {
            return Err(ServiceError::Unauthenticated);
        }
        Ok(fresh)
    }

    /// The user behind a live session, and when the session ends; `Unauthenticated` when the
    /// session is revoked, expired, someone else's, or its user is gone, inactive or signed out
    /// everywhere since it began.
    async fn session_actor(
        &self,
        sid: &Id,
        uid: &Id,
        client: &ClientInfo,
        now: Timestamp,
    ) -> Result<(Actor, Timestamp), ServiceError> {
        let session = self.repo.session(sid).await?.ok_or(ServiceError::Unauthenticated)?;
        if session.revoked_at.is_some() || session.user_id != *uid || session.expires_at <= now {
            return Err(ServiceError::Unauthenticated);
        }
        let record = match self.repo.user(uid).await {
            Ok(r) => r,
            Err(RepoError::NotFound) => return Err(ServiceError::Unauthenticated),
            Err(e) => return Err(e.into()),
        };
        if !record.user.active || record.sessions_valid_after.is_some_and(|t| session.created_at < t) {
            return Err(ServiceError::Unauthenticated);
        }
        let team = if record.user.role == Role::SalesManager {
            self.repo.team(&record.user.id).await?.into_iter().map(|u| u.id).collect()
        } else {
            Vec::new()
        };
        let local = session.method == "local";
        // A session waiting for enrolment looks again (one read, only in that state): the user
        // may have enrolled in another session since.
        let mut must_enrol = local && session.must_enrol;
        if must_enrol && self.repo.mfa(uid).await?.has_factor() {
            self.repo.update_session(sid, |s| s.must_enrol = false).await?;
            must_enrol = false;
        }
        let factor = FactorState {
            local,
            role_requires: self.role_requires_factor(record.user.role),
            must_enrol,
            proved_at: session.mfa_at,
            window_ms: self.step_up_ms,
        };
        let actor =
            Actor { user: record.user, team, session_id: sid.clone(), client: client.clone(), factor };
        Ok((actor, session.expires_at))
    }

    /// Ends the session (every token of it).
    pub async fn logout(&self, actor: &Actor, now: Timestamp) -> Result<(), ServiceError> {
        self.repo.revoke_session(&actor.session_id, now).await?;
        self.record(actor.audit("auth.logout", format!("user/{}", actor.user.email), "success"), now).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::ssr::{password::Argon2Hasher, repo::UserRecord, store::RedbStore};

    /// Counts verifications; hashes are cheap fakes (this is about counting, not crypto).
    #[derive(Default)]
    struct CountingHasher {
        verifications: AtomicUsize,
    }

    impl Hasher for CountingHasher {
        fn hash(&self, password: &str) -> String {
            format!("fake-hash:{password}")
        }
        fn verify(&self, password: &str, phc: &str) -> bool {
            self.verifications.fetch_add(1, Ordering::SeqCst);
            phc == format!("fake-hash:{password}")
        }
    }

    const NOW: Timestamp = Timestamp::from_millis(1_800_000_000_000);

    async fn service(hasher: Arc<dyn Hasher>) -> (AuthService, Repo, tempdir::Dir) {
        let dir = tempdir::Dir::new();
        let store: Arc<dyn crate::ssr::store::Store> = Arc::new(RedbStore::open(&dir.0).unwrap());
        let repo = Repo::new(store.clone());
        let user = User {
            id: new_id(),
            email: "someone@example.test".into(),
            name: "Someone".into(),
            role: Role::Rep,
            manager_id: None,
            active: true,
            created_at: NOW,
            rev: 0,
        };
        let record = UserRecord {
            user,
            password_hash: Some(hasher.hash("Fake-Password-2026!")),
            sessions_valid_after: None,
        };
        repo.create_user(record).await.unwrap();
        let audit = Arc::new(AuditLog::new(
            store,
            crate::ssr::audit::ChainKey::new(b"fake-audit-key-for-tests-0123456789"),
        ));
        let auth = AuthService::new(
            repo.clone(),
            audit,
            TokenSigner::new(b"fake-test-signing-key"),
            hasher,
            LockoutPolicy::default(),
        );
        (auth, repo, dir)
    }

    mod tempdir {
        pub struct Dir(pub std::path::PathBuf);
        impl Dir {
            pub fn new() -> Self {
                let d = std::env::temp_dir().join(format!("nexus-auth-{}", crate::ssr::ids::new_id()));
                Dir(d)
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    #[tokio::test]
    async fn an_unknown_user_costs_exactly_one_verification_like_a_known_one() {
        let hasher = Arc::new(CountingHasher::default());
        let (auth, _repo, _dir) = service(hasher.clone()).await;
        let client = ClientInfo::default();
        let base = hasher.verifications.load(Ordering::SeqCst);

        let unknown = auth.login("nobody@example.test", "Wrong-Password-1!", None, &client, NOW).await;
        assert!(matches!(unknown, Err(ServiceError::Unauthenticated)), "{unknown:?}");
        assert_eq!(hasher.verifications.load(Ordering::SeqCst), base + 1);

        let wrong = auth.login("someone@example.test", "Wrong-Password-1!", None, &client, NOW).await;
        assert!(matches!(wrong, Err(ServiceError::Unauthenticated)), "{wrong:?}");
        assert_eq!(hasher.verifications.load(Ordering::SeqCst), base + 2);

        let ok =
            auth.login("Someone@Example.test ", "Fake-Password-2026!", None, &client, NOW).await.unwrap();
        assert_eq!(hasher.verifications.load(Ordering::SeqCst), base + 3);
        assert_eq!(ok.user.email, "someone@example.test");
    }

    #[tokio::test]
    async fn five_failures_lock_known_and_unknown_emails_alike_until_the_time_passes() {
        let (auth, _repo, _dir) = service(Arc::new(CountingHasher::default())).await;
        let client = ClientInfo::default();
        for email in ["someone@example.test", "nobody@example.test"] {
            for i in 1..=5 {
                let r = auth.login(email, "Wrong-Password-1!", None, &client, NOW).await;
                if i < 5 {
                    assert!(matches!(r, Err(ServiceError::Unauthenticated)), "{email} #{i}: {r:?}");
                } else {
                    assert!(matches!(r, Err(ServiceError::Locked { .. })), "{email} #{i}: {r:?}");
                }
            }
        }
        // Locked: even the right password is refused, with the unlock time.
        let r = auth.login("someone@example.test", "Fake-Password-2026!", None, &client, NOW).await;
        let Err(ServiceError::Locked { until }) = r else { panic!("{r:?}") };
        assert_eq!(until.millis(), NOW.millis() + 15 * 60 * 1000);
        // After 15 minutes the right password works again.
        let later = Timestamp::from_millis(until.millis() + 1);
        auth.login("someone@example.test", "Fake-Password-2026!", None, &client, later).await.unwrap();
    }

    #[tokio::test]
    async fn a_session_ends_on_logout_and_renews_when_half_used() {
        let (auth, _repo, _dir) = service(Arc::new(CountingHasher::default())).await;
        let client = ClientInfo::default();
        let login =
            auth.login("someone@example.test", "Fake-Password-2026!", None, &client, NOW).await.unwrap();
        let fresh = auth.authenticate(&login.token, &client, NOW).await.unwrap();
        assert!(fresh.renewed.is_none());
        let later = Timestamp::from_millis(NOW.millis() + 20 * 60 * 1000);
        let renewed = auth.authenticate(&login.token, &client, later).await.unwrap().renewed.unwrap();
        assert!(renewed.1.exp > auth.signer().verify(&login.token, NOW).unwrap().exp);
        // Sign-out ends the session: the original and the renewed token both stop working.
        auth.logout(&fresh.actor, later).await.unwrap();
        assert!(matches!(
            auth.authenticate(&login.token, &client, later).await,
            Err(ServiceError::Unauthenticated)
        ));
        assert!(matches!(
            auth.authenticate(&renewed.0, &client, later).await,
            Err(ServiceError::Unauthenticated)
        ));
    }

    #[test]
    fn the_real_hasher_is_argon2id() {
        assert!(Argon2Hasher.hash("Fake-Password-2026!").starts_with("$argon2id$"));
    }
}
