//! Passkeys (WebAuthn) of local accounts, as `AuthService` offers them: registration (named,
//! several per user, removable), sign-in without the password (the passkey names its user:
//! username-less), and step-up.
//!
//! A ceremony's state travels between its two calls sealed with the server's parameter key and
//! bound to its purpose (and, for a registration, to the user): any replica finishes it, and a
//! ceremony never finished leaves nothing behind. A finished one is marked used in the store, so
//! it works once; one older than five minutes is refused.

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, Url, Uuid, Webauthn, WebauthnBuilder,
};

use crate::{
    domain::{
        ids::Id,
        model::User,
        time::Timestamp,
        views::{PasskeyChallenge, PasskeyInfo, RecoveryCodes},
    },
    ssr::{
        error::ServiceError,
        ids::new_id,
        repo::{RepoError, Session},
    },
};

use super::{
    Actor, AuthService, ClientInfo, LoginResponse, Reservation, SESSION_MAX_MS,
    mfa::{self, StoredPasskey},
};

/// A ceremony must finish within this long.
const CEREMONY_MAX_MS: i64 = 5 * 60 * 1000;
/// Passkey names: what the user calls the device.
const NAME_MAX: usize = 60;
const SIGN_IN: &str = "passkey-sign-in";

/// The relying party: this toolkit at `NEXUS_PUBLIC_URL`. Browsers refuse WebAuthn for an IP
/// address, so without a public URL with a host name there are no passkeys (`None`).
pub fn relying_party(public_url: Option<&str>) -> Option<Webauthn> {
    let url = Url::parse(public_url?).ok()?;
    let host = url.host_str()?.to_string();
    if host.parse::<std::net::IpAddr>().is_ok() || host.starts_with('[') {
        tracing::info!(%host, "passkeys are off: NEXUS_PUBLIC_URL names an IP address, not a host name");
        return None;
    }
    let rp = WebauthnBuilder::new(&host, &url).ok()?.rp_name("NexusAI Toolkit").build();
    match rp {
        Ok(rp) => Some(rp),
        Err(e) => {
            tracing::warn!(error = %e, "passkeys are off: the public URL does not make a relying party");
            None
        }
    }
}

/// One half-done ceremony, as it travels sealed.
#[derive(Serialize, Deserialize)]
struct Ceremony<S> {
    id: String,
    created_at: Timestamp,
    state: S,
    /// A registration: the user handle it is for, and the passkey's name.
    #[serde(default)]
    handle: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

fn bad_passkey(code: &'static str, message: &str) -> ServiceError {
    ServiceError::invalid("credential", code, message.to_string())
}

impl AuthService {
    fn relying_party(&self) -> Result<&Webauthn, ServiceError> {
        self.webauthn.as_deref().ok_or_else(|| {
            ServiceError::Conflict(
                "passkeys need NEXUS_PUBLIC_URL with a host name (not an IP address)".into(),
            )
        })
    }

    pub fn passkeys_available(&self) -> bool {
        self.webauthn.is_some()
    }

    fn seal_ceremony<S: Serialize>(&self, purpose: &str, c: &Ceremony<S>) -> String {
        let json = serde_json::to_vec(c).expect("ceremony states serialize");
        self.cipher.seal_bound(&json, purpose)
    }

    /// Opens a sealed ceremony of `purpose`, refusing an old or foreign one.
    fn open_ceremony<S: DeserializeOwned>(
        &self,
        purpose: &str,
        token: &str,
        now: Timestamp,
    ) -> Result<Ceremony<S>, ServiceError> {
        let plain = self.cipher.open_bound(token, purpose).map_err(|_| {
            ServiceError::invalid("token", "bad_token", "start again: this passkey request is not valid")
        })?;
        let c: Ceremony<S> = serde_json::from_slice(&plain).map_err(|_| ServiceError::Internal)?;
        if now.millis() - c.created_at.millis() > CEREMONY_MAX_MS {
            return Err(ServiceError::invalid(
                "token",
                "expired",
                "start again: the passkey request is over five minutes old",
            ));
        }
        Ok(c)
    }

    /// Marks the ceremony finished; a second use is refused.
    async fn use_ceremony(&self, id: &str) -> Result<(), ServiceError> {
        match self.repo.use_ceremony(id).await {
            Ok(()) => Ok(()),
            Err(RepoError::Conflict(_)) => Err(ServiceError::invalid(
                "token",
                "used",
                "start again: this passkey request was used already",
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// The first half of adding a passkey: options for `navigator.credentials.create()`. The
    /// passkey is discoverable (it names its user at a username-less sign-in) and verifies its
    /// user (PIN or biometrics).
    pub async fn start_passkey(
        &self,
        actor: &Actor,
        name: &str,
        now: Timestamp,
    ) -> Result<PasskeyChallenge, ServiceError> {
        let rp = self.relying_party()?;
        let name = name.trim();
        if name.is_empty() || name.chars().count() > NAME_MAX || name.chars().any(char::is_control) {
            return Err(ServiceError::invalid(
                "name",
                "invalid_name",
                format!("name the passkey in 1-{NAME_MAX} characters"),
            ));
        }
        let record = self.repo.mfa(&actor.user.id).await?;
        let handle = match &record.webauthn_handle {
            Some(h) => Uuid::parse_str(h).map_err(|_| ServiceError::Internal)?,
            None => random_uuid(),
        };
        let exclude = record
            .passkeys
            .iter()
            .filter_map(|p| serde_json::from_str::<Passkey>(&p.key).ok())
            .map(|p| p.cred_id().clone())
            .collect::<Vec<_>>();
        let (options, state) = rp
            .start_passkey_registration(handle, &actor.user.email, &actor.user.name, Some(exclude))
            .map_err(|e| {
                tracing::error!(error = %e, "could not start a passkey registration");
                ServiceError::Internal
            })?;
        let mut options = serde_json::to_value(&options).map_err(|_| ServiceError::Internal)?;
        // Discoverable: stored on the authenticator with its user, for username-less sign-in.
        if let Some(selection) = options.pointer_mut("/publicKey/authenticatorSelection") {
            selection["residentKey"] = "required".into();
            selection["requireResidentKey"] = true.into();
        }
        let ceremony = Ceremony::<PasskeyRegistration> {
            id: new_id().to_string(),
            created_at: now,
            state,
            handle: Some(handle.to_string()),
            name: Some(name.to_string()),
        };
        let token = self.seal_ceremony(&register_purpose(&actor.user.id), &ceremony);
        Ok(PasskeyChallenge { token, options: options["publicKey"].to_string() })
    }

    /// The second half: the browser's new credential (its `toJSON()`), checked against the
    /// ceremony. The first factor also makes ten recovery codes, answered here once.
    pub async fn finish_passkey(
        &self,
        actor: &Actor,
        token: &str,
        credential: &str,
        now: Timestamp,
    ) -> Result<RecoveryCodes, ServiceError> {
        let rp = self.relying_party()?;
        let user = &actor.user.id;
        let c: Ceremony<PasskeyRegistration> = self.open_ceremony(&register_purpose(user), token, now)?;
        let credential: RegisterPublicKeyCredential = serde_json::from_str(credential).map_err(|_| {
            bad_passkey("invalid_credential", "the browser's answer is not a WebAuthn credential")
        })?;
        self.use_ceremony(&c.id).await?;
        let target = format!("user/{}", actor.user.email);
        let passkey = match rp.finish_passkey_registration(&credential, &c.state) {
            Ok(p) => p,
            Err(e) => {
                tracing::info!(error = %e, "a passkey registration was refused");
                self.record(actor.audit("mfa.passkey.enrol", target, "failure"), now).await;
                return Err(bad_passkey("refused", "the passkey could not be verified: try again"));
            }
        };
        let handle = c.handle.ok_or(ServiceError::Internal)?;
        self.repo.link_webauthn_handle(&handle, user).await?;
        let mut record = self.repo.mfa(user).await?;
        let id = encode_id(passkey.cred_id());
        if record.passkeys.iter().any(|p| p.id == id) {
            return Err(ServiceError::Conflict("this passkey is added already".into()));
        }
        let name = c.name.unwrap_or_else(|| "Passkey".into());
        record.webauthn_handle = Some(handle);
        record.passkeys.push(StoredPasskey {
            id,
            name: name.clone(),
            added_at: now,
            last_used_at: None,
            key: serde_json::to_string(&passkey).map_err(|_| ServiceError::Internal)?,
        });
        let codes = if record.recovery_left() == 0 {
            let (shown, stored) = mfa::new_recovery_codes(user);
            record.recovery = stored;
            shown
        } else {
            Vec::new()
        };
        self.save_or_conflict(user, &record).await?;
        self.repo.mark_session_mfa(&actor.session_id, now).await?;
        let mut event = actor.audit("mfa.passkey.enrol", target, "success");
        event.details = serde_json::json!({"name": name});
        self.record(event, now).await;
        Ok(RecoveryCodes { codes })
    }

    /// The user's passkeys.
    pub async fn passkeys(&self, user: &Id) -> Result<Vec<PasskeyInfo>, ServiceError> {
        Ok(self
            .repo
            .mfa(user)
            .await?
            .passkeys
            .into_iter()
            .map(|p| PasskeyInfo {
                id: p.id,
                name: p.name,
                added_at: p.added_at,
                last_used_at: p.last_used_at,
            })
            .collect())
    }

    /// Removes one passkey. Needs a recent factor.
    pub async fn remove_passkey(
        &self,
        actor: &Actor,
        id: &str,
        now: Timestamp,
        fresh_within_ms: i64,
    ) -> Result<(), ServiceError> {
        self.require_recent_factor(actor, now, fresh_within_ms).await?;
        let user = &actor.user.id;
        let mut record = self.repo.mfa(user).await?;
        let Some(at) = record.passkeys.iter().position(|p| p.id == id) else {
            return Err(ServiceError::NotFound("passkey"));
        };
        let removed = record.passkeys.remove(at);
        if !record.has_factor() {
            record.recovery.clear();
        }
        self.save_or_conflict(user, &record).await?;
        if !record.has_factor() && self.role_requires_factor(actor.role()) {
            self.repo.update_session(&actor.session_id, |s| s.must_enrol = true).await?;
        }
        let mut event = actor.audit("mfa.passkey.remove", format!("user/{}", actor.user.email), "success");
        event.details = serde_json::json!({"name": removed.name});
        self.record(event, now).await;
        Ok(())
    }

    /// The first half of signing in (or stepping up) with a passkey: options for
    /// `navigator.credentials.get()`, naming no user (the passkey says whose it is).
    pub fn passkey_challenge(&self, now: Timestamp) -> Result<PasskeyChallenge, ServiceError> {
        let rp = self.relying_party()?;
        let (options, state) = rp.start_discoverable_authentication().map_err(|e| {
            tracing::error!(error = %e, "could not start a passkey sign-in");
            ServiceError::Internal
        })?;
        let options = serde_json::to_value(&options).map_err(|_| ServiceError::Internal)?;
        let ceremony = Ceremony::<DiscoverableAuthentication> {
            id: new_id().to_string(),
            created_at: now,
            state,
            handle: None,
            name: None,
        };
        Ok(PasskeyChallenge {
            token: self.seal_ceremony(SIGN_IN, &ceremony),
            options: options["publicKey"].to_string(),
        })
    }

    /// Checks a passkey's answer to a challenge: the user it belongs to, once. A failure of a
    /// known user's passkey counts toward their sign-in lockout, like a wrong password.
    async fn verify_passkey(
        &self,
        token: &str,
        credential: &str,
        client: &ClientInfo,
        now: Timestamp,
    ) -> Result<User, ServiceError> {
        let rp = self.relying_party()?;
        let c: Ceremony<DiscoverableAuthentication> = self.open_ceremony(SIGN_IN, token, now)?;
        let credential: PublicKeyCredential = serde_json::from_str(credential).map_err(|_| {
            bad_passkey("invalid_credential", "the browser's answer is not a WebAuthn credential")
        })?;
        // Spent by the first answer, right or wrong: a replayed answer is refused as used and
        // never reaches the signature check (nor the lockout count).
        self.use_ceremony(&c.id).await?;
        let unknown = || bad_passkey("unknown_passkey", "this passkey is not one of this toolkit's");
        let (handle, cred_id) =
            rp.identify_discoverable_authentication(&credential).map_err(|_| unknown())?;
        let cred_id = encode_id(cred_id);
        let user_id = self.repo.webauthn_user(&handle.to_string()).await?.ok_or_else(unknown)?;
        let record = match self.repo.user(&user_id).await {
            Ok(r) if r.user.active => r,
            Ok(_) | Err(RepoError::NotFound) => return Err(unknown()),
            Err(e) => return Err(e.into()),
        };
        let email = super::normalize_email(&record.user.email);
        let mut factors = self.repo.mfa(&user_id).await?;
        let Some(stored) = factors.passkeys.iter_mut().find(|p| p.id == cred_id) else {
            return Err(unknown());
        };
        let mut passkey: Passkey = serde_json::from_str(&stored.key).map_err(|_| ServiceError::Internal)?;
        // Counted like a password attempt; a success clears the count.
        let locks = match self.reserve_attempt(&email, now).await? {
            Reservation::Locked(until) => return Err(ServiceError::Locked { until }),
            Reservation::Granted { locks } => locks,
        };
        let target = format!("user/{email}");
        let verified = rp.finish_discoverable_authentication_v2(&credential, c.state, &passkey);
        let result = match verified {
            Ok(r) => r,
            Err(e) => {
                tracing::info!(error = %e, "a passkey sign-in was refused");
                let mut failed = super::NewEvent {
                    actor_id: Some(user_id.clone()),
                    actor_email: Some(email.clone()),
                    source_ip: client.ip_string(),
                    action: "auth.mfa".into(),
                    target,
                    outcome: "failure".into(),
                    details: serde_json::json!({"factor": "passkey"}),
                    ..Default::default()
                };
                if let Some(until) = locks {
                    failed.details["locked_until"] = until.to_string().into();
                    self.record(failed, now).await;
                    self.notify_lock(&user_id, until, client, now).await;
                    self.metrics.lockout();
                    return Err(ServiceError::Locked { until });
                }
                self.record(failed, now).await;
                return Err(bad_passkey("refused", "the passkey's answer did not verify"));
            }
        };
        passkey.update_credential(&result);
        stored.key = serde_json::to_string(&passkey).map_err(|_| ServiceError::Internal)?;
        stored.last_used_at = Some(now);
        // The counter and last use are worth keeping, not worth failing a sign-in over.
        if let Err(e) = self.repo.save_mfa(&user_id, &factors).await {
            tracing::warn!(error = %e, "could not record a passkey's use");
        }
        self.reset_failures(&email).await?;
        let mut used = super::NewEvent {
            actor_id: Some(user_id.clone()),
            actor_email: Some(email),
            actor_role: Some(record.user.role),
            source_ip: client.ip_string(),
            action: "auth.mfa".into(),
            target,
            outcome: "success".into(),
            details: serde_json::json!({"factor": "passkey"}),
            ..Default::default()
        };
        used.details["passkey"] =
            factors.passkeys.iter().find(|p| p.id == cred_id).map(|p| p.name.clone()).into();
        self.record(used, now).await;
        Ok(record.user)
    }

    /// Signs in with a passkey alone (it proves possession and its user's PIN or biometrics):
    /// a session whose second factor is proved now.
    pub async fn login_passkey(
        &self,
        token: &str,
        credential: &str,
        client: &ClientInfo,
        now: Timestamp,
    ) -> Result<LoginResponse, ServiceError> {
        let user = self.verify_passkey(token, credential, client, now).await?;
        let session = Session {
            id: new_id(),
            user_id: user.id.clone(),
            created_at: now,
            expires_at: Timestamp::from_millis(now.millis() + SESSION_MAX_MS),
            revoked_at: None,
            method: "local".into(),
            mfa_at: Some(now),
            must_enrol: false,
        };
        self.repo.create_session(&session).await?;
        let (token, claims) = self.signer.issue(user.id.as_str(), session.id.as_str(), now);
        let success = super::NewEvent {
            actor_id: Some(user.id.clone()),
            actor_email: Some(user.email.clone()),
            actor_role: Some(user.role),
            source_ip: client.ip_string(),
            action: "auth.login".into(),
            target: format!("user/{}", user.email),
            outcome: "success".into(),
            details: serde_json::json!({"session": session.id, "factor": "passkey"}),
            ..Default::default()
        };
        self.record(success, now).await;
        Ok(LoginResponse { token, expires_at: claims.expires_at(), user, mfa_enrolment_required: false })
    }

    /// Step-up with a passkey: it must be the signed-in user's own.
    pub async fn step_up_passkey(
        &self,
        actor: &Actor,
        token: &str,
        credential: &str,
        now: Timestamp,
    ) -> Result<(), ServiceError> {
        let user = self.verify_passkey(token, credential, &actor.client, now).await?;
        if user.id != actor.user.id {
            return Err(bad_passkey("not_yours", "that passkey is someone else's: use your own"));
        }
        self.repo.mark_session_mfa(&actor.session_id, now).await?;
        Ok(())
    }
}

fn register_purpose(user: &Id) -> String {
    format!("passkey-register:{user}")
}

/// A credential id as the browser's JSON shows it (base64url, no padding).
fn encode_id(id: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id)
}

/// A random (version 4) UUID: the user handle, which must not reveal who the user is.
fn random_uuid() -> Uuid {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the operating system's random source is unavailable");
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    Uuid::from_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::relying_party;

    #[test]
    fn passkeys_need_a_public_url_with_a_host_name() {
        assert!(relying_party(None).is_none());
        assert!(relying_party(Some("http://127.0.0.1:3000")).is_none(), "browsers refuse an IP address");
        assert!(relying_party(Some("http://[::1]:3000")).is_none());
        assert!(relying_party(Some("not a url")).is_none());
        assert!(relying_party(Some("http://localhost:3000")).is_some());
        assert!(relying_party(Some("https://nexus.example.com")).is_some());
    }
}
