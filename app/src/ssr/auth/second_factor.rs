//! Second factors of local accounts, as `AuthService` offers them: enrolment of an authenticator
//! app (TOTP) with recovery codes, the check at sign-in and step-up, and an Executive's reset.
//! The rules themselves (steps, replay, codes) are in [`super::mfa`].

use crate::{
    domain::{
        ids::Id,
        permissions::Action,
        second_factor::{FactorState, StepUp},
        time::Timestamp,
        views::{MfaStatus, PasskeyInfo, RecoveryCodes, TotpEnrolment},
    },
    ssr::{
        error::ServiceError,
        repo::{Repo, RepoError},
    },
};

use super::{
    Actor, AuthService, Reservation,
    mfa::{self, CodeMatch, MfaRecord, PendingTotp, TotpFactor},
};

/// The issuer authenticator apps show beside the account.
const ISSUER: &str = "NexusAI Toolkit";
/// An enrolment not confirmed within this long must start again.
const PENDING_MAX_MS: i64 = 15 * 60 * 1000;

impl AuthService {
    fn open_secret(&self, user: &Id, sealed: &str) -> Result<Vec<u8>, ServiceError> {
        self.cipher.open_bound(sealed, &mfa::secret_binding(user)).map_err(|_| {
            tracing::error!(user = %user, "a TOTP secret does not open with this server's parameter key");
            ServiceError::Internal
        })
    }

    /// Checks a TOTP or recovery code of `user` and records its use (the step, or the code as
    /// used), so it works once. `Some(factor)` (`"totp"` or `"recovery_code"`) when it matched.
    pub(super) async fn use_code(
        &self,
        user: &Id,
        code: &str,
        now: Timestamp,
    ) -> Result<Option<&'static str>, ServiceError> {
        // A conditional write: of two requests with the same code, one records it and the other
        // reads the record again and finds the code used.
        for _ in 0..5 {
            let mut record = self.repo.mfa(user).await?;
            let secret = match &record.totp {
                Some(t) => Some(self.open_secret(user, &t.sealed_secret)?),
                None => None,
            };
            let unix = (now.millis().max(0) / 1000) as u64;
            let factor = match record.check(secret.as_deref(), user, code, unix) {
                CodeMatch::Wrong => return Ok(None),
                CodeMatch::Totp { step } => {
                    if let Some(t) = record.totp.as_mut() {
                        t.last_step = step;
                    }
                    "totp"
                }
                CodeMatch::Recovery { index } => {
                    record.recovery[index].used_at = Some(now);
                    "recovery_code"
                }
            };
            match self.repo.save_mfa(user, &record).await {
                Ok(()) => return Ok(Some(factor)),
                Err(RepoError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ServiceError::Unavailable)
    }

    /// The signed-in user's second factors.
    pub async fn mfa_status(&self, actor: &Actor) -> Result<MfaStatus, ServiceError> {
        let r = self.repo.mfa(&actor.user.id).await?;
        Ok(MfaStatus {
            totp: r.totp.is_some(),
            recovery_codes_left: r.recovery_left(),
            passkeys: r
                .passkeys
                .into_iter()
                .map(|p| PasskeyInfo {
                    id: p.id,
                    name: p.name,
                    added_at: p.added_at,
                    last_used_at: p.last_used_at,
                })
                .collect(),
            passkeys_available: self.passkeys_available(),
        })
    }

    /// Starts enrolling an authenticator app: a new secret, shown once (QR code and text) and
    /// kept sealed until a code from the app confirms it. Replaces an unconfirmed one.
    pub async fn start_totp(&self, actor: &Actor, now: Timestamp) -> Result<TotpEnrolment, ServiceError> {
        let user = &actor.user.id;
        let secret = mfa::new_secret();
        let mut record = self.repo.mfa(user).await?;
        if record.totp.is_some() {
            return Err(ServiceError::Conflict(
                "an authenticator app is set up already: remove it first to set up another".into(),
            ));
        }
        record.pending_totp = Some(PendingTotp {
            sealed_secret: self.cipher.seal_bound(&secret, &mfa::secret_binding(user)),
            created_at: now,
        });
        self.save_or_conflict(user, &record).await?;
        let url = mfa::otpauth_url(ISSUER, &actor.user.email, &secret);
        let qr_svg = qr_svg(&url)?;
        self.record(actor.audit("mfa.totp.start", format!("user/{}", actor.user.email), "success"), now)
            .await;
        Ok(TotpEnrolment { secret: mfa::base32(&secret), otpauth_url: url, qr_svg })
    }

    /// Confirms the app with one of its codes. The first factor also makes ten recovery codes,
    /// answered here once (only their hashes are kept).
    pub async fn confirm_totp(
        &self,
        actor: &Actor,
        code: &str,
        now: Timestamp,
    ) -> Result<RecoveryCodes, ServiceError> {
        let user = &actor.user.id;
        let target = format!("user/{}", actor.user.email);
        let mut record = self.repo.mfa(user).await?;
        let Some(pending) =
            record.pending_totp.clone().filter(|p| now.millis() - p.created_at.millis() < PENDING_MAX_MS)
        else {
            return Err(ServiceError::invalid(
                "code",
                "no_enrolment",
                "start setting up the app again: no recent set-up",
            ));
        };
        let secret = self.open_secret(user, &pending.sealed_secret)?;
        let typed: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        let Some(step) = mfa::totp_step(&secret, &typed, (now.millis().max(0) / 1000) as u64) else {
            self.record(actor.audit("mfa.totp.confirm", target, "failure"), now).await;
            return Err(ServiceError::invalid(
                "code",
                "wrong_code",
                "that code is not the app's current one",
            ));
        };
        record.totp =
            Some(TotpFactor { sealed_secret: pending.sealed_secret, added_at: now, last_step: step });
        record.pending_totp = None;
        let codes = if record.recovery_left() == 0 {
            let (shown, stored) = mfa::new_recovery_codes(user);
            record.recovery = stored;
            shown
        } else {
            Vec::new()
        };
        self.save_or_conflict(user, &record).await?;
        self.repo.mark_session_mfa(&actor.session_id, now).await?;
        self.record(actor.audit("mfa.totp.enrol", target, "success"), now).await;
        Ok(RecoveryCodes { codes })
    }

    /// Ten new recovery codes (the old ones stop working), shown once. Needs a recent factor.
    pub async fn renew_recovery_codes(
        &self,
        actor: &Actor,
        now: Timestamp,
        fresh_within_ms: i64,
    ) -> Result<RecoveryCodes, ServiceError> {
        self.require_recent_factor(actor, now, fresh_within_ms).await?;
        let user = &actor.user.id;
        let mut record = self.repo.mfa(user).await?;
        if !record.has_factor() {
            return Err(ServiceError::Conflict("set up an authenticator app first".into()));
        }
        let (shown, stored) = mfa::new_recovery_codes(user);
        record.recovery = stored;
        self.save_or_conflict(user, &record).await?;
        self.record(actor.audit("mfa.recovery.renew", format!("user/{}", actor.user.email), "success"), now)
            .await;
        Ok(RecoveryCodes { codes: shown })
    }

    /// Removes the user's authenticator app (and the recovery codes, when no passkey is left).
    /// Needs a recent factor.
    pub async fn remove_totp(
        &self,
        actor: &Actor,
        now: Timestamp,
        fresh_within_ms: i64,
    ) -> Result<(), ServiceError> {
        self.require_recent_factor(actor, now, fresh_within_ms).await?;
        let user = &actor.user.id;
        let mut record = self.repo.mfa(user).await?;
        if record.totp.is_none() {
            return Err(ServiceError::NotFound("authenticator app"));
        }
        record.totp = None;
        record.pending_totp = None;
        // Passkeys stay; recovery codes go with the last factor.
        if !record.has_factor() {
            record.recovery.clear();
        }
        self.save_or_conflict(user, &record).await?;
        // A role that requires a factor is back to enrolment only, in this session (others
        // meet the requirement at their next sensitive action or sign-in).
        if !record.has_factor() && self.role_requires_factor(actor.role()) {
            self.repo.update_session(&actor.session_id, |s| s.must_enrol = true).await?;
        }
        self.record(actor.audit("mfa.totp.remove", format!("user/{}", actor.user.email), "success"), now)
            .await;
        Ok(())
    }

    /// An Executive removes another user's second factors (lost phone): they enrol again, and
    /// every session they have open ends (the lost phone may hold one).
    pub async fn reset_mfa(&self, actor: &Actor, user: &Id, now: Timestamp) -> Result<(), ServiceError> {
        actor.require(Action::ManageUsers)?;
        if *user == actor.user.id {
            return Err(ServiceError::Forbidden(
                "remove your own authenticator app on your account page (it asks for a current code)".into(),
            ));
        }
        let before = match self.repo.user(user).await {
            Ok(r) => r,
            Err(RepoError::NotFound) => return Err(ServiceError::NotFound("user")),
            Err(e) => return Err(e.into()),
        };
        let target = before.user.email.clone();
        if !self.repo.mfa(user).await?.has_factor() {
            return Err(ServiceError::Conflict(format!(
                "{} has no second factor to reset",
                before.user.name
            )));
        }
        self.repo.delete_mfa(user).await?;
        let mut after = before.clone();
        after.sessions_valid_after = Some(now);
        self.repo.update_user(&before, after).await?;
        self.record(actor.audit("mfa.reset", format!("user/{target}"), "success"), now).await;
        Ok(())
    }

    /// The demo: gives `email` an authenticator app with a known key (`NEXUS_DEMO_TOTP_SECRET`),
    /// unless they have one. No recovery codes. Answers whether it enrolled them.
    pub async fn enrol_demo_totp(
        &self,
        email: &str,
        key: &str,
        now: Timestamp,
    ) -> Result<bool, ServiceError> {
        let Some(record) = self.repo.user_by_email(email).await? else { return Ok(false) };
        let user = &record.user.id;
        let secret = mfa::from_base32(key).ok_or(ServiceError::Internal)?;
        let mut mfa = self.repo.mfa(user).await?;
        if mfa.totp.is_some() {
            return Ok(false);
        }
        mfa.totp = Some(TotpFactor {
            sealed_secret: self.cipher.seal_bound(&secret, &mfa::secret_binding(user)),
            added_at: now,
            last_step: 0,
        });
        self.save_or_conflict(user, &mfa).await?;
        let event = crate::ssr::audit::NewEvent {
            action: "mfa.totp.enrol".into(),
            target: format!("user/{email}"),
            outcome: "success".into(),
            details: serde_json::json!({"demo": true}),
            ..Default::default()
        };
        self.record(event, now).await;
        Ok(true)
    }

    /// Step-up: a code proves a second factor now, for actions that need a recent one. Wrong
    /// codes count toward the sign-in lockout of the user's email, as at sign-in, so a stolen
    /// session cannot guess codes at the request rate.
    pub async fn step_up(&self, actor: &Actor, code: &str, now: Timestamp) -> Result<(), ServiceError> {
        let email = super::normalize_email(&actor.user.email);
        let target = format!("user/{email}");
        let locks = match self.reserve_attempt(&email, now).await? {
            Reservation::Locked(until) => return Err(ServiceError::Locked { until }),
            Reservation::Granted { locks } => locks,
        };
        match self.use_code(&actor.user.id, code, now).await? {
            Some(factor) => {
                self.reset_failures(&email).await?;
                self.repo.mark_session_mfa(&actor.session_id, now).await?;
                let mut used = actor.audit("auth.mfa", target, "success");
                used.details = serde_json::json!({"factor": factor, "step_up": true});
                self.record(used, now).await;
                Ok(())
            }
            None => {
                let mut failed = actor.audit("auth.mfa", target.clone(), "failure");
                failed.details = serde_json::json!({"step_up": true});
                self.record(failed, now).await;
                if let Some(until) = locks {
                    let notified = self.notify_lock(&actor.user.id, until, &actor.client, now).await;
                    let mut lockout = actor.audit("auth.lockout", target, "success");
                    lockout.details = serde_json::json!({"until": until.to_string(),
                        "failures": self.policy.threshold, "owner_notified": notified, "step_up": true});
                    self.record(lockout, now).await;
                    self.metrics.lockout();
                    return Err(ServiceError::Locked { until });
                }
                Err(ServiceError::invalid(
                    "code",
                    "wrong_code",
                    "that code is not valid (or was used already)",
                ))
            }
        }
    }

    /// `MfaRequired` unless the session proved a second factor within `fresh_within_ms`, whatever
    /// the role (changing the factors themselves).
    pub async fn require_recent_factor(
        &self,
        actor: &Actor,
        now: Timestamp,
        fresh_within_ms: i64,
    ) -> Result<(), ServiceError> {
        let session = self.repo.session(&actor.session_id).await?.ok_or(ServiceError::Unauthenticated)?;
        match session.mfa_at {
            Some(t) if now.millis() - t.millis() <= fresh_within_ms => Ok(()),
            _ => Err(ServiceError::MfaRequired),
        }
    }

    /// For the actions that need a recent factor: approving or running a prod change,
    /// publishing a catalog version. See [`require_step_up`].
    pub async fn require_step_up(&self, actor: &Actor, now: Timestamp) -> Result<(), ServiceError> {
        require_step_up(&self.repo, actor, now).await
    }

    pub(super) async fn save_or_conflict(&self, user: &Id, record: &MfaRecord) -> Result<(), ServiceError> {
        match self.repo.save_mfa(user, record).await {
            Ok(()) => Ok(()),
            Err(RepoError::Conflict(_)) => Err(ServiceError::Conflict(
                "your second factors changed meanwhile: reload and try again".into(),
            )),
            Err(e) => Err(e.into()),
        }
    }
}

/// Whether the actor may do an action that needs a recent second factor now: `MfaRequired`
/// (401) until the session proves one within `NEXUS_MFA_STEP_UP_MINUTES`, `MfaEnrolmentRequired`
/// (403) when the role requires one the user does not have. The session and the factors are
/// read afresh (two reads, on rare actions): a step-up or an enrolment a moment ago counts, and
/// a factor added in another session is asked for here too.
pub async fn require_step_up(repo: &Repo, actor: &Actor, now: Timestamp) -> Result<(), ServiceError> {
    if !actor.factor.local {
        return Ok(());
    }
    let session = repo.session(&actor.session_id).await?.ok_or(ServiceError::Unauthenticated)?;
    let has_factor = repo.mfa(&actor.user.id).await?.has_factor();
    let state = FactorState { proved_at: session.mfa_at, ..actor.factor };
    match state.step_up(has_factor, now) {
        StepUp::Fresh => Ok(()),
        StepUp::CodeNeeded => Err(ServiceError::MfaRequired),
        StepUp::EnrolFirst => Err(ServiceError::MfaEnrolmentRequired),
    }
}

/// The `otpauth://` URL as a QR code, an SVG drawn on the server (no script, no image fetched).
fn qr_svg(url: &str) -> Result<String, ServiceError> {
    use qrcode::{QrCode, render::svg};
    let code = QrCode::new(url.as_bytes()).map_err(|_| ServiceError::Internal)?;
    Ok(code
        .render::<svg::Color>()
        .min_dimensions(200, 200)
        .dark_color(svg::Color("#000000"))
        .light_color(svg::Color("#ffffff"))
        .build())
}
